package fake

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"

	"github.com/gust-dev/gust/providers"
)

// SpotInterruptionCode is the state reason Interrupt gives, as EC2 does.
const SpotInterruptionCode = "Server.SpotInstanceTermination"

// pool names a capacity pool: an offering's (market set), or an instance
// type's shared one (zone and market empty).
type pool struct {
	instanceType, zone, market string
}

// fleetRecord is the first LaunchFleet call of a ClientToken.
type fleetRecord struct {
	input  providers.FleetLaunchInput
	result providers.FleetLaunchResult
}

// SetOfferingCapacity sets the open capacity left of instanceType in zone
// and market (providers.MarketOnDemand or MarketSpot), n instances or
// Unlimited, and makes the type known. From then on that offering draws
// from it instead of from the type's capacity (see Compute). It panics
// without a zone or with another market.
func (c *Compute) SetOfferingCapacity(instanceType, zone, market string, n int) {
	if zone == "" || (market != providers.MarketOnDemand && market != providers.MarketSpot) {
		panic(fmt.Sprintf("fake: SetOfferingCapacity needs a zone and a market, got %q and %q", zone, market))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offers[pool{instanceType, zone, market}] = n
}

// OfferingCapacity returns the offering's own capacity left, or Unlimited,
// and whether it has one.
func (c *Compute) OfferingCapacity(instanceType, zone, market string) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	n, ok := c.offers[pool{instanceType, zone, market}]
	return n, ok
}

// SetOfferingInfo sets what DescribeOfferings answers for each info's
// offering (its Zone may be empty: the answer for "any zone").
func (c *Compute) SetOfferingInfo(infos ...providers.OfferingInfo) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, in := range infos {
		in.Market = cmp.Or(in.Market, providers.MarketOnDemand)
		c.info[in.Offering] = in
	}
}

// AddSubnet makes a subnet in zone known.
func (c *Compute) AddSubnet(id, zone string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.subnets[id] = zone
}

// RejectParam makes every launch whose parameters name one of values, as
// an image, key, security group, instance profile or launch template id
// or name, fail with InvalidError, as EC2 does for ones that do not exist.
func (c *Compute) RejectParam(values ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range values {
		c.rejected[v] = true
	}
}

// Interrupt gives spot instances their interruption notice, as EC2 does
// two minutes before it reclaims them: they stay running, Interrupted,
// with the state reason SpotInterruptionCode. SetState(StateTerminated)
// reclaims them. It is not recorded as a call. It panics on an unknown
// id, or on an instance that is not a live spot instance.
func (c *Compute) Interrupt(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		in, ok := c.byID[id]
		if !ok || in.Market != providers.MarketSpot || !live(in.State) {
			panic("fake: Interrupt of " + id + ", which is not a live spot instance")
		}
		in.Interrupted, in.StateReason = true, SpotInterruptionCode
	}
}

