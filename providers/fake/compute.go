// Package fake provides in-memory implementations of the providers
// contracts for tests in other packages.
package fake

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/gust-dev/gust/providers"
)

// Compute method names, as recorded in Call.Method and accepted by FailNext
// and CallCount.
const (
	MethodReserve           = "Reserve"
	MethodCancelReservation = "CancelReservation"
	MethodRun               = "Run"
	MethodDescribe          = "Describe"
	MethodTerminate         = "Terminate"
	MethodInstanceTypes     = "InstanceTypes"
	MethodLaunchFleet       = "LaunchFleet"
	MethodDescribeOfferings = "DescribeOfferings"
	MethodSubnets           = "Subnets"
	MethodListReservations  = "ListReservations"
)

// Unlimited, given to SetCapacity, makes an instance type's open capacity
// endless: Reserve never runs short and Run launches MaxCount.
const Unlimited = -1

// ErrResponseLost is what Run returns after it launched, when LoseResponse
// told it to drop the response. It is a plain error, so the fleet
// activities report it as retryable.
var ErrResponseLost = errors.New("fake: connection reset after the launch (response lost)")

// Call is one recorded call. Input is the method's argument after ctx:
// providers.ReserveInput, the reservation id, providers.RunInput,
// providers.InstanceFilter, the []string of ids, nil (InstanceTypes),
// providers.FleetLaunchInput, []providers.Offering, or the []string of
// subnet ids.
type Call struct {
	Method string
	Input  any
}

// Compute is an in-memory providers.Compute with EC2's semantics where gust
// depends on them: open capacity per instance type, and optionally per
// offering (type, zone and market); capacity reservations
// that hold capacity taken from it; all-or-nothing MinCount; ClientToken
// idempotency for Run and Reserve (the same token with other parameters is
// IdempotencyMismatchError); capacity returned to its reservation (while
// active) or to the open pool when an instance terminates; Describe filters
// by ids, tags and states. It is safe for concurrent use.
//
// A new Compute knows no instance type and has no capacity: SetCapacity
// adds both. Instance ids (i-...) and reservation ids (cr-...) count up
// from 1 in creation order.
//
// Knobs, for tests that script the cloud:
//
//   - Hold capacity short: SetCapacity(type, n) sets the open capacity left
//     (Unlimited for no limit). A Reserve or Run that asks for more than is
//     left fails with InsufficientCapacityError and changes nothing.
//   - Capacity per offering: SetOfferingCapacity(type, zone, market, n).
//     The rule: a launch or reservation of a type in a zone and market
//     draws from that offering's capacity if one was set, else from the
//     type's (SetCapacity), which every zone and both markets share. A
//     launch without a zone (nor subnet, nor reservation) goes to the
//     first zone, in zone order, whose capacity can hold its MinCount; a
//     Reserve tries its Zones (all zones when empty) in order likewise.
//     Capacity returns to the pool it was drawn from.
//   - Networks and parameters: AddSubnet(id, zone) makes a subnet known
//     (Run and LaunchFleet place instances in its zone; an unknown subnet
//     is NotFoundError); RejectParam(values...) makes any image, key,
//     security group, instance profile or template id or name among the
//     values an InvalidError, dry run or not.
//   - Prices and scores: SetOfferingInfo answers DescribeOfferings, and
//     ranks LaunchFleet's lowest-price strategy.
//   - Spot interruptions: Interrupt(ids...) gives spot instances their
//     interruption notice (Interrupted, and the state reason
//     Server.SpotInstanceTermination); SetState(providers.StateTerminated,
//     ids...) then reclaims them.
//   - Fail the next call: FailNext(MethodRun, providers.NewThrottledError(err))
//     makes the next Run fail with that error and launch nothing; likewise
//     for any method. Errors queue per method, one per call, so calling
//     FailNext(MethodReserve, ice) four times fails the next four Reserves.
//   - Fail Runs by a rule: FailRun sees each Run's input and how many
//     earlier Runs carried its ClientToken, e.g. to throttle one burst
//     chunk's first three tries.
//   - Lose a response: LoseResponse(prefix, n) makes Run launch and then
//     return ErrResponseLost, as when a worker crashes after EC2 acted.
//   - Change instances behind gust's back: SetState(providers.StateTerminated,
//     ids...) terminates instances out of band (a console user, a spot
//     reclaim); SetState(providers.StateRunning, ids...) boots them. Neither
//     is recorded as a call.
//   - Model boot and eventual consistency: PendingDescribes makes new
//     instances pending for that many Describes; StaleDescribes makes
//     Describe report instances Terminate terminated in their old state for
//     that many calls.
//
// Observations: Calls and CallCount count calls per method (failed ones
// included); RunTokens counts Run calls per ClientToken; Instances,
// Instance and Live show the instances; Reservations, Reservation and
// ReservedLaunches the reservations; Capacity the open pool.
type Compute struct {
	// FailRun, if set, is consulted by every Run that FailNext did not fail,
	// before anything else happens: a non-nil error is the call's result and
	// nothing launches. attempt is how many earlier Run calls carried
	// in.ClientToken (0 on the first). As on EC2, it comes before the
	// ClientToken check, so a retry of a launch that succeeded can fail too.
	// It runs outside the Compute's lock and may call its methods. Set it
	// before the code under test runs.
	FailRun func(in providers.RunInput, attempt int) error
	// PendingDescribes is how many Describe results report a new instance
	// pending; after the last of them it is running, as an instance that
	// booted. 0 launches instances running. Set it before use.
	PendingDescribes int
	// StaleDescribes is how many Describe calls go on reporting an instance
	// that Terminate terminated in the state it had before, as EC2's
	// eventually consistent DescribeInstances can. Set it before use.
	StaleDescribes int

	mu           sync.Mutex
	zones        []string
	free         map[string]int // open capacity per instance type (or Unlimited); keys are the known types
	offers       map[pool]int   // capacity per offering (or Unlimited), where set
	info         map[providers.Offering]providers.OfferingInfo
	subnets      map[string]string // subnet id -> zone
	rejected     map[string]bool   // launch parameter values that are InvalidError
	resPool      map[string]pool   // reservation id -> the pool its capacity came from
	fleets       map[string]fleetRecord
	instances    []*instance // in launch order
	byID         map[string]*instance
	reservations []*providers.Reservation // in creation order
	resByID      map[string]*providers.Reservation
	resTags      map[string]map[string]string // reservation id -> its tags
	launched     map[string]runRecord         // Run ClientToken -> first call
	reserved     map[string]reserveRecord     // Reserve ClientToken -> first call
	runAttempts  map[string]int               // Run calls per ClientToken
	lose         []lostResponse
	failures     map[string][]error
	calls        []Call
}

