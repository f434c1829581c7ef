package activities

import (
	"context"
	"fmt"
	"slices"

	"github.com/gust-dev/gust/providers"
)

// Bounds of one fleet of offerings, so a tenant's request cannot make
// PrepareFleet's calls or results unbounded.
const (
	maxOfferingSpecs     = 100
	maxFleetSubnets      = 100
	maxPreparedOfferings = 500 // after expansion by subnet; priced in both markets
)

// prepareFleet implements PrepareFleet.
func (a *Fleet) prepareFleet(ctx context.Context, in PrepareFleetInput) (PrepareFleetResult, error) {
	var res PrepareFleetResult
	problem := func(format string, args ...any) { res.Problems = append(res.Problems, fmt.Sprintf(format, args...)) }
	if n := len(in.Offerings); n == 0 || n > maxOfferingSpecs {
		problem("a fleet needs 1 to %d offerings, got %d", maxOfferingSpecs, n)
		return res, nil
	}
	if len(in.SubnetIDs) > maxFleetSubnets {
		problem("a fleet takes at most %d subnets, got %d", maxFleetSubnets, len(in.SubnetIDs))
		return res, nil
	}
	var markets []string
	for _, m := range in.Markets {
		switch {
		case m != providers.MarketOnDemand && m != providers.MarketSpot:
			problem("unknown market %q: use %s or %s", m, providers.MarketOnDemand, providers.MarketSpot)
		case !slices.Contains(markets, m):
			markets = append(markets, m)
		}
	}
	if len(in.Markets) == 0 {
		problem("a fleet needs a market")
	}
	for i, o := range in.Offerings {
		if o.InstanceType == "" || o.Weight < 1 {
			problem("offering %d needs an instance type and a weight of at least 1, got %q and %d", i, o.InstanceType, o.Weight)
		}
	}
	if len(res.Problems) > 0 {
		return res, nil
	}
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return res, err
	}

	offered, err := keepAlive(ctx, func() ([]string, error) { return compute.InstanceTypes(ctx) })
	if err != nil {
		return res, ProviderErrorf("listing instance types", err)
	}
	var unknownTypes []string
	for _, o := range in.Offerings {
		if !slices.Contains(offered, o.InstanceType) && !slices.Contains(unknownTypes, o.InstanceType) {
			unknownTypes = append(unknownTypes, o.InstanceType)
			problem("instance type %q is not offered", o.InstanceType)
		}
	}
	subnets, err := a.resolveSubnets(ctx, compute, in.SubnetIDs, problem)
	if err != nil {
		return res, err
	}

	var prepared []PreparedOffering
	for i, o := range in.Offerings {
		base := PreparedOffering{InstanceType: o.InstanceType, Zone: o.Zone, Weight: o.Weight, Source: i}
		switch {
		case len(in.SubnetIDs) == 0:
			prepared = append(prepared, base)
		case o.Zone == "":
			for _, s := range subnets {
				p := base
				p.Zone, p.SubnetID = s.Zone, s.ID
				prepared = append(prepared, p)
			}
		default:
			i := slices.IndexFunc(subnets, func(s providers.Subnet) bool { return s.Zone == o.Zone })
			if i < 0 {
				problem("offering %d (%s in %s): none of the fleet's subnets is in %s", base.Source, o.InstanceType, o.Zone, o.Zone)
				continue
			}
			base.SubnetID = subnets[i].ID
			prepared = append(prepared, base)
		}
	}
	if len(prepared) > maxPreparedOfferings {
		problem("the fleet's offerings expand to %d by subnet, at most %d", len(prepared), maxPreparedOfferings)
		return res, nil
	}

	if err := a.dryRuns(ctx, compute, in, prepared, markets, unknownTypes, problem); err != nil {
		return res, err
	}
	if len(res.Problems) > 0 {
		return res, nil
	}
	if err := price(ctx, compute, prepared, markets); err != nil {
		return res, err
	}
	res.Offerings = prepared
	if a.Events != nil {
		// Starts the tenant's receive loop if it is not running, as the
		// reconciling count does.
		res.EventsActive = a.Events.Watch(providers.TenantOrDefault(in.Tenant))
	}
	return res, nil
}

