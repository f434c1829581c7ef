package activities

import (
	"context"

	"github.com/gust-dev/gust/providers"
)

// reconcileFleet implements ReconcileFleet.
func (a *Fleet) reconcileFleet(ctx context.Context, in ReconcileFleetInput) (ReconcileFleetResult, error) {
	if in.FleetID == "" {
		return ReconcileFleetResult{}, invalidInput("reconciling a fleet: no fleet id")
	}
	compute, err := a.compute(ctx, in.Tenant)
	if err != nil {
		return ReconcileFleetResult{}, err
	}
	instances, err := keepAlive(ctx, func() ([]providers.Instance, error) {
		return compute.Describe(ctx, providers.InstanceFilter{Tags: fleetTags(in.FleetID, in.RunTag)})
	})
	if err != nil {
		return ReconcileFleetResult{}, ProviderErrorf("describing fleet instances", err)
	}
	res := ReconcileFleetResult{Total: len(instances)}
	for _, inst := range instances {
		switch inst.State {
		case providers.StateRunning:
			res.Running++
			if !inst.Interrupted {
				continue
			}
		case providers.StatePending:
			res.Pending++
		}
		res.NotRunning = append(res.NotRunning, InstanceState{ID: inst.ID, State: inst.State, Interrupted: inst.Interrupted})
	}
	if a.Events != nil {
		res.EventsActive = a.Events.Watch(providers.TenantOrDefault(in.Tenant))
	}
	return res, nil
}