// instance is a launched instance and the fake's bookkeeping for it.
type instance struct {
	providers.Instance
	reservation string // the reservation it launched into; "" for open capacity
	pool        pool   // the pool its capacity came from (its reservation's, for one launched into a reservation)
	pendingSeen int    // Describe results that reported it pending
	stale       int    // Describe calls left that report staleState
	staleState  string
}

type runRecord struct {
	input providers.RunInput
	ids   []string
}

type reserveRecord struct {
	input providers.ReserveInput
	id    string
}

type lostResponse struct {
	prefix string
	n      int
}

var _ providers.Compute = (*Compute)(nil)

// NewCompute returns a Compute with zones us-east-1a, b and c, no instance
// type and no capacity; add some with SetCapacity.
func NewCompute() *Compute {
	return &Compute{
		zones:       []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		free:        map[string]int{},
		byID:        map[string]*instance{},
		resByID:     map[string]*providers.Reservation{},
		resTags:     map[string]map[string]string{},
		launched:    map[string]runRecord{},
		reserved:    map[string]reserveRecord{},
		runAttempts: map[string]int{},
		failures:    map[string][]error{},
		offers:      map[pool]int{},
		info:        map[providers.Offering]providers.OfferingInfo{},
		subnets:     map[string]string{},
		rejected:    map[string]bool{},
		resPool:     map[string]pool{},
		fleets:      map[string]fleetRecord{},
	}
}

// SetCapacity sets the open capacity of instanceType that is left, n
// instances or Unlimited, and makes the type known. Instances already
// running and reservations keep theirs.
func (c *Compute) SetCapacity(instanceType string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.free[instanceType] = n
}

// Capacity returns the open capacity of instanceType that is left, or
// Unlimited.
func (c *Compute) Capacity(instanceType string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.free[instanceType]
}

// FailNext makes the next call of method (MethodRun, ...) return err and do
// nothing else; use a typed provider error (providers.NewThrottledError...)
// to choose how gust sees it. Errors queue up: each call takes one.
func (c *Compute) FailNext(method string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[method] = append(c.failures[method], err)
}

// LoseResponse makes the next n Run calls whose ClientToken starts with
// prefix launch their instances and then return ErrResponseLost. A retry
// with the same token returns those instances, as on EC2.
func (c *Compute) LoseResponse(prefix string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lose = append(c.lose, lostResponse{prefix: prefix, n: n})
}

