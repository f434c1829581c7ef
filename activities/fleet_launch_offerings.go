package activities

import (
	"context"
	"fmt"
	"slices"

	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
)

// launchOfferings implements LaunchOfferings. Each RunInstances call's
// client token is the input's ClientToken and the candidate's offering
// index; the CreateFleet call's is the ClientToken and "-fleet". A retry
// asks the same in the same order, so it gets the first attempt's
// instances back instead of launching more.
func (a *Fleet) launchOfferings(ctx context.Context, in LaunchOfferingsInput) (LaunchOfferingsResult, error) {
	if err := checkOfferingsInput(in.FleetID, in.ClientToken, in.Units, len(in.Candidates)); err != nil {
		return LaunchOfferingsResult{}, err
	}
	if in.Market != providers.MarketOnDemand && in.Market != providers.MarketSpot {
		return LaunchOfferingsResult{}, invalidInput("launching offerings: unknown market %q", in.Market)
	}
	var seen []int
	for i, c := range in.Candidates {
		if c.InstanceType == "" || c.Weight < 1 || slices.Contains(seen, c.Offering) {
			return LaunchOfferingsResult{}, invalidInput("launching offerings: candidate %d needs an instance type, a weight >= 1 and an offering of its own", i)
		}
		seen = append(seen, c.Offering)
	}
	tags := make(map[string]string, len(in.Tags)+1)
	for k, v := range in.Tags {
		tags[k] = v
	}
	tags[providers.FleetTagKey] = in.FleetID
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return LaunchOfferingsResult{}, err
	}
	var res LaunchOfferingsResult
	// CreateFleet takes no security groups (providers.Compute.LaunchFleet):
	// with them, the launch goes candidate by candidate.
	if !in.Params.LaunchTemplate.IsZero() && len(in.Candidates) >= 2 && len(in.Params.SecurityGroupIDs) == 0 {
		res, err = a.launchFleet(ctx, compute, in, tags)
	} else {
		res, err = a.launchEach(ctx, compute, in, tags)
	}
	if err != nil {
		return LaunchOfferingsResult{}, err
	}
	countLaunched(ctx, "fill", len(res.Instances))
	if runTag := in.Tags[FleetRunTagKey]; a.Events != nil && runTag != "" && len(res.Instances) > 0 {
		ids := make([]string, len(res.Instances))
		for i, l := range res.Instances {
			ids[i] = l.ID
		}
		a.Events.Learn(providers.TenantOrDefault(in.Tenant), in.FleetID, runTag, ids)
	}
	return res, nil
}

// launchEach runs the candidates in order until the units are launched,
// moving on at once from one without capacity.
func (a *Fleet) launchEach(ctx context.Context, compute providers.Compute, in LaunchOfferingsInput, tags map[string]string) (LaunchOfferingsResult, error) {
	res := LaunchOfferingsResult{Instances: []LaunchedInstance{}}
	remaining := in.Units
	for _, c := range in.Candidates {
		if remaining <= 0 {
			break
		}
		count := ceilDiv(remaining, c.Weight)
		// A throttled call is retried here, not by failing the attempt:
		// a retried attempt would replay every candidate before it, each
		// a call into the same empty request bucket.
		instances, err := retryThrottled(ctx, nil, func() ([]providers.Instance, error) {
			return keepAlive(ctx, func() ([]providers.Instance, error) {
				return compute.Run(ctx, providers.RunInput{
					InstanceType: c.InstanceType, Zone: c.Zone, SubnetID: c.SubnetID, Market: in.Market, Params: in.Params,
					MinCount: 1, MaxCount: count, ClientToken: fmt.Sprintf("%s-o%d", in.ClientToken, c.Offering), Tags: tags,
				})
			})
		})
		if providers.IsInsufficientCapacity(err) {
			res.Unavailable = append(res.Unavailable, c.Offering)
			continue
		}
		if err != nil {
			return LaunchOfferingsResult{}, ProviderErrorf(fmt.Sprintf("launching up to %d %s (%s)", count, c.InstanceType, in.Market), err)
		}
		if len(instances) > count {
			return LaunchOfferingsResult{}, temporal.NewNonRetryableApplicationError(
				fmt.Sprintf("launching offerings: cloud returned %d instances for MaxCount %d", len(instances), count),
				providers.ErrTypeTooManyInstances, nil)
		}
		for _, inst := range instances {
			res.Instances = append(res.Instances, LaunchedInstance{ID: inst.ID, Offering: c.Offering})
		}
		remaining -= len(instances) * c.Weight
	}
	return res, nil
}

// launchFleet launches the candidates in one CreateFleet call.
func (a *Fleet) launchFleet(ctx context.Context, compute providers.Compute, in LaunchOfferingsInput, tags map[string]string) (LaunchOfferingsResult, error) {
	overrides := make([]providers.FleetLaunchOverride, len(in.Candidates))
	for i, c := range in.Candidates {
		overrides[i] = providers.FleetLaunchOverride{InstanceType: c.InstanceType, Zone: c.Zone, SubnetID: c.SubnetID, Weight: c.Weight, Priority: c.Priority}
	}
	out, err := keepAlive(ctx, func() (providers.FleetLaunchResult, error) {
		return compute.LaunchFleet(ctx, providers.FleetLaunchInput{
			Overrides: overrides, TotalUnits: in.Units, Market: in.Market, Strategy: in.Strategy,
			ClientToken: in.ClientToken + "-fleet", Tags: tags, Params: in.Params,
		})
	})
	if err != nil {
		return LaunchOfferingsResult{}, ProviderErrorf(fmt.Sprintf("launching a fleet of %d units (%s)", in.Units, in.Market), err)
	}
	res := LaunchOfferingsResult{Instances: []LaunchedInstance{}}
	for _, l := range out.Instances {
		offering := -1
		if l.Override >= 0 && l.Override < len(in.Candidates) {
			offering = in.Candidates[l.Override].Offering
		}
		res.Instances = append(res.Instances, LaunchedInstance{ID: l.Instance.ID, Offering: offering})
	}
	var failed *providers.FleetLaunchError
	for i, e := range out.Errors {
		if e.Type != providers.ErrTypeInsufficientCapacity {
			if failed == nil {
				failed = &out.Errors[i]
			}
			continue
		}
		if e.Override >= 0 && e.Override < len(in.Candidates) && !slices.Contains(res.Unavailable, in.Candidates[e.Override].Offering) {
			res.Unavailable = append(res.Unavailable, in.Candidates[e.Override].Offering)
		}
	}
	if failed != nil {
		if len(res.Instances) > 0 {
			activity.GetLogger(ctx).Warn("fleet launch partly failed", "FleetID", in.FleetID, "Code", failed.Code, "Message", failed.Message)
			return res, nil
		}
		msg := fmt.Sprintf("launching a fleet of %d units (%s): %s: %s", in.Units, in.Market, failed.Code, failed.Message)
		if failed.Type == "" {
			return LaunchOfferingsResult{}, temporal.NewApplicationError(msg, "")
		}
		return LaunchOfferingsResult{}, temporal.NewApplicationErrorWithOptions(msg, failed.Type,
			temporal.ApplicationErrorOptions{NonRetryable: providers.IsPermanent(failed.Type)})
	}
	return res, nil
}