// LaunchFleet is CreateFleet of type instant over the same capacity as
// Run. Overrides are tried in the strategy's order: "prioritized" and
// "capacity-optimized-prioritized" by Priority, then input order;
// "lowest-price" and "" by SetOfferingInfo's price per unit of weight
// (unknown prices are 0), then input order; any other strategy in input
// order. Each override launches ceil(remaining units / weight) or what its
// capacity has, whichever is less; an override with none gets an
// InsufficientInstanceCapacity error. MinUnits is all-or-nothing: if fewer
// units could launch, none do and every override tried gets that error.
// The same ClientToken returns the first call's result (or
// IdempotencyMismatchError with other parameters). Like the EC2 provider,
// it needs a launch template and takes no security groups.
func (c *Compute) LaunchFleet(ctx context.Context, in providers.FleetLaunchInput) (providers.FleetLaunchResult, error) {
	if _, err := c.begin(ctx, MethodLaunchFleet, in); err != nil {
		return providers.FleetLaunchResult{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.ClientToken != "" {
		if rec, ok := c.fleets[in.ClientToken]; ok {
			if !reflect.DeepEqual(rec.input, in) {
				return providers.FleetLaunchResult{}, providers.NewIdempotencyMismatchError(
					fmt.Errorf("client token %q was used with different parameters", in.ClientToken))
			}
			return c.refreshLocked(rec.result), nil
		}
	}
	market, err := marketOf(in.Market)
	if err != nil {
		return providers.FleetLaunchResult{}, err
	}
	switch {
	case in.Params.LaunchTemplate.IsZero():
		return providers.FleetLaunchResult{}, providers.NewInvalidError(fmt.Errorf("CreateFleet needs a launch template"))
	case len(in.Params.SecurityGroupIDs) > 0:
		return providers.FleetLaunchResult{}, providers.NewInvalidError(fmt.Errorf("CreateFleet takes no security groups"))
	case len(in.Overrides) == 0 || in.TotalUnits < 1 || in.MinUnits < 0 || in.MinUnits > in.TotalUnits:
		return providers.FleetLaunchResult{}, providers.NewInvalidError(fmt.Errorf("invalid fleet of %d overrides, %d..%d units",
			len(in.Overrides), in.MinUnits, in.TotalUnits))
	}
	if err := c.checkParamsLocked(in.Params); err != nil {
		return providers.FleetLaunchResult{}, err
	}
	zones := make([]string, len(in.Overrides))
	for i, o := range in.Overrides {
		if !c.knownLocked(o.InstanceType) || o.Weight < 1 {
			return providers.FleetLaunchResult{}, providers.NewInvalidError(fmt.Errorf("invalid override %d: %q of weight %d", i, o.InstanceType, o.Weight))
		}
		if zones[i], err = c.zoneLocked(o.Zone, o.SubnetID); err != nil {
			return providers.FleetLaunchResult{}, err
		}
	}

	type pick struct {
		override int
		zone     string
		pool     pool
		n        int
	}
	var picks []pick
	var res providers.FleetLaunchResult
	used := map[pool]int{}
	remaining := in.TotalUnits
	for _, i := range c.fleetOrderLocked(in, market) {
		if remaining <= 0 {
			break
		}
		o := in.Overrides[i]
		want := (remaining + o.Weight - 1) / o.Weight
		candidates := c.zones
		if zones[i] != "" {
			candidates = []string{zones[i]}
		}
		n := 0
		var at pick
		for _, z := range candidates {
			p := c.poolLocked(o.InstanceType, z, market)
			free := c.freeLocked(p)
			if free == Unlimited {
				n = want
			} else {
				n = min(want, free-used[p])
			}
			if n > 0 {
				at = pick{override: i, zone: z, pool: p, n: n}
				break
			}
		}
		if n <= 0 {
			res.Errors = append(res.Errors, iceError(i))
			continue
		}
		picks = append(picks, at)
		used[at.pool] += n
		remaining -= n * o.Weight
	}
	if in.MinUnits > 0 && in.TotalUnits-remaining < in.MinUnits {
		for _, p := range picks {
			res.Errors = append(res.Errors, iceError(p.override))
		}
		picks = nil
	}
	state := providers.StateRunning
	if c.PendingDescribes > 0 {
		state = providers.StatePending
	}
	for _, p := range picks {
		c.takeLocked(p.pool, p.n)
		for range p.n {
			inst := &instance{Instance: providers.Instance{
				ID: fmt.Sprintf("i-%017x", len(c.instances)+1), InstanceType: in.Overrides[p.override].InstanceType, Zone: p.zone,
				State: state, LaunchTime: time.Now(), Tags: maps.Clone(in.Tags), Market: market,
			}, pool: p.pool}
			c.instances = append(c.instances, inst)
			c.byID[inst.ID] = inst
			res.Instances = append(res.Instances, providers.FleetLaunched{Override: p.override, Instance: copyInstance(&inst.Instance)})
		}
	}
	if in.ClientToken != "" {
		c.fleets[in.ClientToken] = fleetRecord{input: in, result: res}
	}
	return res, nil
}

func iceError(override int) providers.FleetLaunchError {
	return providers.FleetLaunchError{Override: override, Code: "InsufficientInstanceCapacity",
		Message: "There is not enough capacity to fulfill your request.", Type: providers.ErrTypeInsufficientCapacity}
}

// refreshLocked is a replayed fleet result with the instances as they are
// now.
func (c *Compute) refreshLocked(res providers.FleetLaunchResult) providers.FleetLaunchResult {
	out := providers.FleetLaunchResult{Errors: slices.Clone(res.Errors)}
	for _, l := range res.Instances {
		out.Instances = append(out.Instances, providers.FleetLaunched{Override: l.Override, Instance: copyInstance(&c.byID[l.Instance.ID].Instance)})
	}
	return out
}

// fleetOrderLocked is the order LaunchFleet tries in's overrides in.
func (c *Compute) fleetOrderLocked(in providers.FleetLaunchInput, market string) []int {
	order := make([]int, len(in.Overrides))
	for i := range order {
		order[i] = i
	}
	switch in.Strategy {
	case "prioritized", "capacity-optimized-prioritized":
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(in.Overrides[a].Priority, in.Overrides[b].Priority) })
	case "lowest-price", "":
		perUnit := func(i int) float64 {
			o := in.Overrides[i]
			return c.infoLocked(providers.Offering{InstanceType: o.InstanceType, Zone: o.Zone, Market: market}).Price / float64(o.Weight)
		}
		slices.SortStableFunc(order, func(a, b int) int { return cmp.Compare(perUnit(a), perUnit(b)) })
	}
	return order
}

// DescribeOfferings answers what SetOfferingInfo set, 0s for the rest. An
// offering without a zone that has no answer of its own gets the lowest
// positive price and the best score of its type's zones in its market.
func (c *Compute) DescribeOfferings(ctx context.Context, offerings []providers.Offering) ([]providers.OfferingInfo, error) {
	if _, err := c.begin(ctx, MethodDescribeOfferings, slices.Clone(offerings)); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]providers.OfferingInfo, len(offerings))
	for i, o := range offerings {
		out[i] = c.infoLocked(o)
		out[i].Offering = o
	}
	return out, nil
}