// SetState sets instances' state as the cloud would on its own:
// providers.StateTerminated terminates them out of band,
// providers.StateRunning boots pending ones. It is not recorded as a call.
// An instance that leaves pending and running returns its capacity as
// Terminate does. It panics on an unknown id or on bringing back an
// instance that had left pending and running: the fake does not model it.
func (c *Compute) SetState(state string, ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		in, ok := c.byID[id]
		if !ok {
			panic("fake: SetState of unknown instance " + id)
		}
		if !live(in.State) && live(state) {
			panic(fmt.Sprintf("fake: SetState cannot bring %s back from %s", id, in.State))
		}
		if live(in.State) && !live(state) {
			c.releaseLocked(in)
			in.Interrupted = false
		}
		in.State = state
	}
}

// Calls returns every call so far, in order, including failed ones.
func (c *Compute) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.calls)
}

// CallCount returns how many times method was called, failed calls
// included.
func (c *Compute) CallCount(method string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, call := range c.calls {
		if call.Method == method {
			n++
		}
	}
	return n
}

// RunTokens returns how many Run calls, failed ones included, carried each
// ClientToken that starts with prefix ("" for every token).
func (c *Compute) RunTokens(prefix string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for tok, n := range c.runAttempts {
		if strings.HasPrefix(tok, prefix) {
			out[tok] = n
		}
	}
	return out
}

// Instances returns every instance ever launched, terminated ones included,
// in launch order, in their true states (Describe's staleness aside).
func (c *Compute) Instances() []providers.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]providers.Instance, 0, len(c.instances))
	for _, in := range c.instances {
		out = append(out, copyInstance(&in.Instance))
	}
	return out
}

// Instance returns one instance in its true state.
func (c *Compute) Instance(id string) (providers.Instance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	in, ok := c.byID[id]
	if !ok {
		return providers.Instance{}, false
	}
	return copyInstance(&in.Instance), true
}

// Live returns the ids, in launch order, of the pending and running
// instances that carry every tag in tags (every instance for nil tags).
func (c *Compute) Live(tags map[string]string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	ids := []string{}
	for _, in := range c.instances {
		if live(in.State) && hasTags(in.Tags, tags) {
			ids = append(ids, in.ID)
		}
	}
	return ids
}

// Reservation returns a reservation's current state.
func (c *Compute) Reservation(id string) (providers.Reservation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.resByID[id]
	if !ok {
		return providers.Reservation{}, false
	}
	return *r, true
}

// Reservations returns every reservation ever made, cancelled ones
// included (State "cancelled"), in creation order.
func (c *Compute) Reservations() []providers.Reservation {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]providers.Reservation, 0, len(c.reservations))
	for _, r := range c.reservations {
		out = append(out, *r)
	}
	return out
}

// ReservedLaunches returns how many instances were launched into a
// capacity reservation; the others came from open capacity.
func (c *Compute) ReservedLaunches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, in := range c.instances {
		if in.reservation != "" {
			n++
		}
	}
	return n
}

// begin records the call and returns a queued failure or ctx's error. For
// Run it also returns how many earlier Runs carried the input's token.
func (c *Compute) begin(ctx context.Context, method string, input any) (attempt int, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls = append(c.calls, Call{Method: method, Input: input})
	if in, ok := input.(providers.RunInput); ok {
		attempt = c.runAttempts[in.ClientToken]
		c.runAttempts[in.ClientToken]++
	}
	if q := c.failures[method]; len(q) > 0 {
		err, c.failures[method] = q[0], q[1:]
		return attempt, err
	}
	return attempt, ctx.Err()
}

