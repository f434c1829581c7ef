package events

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"go.temporal.io/api/serviceerror"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/sqsevents"
	"github.com/gust-dev/gust/workflows"
)

// owner is the fleet launch an instance belongs to; the zero owner means
// the instance is no fleet's.
type owner struct {
	fleetID, runTag string
}

// maxRunTag bounds a run tag, which is a workflow run id.
const maxRunTag = 256

// validOwner reports whether a fleet tag and run tag can be a gust
// fleet's. One that breaks the fleet id rule is not: with a '/' it could
// name another tenant's workflow (workflows.FleetWorkflowID).
func validOwner(fleetID, runTag string) bool {
	return workflows.ValidFleetID(fleetID) && len(runTag) <= maxRunTag
}

// deliver signals one received batch of tenant's events to their fleets:
// it finds each instance's fleet (from the cache, else with one
// DescribeInstances for all the batch's misses, in tenant's account only),
// and sends each fleet launch one InstanceEventsInput. It returns nil only
// when every signal was delivered, or found its fleet gone; events of
// instances that are no fleet's are dropped.
func (r *Router) deliver(ctx context.Context, tenant string, evs []sqsevents.Event) error {
	owners, err := r.owners(ctx, tenant, evs)
	if err != nil {
		return err
	}
	groups := map[owner][]workflows.InstanceEvent{}
	dropped := 0
	for _, ev := range evs {
		o := owners[ev.InstanceID]
		if o == (owner{}) {
			dropped++
			continue
		}
		groups[o] = append(groups[o], workflows.InstanceEvent{ID: ev.InstanceID, State: ev.State, Interrupted: ev.Interrupted, At: ev.At})
	}
	r.countIgnored(tenant, reasonNoFleet, dropped)

	var wg sync.WaitGroup
	var mu sync.Mutex
	var errs []error
	for o, batch := range groups {
		wg.Go(func() {
			err := r.signal(ctx, tenant, o, batch)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// outboxKey names a fleet launch of a tenant.
type outboxKey struct {
	tenant string
	o      owner
}

// outbox is what waits for a fleet launch's next signal: the events, and
// for each batch they came from, where to report the signal's outcome.
type outbox struct {
	events  []workflows.InstanceEvent
	waiters []chan error
	// senders are the flushes sending to the fleet launch, at most
	// signalsInFlight.
	senders int
}

// signalsInFlight bounds the signals in flight to one fleet launch. Two,
// not one: a launch's events come in batches of ten (SQS's most per
// receive) that the receivers read at once, and with one signal at a time
// the second batch of a 20-instance burst waited a whole signal round trip
// behind the first before either reached the fleet. A third batch waits
// and goes with whatever else arrived meanwhile.
const signalsInFlight = 2

// signal gets batch to its fleet launch and returns the outcome of the
// signal that carried it. Signals to one fleet launch go at most
// signalsInFlight at a time: the batches that arrive while they are in
// flight go together in the next (group commit), so a fleet that the
// receivers feed from many batches at once gets a signal, and a workflow
// task, per round trip rather than per batch. Each batch still learns
// whether its own events went through, so its messages are deleted only
// then.
func (r *Router) signal(ctx context.Context, tenant string, o owner, batch []workflows.InstanceEvent) error {
	key := outboxKey{tenant, o}
	done := make(chan error, 1)
	r.omu.Lock()
	ob := r.outboxes[key]
	if ob == nil {
		ob = &outbox{}
		r.outboxes[key] = ob
	}
	ob.events = append(ob.events, batch...)
	ob.waiters = append(ob.waiters, done)
	start := ob.senders < signalsInFlight
	if start {
		ob.senders++
	}
	r.omu.Unlock()
	if start {
		// The caller is one of the loop's receivers, counted in r.wg, so
		// the count is positive here and Close waits for this too.
		r.wg.Add(1)
		go r.flush(key)
	}
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// flush sends key's outbox, one signal at a time, until it is empty; up to
// signalsInFlight flushes of one outbox run at once.
func (r *Router) flush(key outboxKey) {
	defer r.wg.Done()
	for {
		r.omu.Lock()
		ob := r.outboxes[key]
		if len(ob.waiters) == 0 {
			if ob.senders--; ob.senders == 0 {
				delete(r.outboxes, key)
			}
			r.omu.Unlock()
			return
		}
		evs, waiters := ob.events, ob.waiters
		ob.events, ob.waiters = nil, nil
		r.omu.Unlock()
		// A queue does not keep order; the fleet gets each instance's
		// events oldest first.
		slices.SortStableFunc(evs, func(a, b workflows.InstanceEvent) int { return a.At.Compare(b.At) })
		err := r.send(r.ctx, key.tenant, key.o, evs)
		for _, w := range waiters {
			w <- err
		}
	}
}

// send signals one fleet launch its events. A fleet whose workflow is not
// running (it completed) needs none: that is not an error.
func (r *Router) send(ctx context.Context, tenant string, o owner, batch []workflows.InstanceEvent) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.SignalTimeout)
	defer cancel()
	id := workflows.FleetWorkflowID(tenant, o.fleetID)
	err := r.cfg.Signaler.SignalWorkflow(ctx, id, "", workflows.InstanceEventsSignal,
		workflows.InstanceEventsInput{RunTag: o.runTag, Events: batch})
	var gone *serviceerror.NotFound
	switch {
	case errors.As(err, &gone):
		r.countIgnored(tenant, reasonFleetClosed, len(batch))
		return nil
	case err != nil:
		return fmt.Errorf("signalling fleet %s, %w", id, err)
	}
	r.count(tenant, MetricDelivered, len(batch))
	return nil
}

// owners finds the owner of each event's instance. Instances the cache
// does not know are described together, with tenant's own Compute, so an
// event can only ever reach a fleet of the account whose queue it came
// from; what the description finds (a fleet, or no fleet) is cached.
func (r *Router) owners(ctx context.Context, tenant string, evs []sqsevents.Event) (map[string]owner, error) {
	owners := make(map[string]owner, len(evs))
	var misses []string
	for _, ev := range evs {
		if _, seen := owners[ev.InstanceID]; seen {
			continue
		}
		o, ok := r.cache.get(tenant, ev.InstanceID)
		owners[ev.InstanceID] = o
		if !ok {
			misses = append(misses, ev.InstanceID)
		}
	}
	if len(misses) == 0 {
		return owners, nil
	}
	r.count(tenant, MetricLookupMisses, len(misses))
	compute, err := r.cfg.Accounts.Compute(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("finding the fleets of %d instances, %w", len(misses), err)
	}
	found, err := compute.Describe(ctx, providers.InstanceFilter{IDs: misses})
	if err != nil {
		return nil, fmt.Errorf("finding the fleets of %d instances, %w", len(misses), err)
	}
	slices.SortFunc(misses, cmp.Compare)
	for _, inst := range found {
		if _, asked := slices.BinarySearch(misses, inst.ID); !asked {
			continue // not trusted: only what was asked for is cached
		}
		o := owner{fleetID: inst.Tags[providers.FleetTagKey], runTag: inst.Tags[activities.FleetRunTagKey]}
		if !validOwner(o.fleetID, o.runTag) {
			o = owner{}
		}
		r.cache.put(tenant, inst.ID, o)
		owners[inst.ID] = o
	}
	// An instance the description did not find is dropped and not cached:
	// a description may lag a launch.
	return owners, nil
}