func (c *Compute) infoLocked(o providers.Offering) providers.OfferingInfo {
	o.Market = cmp.Or(o.Market, providers.MarketOnDemand)
	if info, ok := c.info[o]; ok || o.Zone != "" {
		return info
	}
	var best providers.OfferingInfo
	for k, info := range c.info {
		if k.InstanceType != o.InstanceType || k.Market != o.Market {
			continue
		}
		if info.Price > 0 && (best.Price == 0 || info.Price < best.Price) {
			best.Price = info.Price
		}
		best.Score = max(best.Score, info.Score)
	}
	return best
}

// Subnets resolves subnets AddSubnet made known; any other id fails the
// call with NotFoundError.
func (c *Compute) Subnets(ctx context.Context, ids []string) ([]providers.Subnet, error) {
	if _, err := c.begin(ctx, MethodSubnets, slices.Clone(ids)); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]providers.Subnet, 0, len(ids))
	for _, id := range ids {
		zone, ok := c.subnets[id]
		if !ok {
			return nil, providers.NewNotFoundError(fmt.Errorf("subnet %s does not exist", id))
		}
		out = append(out, providers.Subnet{ID: id, Zone: zone})
	}
	return out, nil
}

// knownLocked reports whether instanceType was given to SetCapacity or
// SetOfferingCapacity.
func (c *Compute) knownLocked(instanceType string) bool {
	if _, ok := c.free[instanceType]; ok {
		return true
	}
	for p := range c.offers {
		if p.instanceType == instanceType {
			return true
		}
	}
	return false
}

// poolLocked is the pool a launch of instanceType in zone and market draws
// from: the offering's if it has capacity of its own, else the type's.
func (c *Compute) poolLocked(instanceType, zone, market string) pool {
	p := pool{instanceType, zone, market}
	if _, ok := c.offers[p]; ok {
		return p
	}
	return pool{instanceType: instanceType}
}

// freeLocked is the capacity left in p, or Unlimited.
func (c *Compute) freeLocked(p pool) int {
	if p.market == "" {
		return c.free[p.instanceType]
	}
	return c.offers[p]
}

func (c *Compute) takeLocked(p pool, n int) { c.giveLocked(p, -n) }

func (c *Compute) giveLocked(p pool, n int) {
	if c.freeLocked(p) == Unlimited {
		return
	}
	if p.market == "" {
		c.free[p.instanceType] += n
	} else {
		c.offers[p] += n
	}
}

// placeLocked finds the first of zones whose pool for instanceType in
// market can hold need. It returns "" and the first zone's capacity left
// when none can.
func (c *Compute) placeLocked(instanceType string, zones []string, market string, need int) (zone string, p pool, free int) {
	for i, z := range zones {
		zp := c.poolLocked(instanceType, z, market)
		n := c.freeLocked(zp)
		if n == Unlimited || n >= need {
			return z, zp, n
		}
		if i == 0 {
			free = n
		}
	}
	return "", pool{}, free
}

// zoneLocked is the zone a launch names, directly or by its subnet; ""
// when it names none.
func (c *Compute) zoneLocked(zone, subnet string) (string, error) {
	if subnet == "" {
		return zone, nil
	}
	z, ok := c.subnets[subnet]
	if !ok {
		return "", providers.NewNotFoundError(fmt.Errorf("subnet %s does not exist", subnet))
	}
	if zone != "" && zone != z {
		return "", providers.NewInvalidError(fmt.Errorf("subnet %s is in %s, not %s", subnet, z, zone))
	}
	return z, nil
}

// checkParamsLocked fails with InvalidError for launch parameters that
// RejectParam named.
func (c *Compute) checkParamsLocked(p providers.LaunchParams) error {
	named := []struct{ what, value string }{
		{"image", p.ImageID}, {"key pair", p.KeyName}, {"instance profile", p.IAMInstanceProfile},
		{"launch template", p.LaunchTemplate.ID}, {"launch template", p.LaunchTemplate.Name},
	}
	for _, sg := range p.SecurityGroupIDs {
		named = append(named, struct{ what, value string }{"security group", sg})
	}
	for _, n := range named {
		if n.value != "" && c.rejected[n.value] {
			return providers.NewInvalidError(fmt.Errorf("the %s %q does not exist", n.what, n.value))
		}
	}
	return nil
}

// marketOf is market, with "" for on-demand; another is InvalidError.
func marketOf(market string) (string, error) {
	switch market {
	case "", providers.MarketOnDemand:
		return providers.MarketOnDemand, nil
	case providers.MarketSpot:
		return market, nil
	}
	return "", providers.NewInvalidError(fmt.Errorf("unknown market %q", market))
}