// Reserve holds Count of the type's open capacity in the first of in.Zones
// (or us-east-1a).
func (c *Compute) Reserve(ctx context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	if _, err := c.begin(ctx, MethodReserve, in); err != nil {
		return providers.Reservation{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.ClientToken != "" {
		if rec, ok := c.reserved[in.ClientToken]; ok {
			if !reflect.DeepEqual(rec.input, in) {
				return providers.Reservation{}, providers.NewIdempotencyMismatchError(
					fmt.Errorf("client token %q was used with different parameters", in.ClientToken))
			}
			return *c.resByID[rec.id], nil
		}
	}
	if !c.knownLocked(in.InstanceType) || in.Count < 1 {
		return providers.Reservation{}, providers.NewInvalidError(fmt.Errorf("invalid reservation of %d %q", in.Count, in.InstanceType))
	}
	zones := in.Zones
	if len(zones) == 0 {
		zones = c.zones
	}
	zone, p, free := c.placeLocked(in.InstanceType, zones, providers.MarketOnDemand, in.Count)
	if zone == "" {
		return providers.Reservation{}, providers.NewInsufficientCapacityError(
			fmt.Errorf("insufficient %s capacity: %d free, %d asked", in.InstanceType, free, in.Count))
	}
	c.takeLocked(p, in.Count)
	r := &providers.Reservation{
		ID: fmt.Sprintf("cr-%017x", len(c.reservations)+1), InstanceType: in.InstanceType, Zone: zone,
		Count: in.Count, Available: in.Count, State: "active",
	}
	c.reservations = append(c.reservations, r)
	c.resByID[r.ID] = r
	c.resPool[r.ID] = p
	c.resTags[r.ID] = maps.Clone(in.Tags)
	if in.ClientToken != "" {
		c.reserved[in.ClientToken] = reserveRecord{input: in, id: r.ID}
	}
	return *r, nil
}

// CancelReservation returns the reservation's unused capacity to the open
// pool. Cancelling twice is not an error.
func (c *Compute) CancelReservation(ctx context.Context, id string) error {
	if _, err := c.begin(ctx, MethodCancelReservation, id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.resByID[id]
	if !ok {
		return providers.NewNotFoundError(fmt.Errorf("capacity reservation %s does not exist", id))
	}
	if r.State == "active" {
		c.giveLocked(c.resPool[id], r.Available)
		r.Available = 0
		r.State = "cancelled"
	}
	return nil
}

// ListReservations lists the active reservations that carry every tag,
// in creation order. Unlike EC2 it never lags.
func (c *Compute) ListReservations(ctx context.Context, tags map[string]string) ([]providers.Reservation, error) {
	if _, err := c.begin(ctx, MethodListReservations, maps.Clone(tags)); err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return nil, providers.NewInvalidError(errors.New("listing capacity reservations needs a tag"))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.Reservation
	for _, r := range c.reservations {
		if r.State == "active" && hasTags(c.resTags[r.ID], tags) {
			out = append(out, *r)
		}
	}
	return out, nil
}

// Run launches between MinCount and MaxCount instances, from the targeted
// reservation or the open pool.
func (c *Compute) Run(ctx context.Context, in providers.RunInput) ([]providers.Instance, error) {
	attempt, err := c.begin(ctx, MethodRun, in)
	if err != nil {
		return nil, err
	}
	if c.FailRun != nil {
		if err := c.FailRun(in, attempt); err != nil {
			return nil, err
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.ClientToken != "" && !in.DryRun {
		if rec, ok := c.launched[in.ClientToken]; ok {
			if !reflect.DeepEqual(rec.input, in) {
				return nil, providers.NewIdempotencyMismatchError(fmt.Errorf("client token %q was used with different parameters", in.ClientToken))
			}
			out := make([]providers.Instance, 0, len(rec.ids))
			for _, id := range rec.ids {
				out = append(out, copyInstance(&c.byID[id].Instance))
			}
			return out, nil
		}
	}
	if !c.knownLocked(in.InstanceType) || in.MinCount < 1 || in.MaxCount < in.MinCount {
		return nil, providers.NewInvalidError(fmt.Errorf("invalid launch of %d to %d %q", in.MinCount, in.MaxCount, in.InstanceType))
	}
	market, err := marketOf(in.Market)
	if err != nil {
		return nil, err
	}
	if err := c.checkParamsLocked(in.Params); err != nil {
		return nil, err
	}
	zone, err := c.zoneLocked(in.Zone, in.SubnetID)
	if err != nil {
		return nil, err
	}
	var r *providers.Reservation
	if in.ReservationID != "" {
		if market == providers.MarketSpot {
			return nil, providers.NewInvalidError(fmt.Errorf("a spot launch cannot target capacity reservation %s", in.ReservationID))
		}
		var ok bool
		if r, ok = c.resByID[in.ReservationID]; !ok {
			return nil, providers.NewNotFoundError(fmt.Errorf("capacity reservation %s does not exist", in.ReservationID))
		}
		if r.State != "active" || r.InstanceType != in.InstanceType {
			return nil, providers.NewInvalidError(fmt.Errorf("cannot launch %s into %s reservation %s", in.InstanceType, r.State, r.ID))
		}
	}
	if in.DryRun {
		// Valid: what EC2 answers with DryRunOperation. Capacity is not
		// checked.
		return nil, nil
	}
	var p pool
	var available int
	if r != nil {
		available, zone, p = r.Available, r.Zone, c.resPool[r.ID]
	} else {
		zones := c.zones
		if zone != "" {
			zones = []string{zone}
		}
		var placed string
		placed, p, available = c.placeLocked(in.InstanceType, zones, market, in.MinCount)
		if placed != "" {
			zone = placed
			if available == Unlimited {
				available = in.MaxCount
			}
		}
	}
	n := min(in.MaxCount, available)
	if n < in.MinCount {
		return nil, providers.NewInsufficientCapacityError(
			fmt.Errorf("insufficient %s capacity: %d available, at least %d asked", in.InstanceType, available, in.MinCount))
	}
	if r != nil {
		r.Available -= n
	} else {
		c.takeLocked(p, n)
	}
	state := providers.StateRunning
	if c.PendingDescribes > 0 {
		state = providers.StatePending
	}
	out := make([]providers.Instance, 0, n)
	ids := make([]string, 0, n)
	for range n {
		inst := &instance{Instance: providers.Instance{
			ID: fmt.Sprintf("i-%017x", len(c.instances)+1), InstanceType: in.InstanceType, Zone: zone,
			State: state, LaunchTime: time.Now(), Tags: maps.Clone(in.Tags), Market: market,
		}, pool: p}
		if r != nil {
			inst.reservation = r.ID
		}
		c.instances = append(c.instances, inst)
		c.byID[inst.ID] = inst
		ids = append(ids, inst.ID)
		out = append(out, copyInstance(&inst.Instance))
	}
	if in.ClientToken != "" {
		c.launched[in.ClientToken] = runRecord{input: in, ids: ids}
	}
	for i := range c.lose {
		if l := &c.lose[i]; l.n > 0 && strings.HasPrefix(in.ClientToken, l.prefix) {
			l.n--
			return nil, ErrResponseLost
		}
	}
	return out, nil
}

// Describe lists matching instances in launch order, terminated ones
// included unless f.States excludes them. Each call ages PendingDescribes
// and StaleDescribes.
func (c *Compute) Describe(ctx context.Context, f providers.InstanceFilter) ([]providers.Instance, error) {
	if _, err := c.begin(ctx, MethodDescribe, f); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.Instance
	for _, in := range c.instances {
		state := in.State
		if in.stale > 0 {
			in.stale--
			state = in.staleState
		}
		if (len(f.IDs) > 0 && !slices.Contains(f.IDs, in.ID)) ||
			(len(f.States) > 0 && !slices.Contains(f.States, state)) || !hasTags(in.Tags, f.Tags) {
			continue
		}
		reported := copyInstance(&in.Instance)
		reported.State = state
		out = append(out, reported)
		if state == providers.StatePending && in.State == providers.StatePending {
			in.pendingSeen++
			if in.pendingSeen >= c.PendingDescribes {
				in.State = providers.StateRunning
			}
		}
	}
	return out, nil
}

// Terminate terminates instances and returns their capacity to their
// reservation if it is still active, else to the open pool. An unknown id
// fails the whole call with NotFoundError and changes nothing.
func (c *Compute) Terminate(ctx context.Context, ids []string) error {
	if _, err := c.begin(ctx, MethodTerminate, slices.Clone(ids)); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if _, ok := c.byID[id]; !ok {
			return providers.NewNotFoundError(fmt.Errorf("instance %s does not exist", id))
		}
	}
	for _, id := range ids {
		in := c.byID[id]
		if !live(in.State) {
			continue
		}
		in.stale, in.staleState = c.StaleDescribes, in.State
		in.State = providers.StateTerminated
		c.releaseLocked(in)
	}
	return nil
}

// releaseLocked returns a departing instance's capacity to its reservation
// if it is still active, else to the open pool.
func (c *Compute) releaseLocked(in *instance) {
	if r, ok := c.resByID[in.reservation]; ok && r.State == "active" {
		r.Available++
	} else {
		c.giveLocked(in.pool, 1)
	}
}

// InstanceTypes lists the types given to SetCapacity or SetOfferingCapacity.
func (c *Compute) InstanceTypes(ctx context.Context) ([]string, error) {
	if _, err := c.begin(ctx, MethodInstanceTypes, nil); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.free))
	for t := range c.free {
		out = append(out, t)
	}
	for p := range c.offers {
		if !slices.Contains(out, p.instanceType) {
			out = append(out, p.instanceType)
		}
	}
	sort.Strings(out)
	return out, nil
}

// live reports whether an instance in state holds capacity.
func live(state string) bool {
	return state == providers.StatePending || state == providers.StateRunning
}

func hasTags(have, want map[string]string) bool {
	for k, v := range want {
		if got, ok := have[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func copyInstance(in *providers.Instance) providers.Instance {
	out := *in
	out.Tags = maps.Clone(in.Tags)
	return out
}