// resolveSubnets returns the subnets of ids that exist, in order and
// without repeats, and reports each that does not as a problem.
func (a *Fleet) resolveSubnets(ctx context.Context, compute providers.Compute, ids []string, problem func(string, ...any)) ([]providers.Subnet, error) {
	var unique []string
	for _, id := range ids {
		if !slices.Contains(unique, id) {
			unique = append(unique, id)
		}
	}
	if len(unique) == 0 {
		return nil, nil
	}
	all, err := keepAlive(ctx, func() ([]providers.Subnet, error) { return compute.Subnets(ctx, unique) })
	if err == nil {
		return all, nil
	}
	if !providers.IsNotFound(err) {
		return nil, ProviderErrorf("describing subnets", err)
	}
	// Some subnet is unknown: ask one by one to name each.
	var found []providers.Subnet
	for _, id := range unique {
		one, err := keepAlive(ctx, func() ([]providers.Subnet, error) { return compute.Subnets(ctx, []string{id}) })
		switch {
		case providers.IsNotFound(err):
			problem("subnet %q does not exist", id)
		case err != nil:
			return nil, ProviderErrorf("describing subnet "+id, err)
		default:
			found = append(found, one...)
		}
	}
	return found, nil
}

// dryRuns checks one launch of each offered instance type in each market
// with the fleet's parameters, in the subnet of the type's first
// offering. A rejection is a problem, once per distinct cloud message.
func (a *Fleet) dryRuns(ctx context.Context, compute providers.Compute, in PrepareFleetInput, prepared []PreparedOffering,
	markets, unknownTypes []string, problem func(string, ...any)) error {
	var seen []string
	var checked []string
	for _, o := range prepared {
		if slices.Contains(unknownTypes, o.InstanceType) || slices.Contains(checked, o.InstanceType) {
			continue
		}
		checked = append(checked, o.InstanceType)
		for _, m := range markets {
			// A dry run takes a token from RunInstances' request bucket
			// (5 on EC2): a throttled one waits for the next, or a fleet of
			// more types and markets than the bucket holds would fail
			// every attempt at the same call.
			_, err := retryThrottled(ctx, nil, func() ([]providers.Instance, error) {
				return keepAlive(ctx, func() ([]providers.Instance, error) {
					return compute.Run(ctx, providers.RunInput{InstanceType: o.InstanceType, Zone: o.Zone, SubnetID: o.SubnetID,
						MinCount: 1, MaxCount: 1, Market: m, Params: in.Params, DryRun: true})
				})
			})
			switch {
			case err == nil || providers.IsInsufficientCapacity(err):
				// A dry run does not check capacity; a cloud that does
				// accepted the rest.
			case providers.IsInvalid(err) || providers.IsNotFound(err) || providers.IsIdempotencyMismatch(err):
				if !slices.Contains(seen, err.Error()) {
					seen = append(seen, err.Error())
					problem("launching %s (%s): %v", o.InstanceType, m, err)
				}
			default:
				return ProviderErrorf(fmt.Sprintf("checking a launch of %s (%s)", o.InstanceType, m), err)
			}
		}
	}
	return nil
}

// price fills the offerings' prices and scores in each market.
func price(ctx context.Context, compute providers.Compute, prepared []PreparedOffering, markets []string) error {
	var asked []providers.Offering
	for _, o := range prepared {
		for _, m := range markets {
			asked = append(asked, providers.Offering{InstanceType: o.InstanceType, Zone: o.Zone, Market: m})
		}
	}
	infos, err := keepAlive(ctx, func() ([]providers.OfferingInfo, error) { return compute.DescribeOfferings(ctx, asked) })
	if err != nil {
		return ProviderErrorf("pricing offerings", err)
	}
	if len(infos) != len(asked) {
		return fmt.Errorf("pricing offerings, the cloud answered %d of %d", len(infos), len(asked))
	}
	for i, info := range infos {
		o := &prepared[i/len(markets)]
		if asked[i].Market == providers.MarketSpot {
			o.SpotPrice, o.SpotScore = info.Price, info.Score
		} else {
			o.OnDemandPrice, o.OnDemandScore = info.Price, info.Score
		}
	}
	return nil
}
