// Package fake provides in-memory implementations of the providers
// contracts for tests in other packages.
package fake

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"sync"
	"time"

	"github.com/gust-dev/gust/providers"
)

// Method names, as recorded in Call.Method and accepted by FailNext.
const (
	MethodReserve           = "Reserve"
	MethodCancelReservation = "CancelReservation"
	MethodRun               = "Run"
	MethodDescribe          = "Describe"
	MethodTerminate         = "Terminate"
	MethodInstanceTypes     = "InstanceTypes"
)

// Call is one recorded call. Input is the method's argument after ctx:
// providers.ReserveInput, the reservation id, providers.RunInput,
// providers.InstanceFilter, the []string of ids, or nil.
type Call struct {
	Method string
	Input  any
}

// Compute is an in-memory providers.Compute with EC2's semantics where
// gust depends on them: open capacity per instance type, capacity
// reservations that hold capacity, all-or-nothing MinCount, ClientToken
// idempotency, and capacity returned on termination. Instances are running
// as soon as they launch. It is safe for concurrent use.
type Compute struct {
	// Now stamps launch times; nil means time.Now. Set it before use.
	Now func() time.Time
	// Hook, if set, runs at the start of every call, outside the lock; a
	// non-nil error is returned as the call's result and nothing happens.
	// Use it to block a call or to fail calls by a rule.
	Hook func(ctx context.Context, method string, input any) error

	mu            sync.Mutex
	zones         []string
	free          map[string]int // open capacity per instance type; keys are the known types
	instances     []*providers.Instance
	byID          map[string]*providers.Instance
	origin        map[string]string // instance id -> reservation id it launched into
	reservations  map[string]*providers.Reservation
	runTokens     map[string]runRecord
	reserveTokens map[string]reserveRecord
	failures      map[string][]error
	calls         []Call
	seq           int
}

type runRecord struct {
	input providers.RunInput
	ids   []string
}

type reserveRecord struct {
	input providers.ReserveInput
	id    string
}

var _ providers.Compute = (*Compute)(nil)

// NewCompute returns a Compute with zones us-east-1a, b and c and no
// capacity; add some with SetCapacity.
func NewCompute() *Compute {
	return &Compute{
		zones:         []string{"us-east-1a", "us-east-1b", "us-east-1c"},
		free:          map[string]int{},
		byID:          map[string]*providers.Instance{},
		origin:        map[string]string{},
		reservations:  map[string]*providers.Reservation{},
		runTokens:     map[string]runRecord{},
		reserveTokens: map[string]reserveRecord{},
		failures:      map[string][]error{},
	}
}

// SetCapacity sets the free open capacity of instanceType, which also makes
// the type known. It does not count instances already running.
func (c *Compute) SetCapacity(instanceType string, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.free[instanceType] = n
}

// Capacity returns the free open capacity of instanceType.
func (c *Compute) Capacity(instanceType string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.free[instanceType]
}

// FailNext makes the next call of method return err, with no effect. Errors
// queue up: each call consumes one.
func (c *Compute) FailNext(method string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failures[method] = append(c.failures[method], err)
}

// FailNextRun makes the next Run return err and launch nothing.
func (c *Compute) FailNextRun(err error) { c.FailNext(MethodRun, err) }

// FailNextReserve makes the next Reserve return err and reserve nothing.
func (c *Compute) FailNextReserve(err error) { c.FailNext(MethodReserve, err) }

// FailNextDescribe makes the next Describe return err.
func (c *Compute) FailNextDescribe(err error) { c.FailNext(MethodDescribe, err) }

// FailNextTerminate makes the next Terminate return err and terminate
// nothing.
func (c *Compute) FailNextTerminate(err error) { c.FailNext(MethodTerminate, err) }

// FailNextCancel makes the next CancelReservation return err.
func (c *Compute) FailNextCancel(err error) { c.FailNext(MethodCancelReservation, err) }

// Calls returns every call so far, in order, including failed ones.
func (c *Compute) Calls() []Call {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Call(nil), c.calls...)
}

// CallCount returns how many times method was called.
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

// RunCalls returns the inputs of every Run call, in order.
func (c *Compute) RunCalls() []providers.RunInput {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.RunInput
	for _, call := range c.calls {
		if in, ok := call.Input.(providers.RunInput); ok {
			out = append(out, in)
		}
	}
	return out
}

// Instances returns every instance ever launched, terminated ones included,
// in launch order.
func (c *Compute) Instances() []providers.Instance {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]providers.Instance, 0, len(c.instances))
	for _, in := range c.instances {
		out = append(out, copyInstance(in))
	}
	return out
}

// Live counts the instances that are not terminated and carry every tag in
// tags (all instances for nil tags).
func (c *Compute) Live(tags map[string]string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, in := range c.instances {
		if in.State != providers.StateTerminated && hasTags(in, tags) {
			n++
		}
	}
	return n
}

// Reservation returns a reservation's current state.
func (c *Compute) Reservation(id string) (providers.Reservation, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reservations[id]
	if !ok {
		return providers.Reservation{}, false
	}
	return *r, true
}

// begin records the call and returns a queued failure or the hook's error.
func (c *Compute) begin(ctx context.Context, method string, input any) error {
	c.mu.Lock()
	c.calls = append(c.calls, Call{Method: method, Input: input})
	var err error
	if q := c.failures[method]; len(q) > 0 {
		err, c.failures[method] = q[0], q[1:]
	}
	hook := c.Hook
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if hook != nil {
		if err := hook(ctx, method, input); err != nil {
			return err
		}
	}
	return ctx.Err()
}

func (c *Compute) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Reserve holds Count of the type's open capacity in the first of in.Zones
// (or us-east-1a).
func (c *Compute) Reserve(ctx context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	if err := c.begin(ctx, MethodReserve, in); err != nil {
		return providers.Reservation{}, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.ClientToken != "" {
		if rec, ok := c.reserveTokens[in.ClientToken]; ok {
			if !reflect.DeepEqual(rec.input, in) {
				return providers.Reservation{}, providers.NewIdempotencyMismatchError(
					fmt.Errorf("client token %q was used with different parameters", in.ClientToken))
			}
			return *c.reservations[rec.id], nil
		}
	}
	if _, ok := c.free[in.InstanceType]; !ok || in.Count < 1 {
		return providers.Reservation{}, providers.NewInvalidError(fmt.Errorf("invalid reservation of %d %q", in.Count, in.InstanceType))
	}
	if c.free[in.InstanceType] < in.Count {
		return providers.Reservation{}, providers.NewInsufficientCapacityError(
			fmt.Errorf("insufficient %s capacity: %d free, %d asked", in.InstanceType, c.free[in.InstanceType], in.Count))
	}
	zone := c.zones[0]
	if len(in.Zones) > 0 {
		zone = in.Zones[0]
	}
	c.free[in.InstanceType] -= in.Count
	c.seq++
	r := &providers.Reservation{
		ID: fmt.Sprintf("cr-%017x", c.seq), InstanceType: in.InstanceType, Zone: zone,
		Count: in.Count, Available: in.Count, State: "active",
	}
	c.reservations[r.ID] = r
	if in.ClientToken != "" {
		c.reserveTokens[in.ClientToken] = reserveRecord{input: in, id: r.ID}
	}
	return *r, nil
}

// CancelReservation returns the reservation's unused capacity to the open
// pool. Cancelling twice is not an error.
func (c *Compute) CancelReservation(ctx context.Context, id string) error {
	if err := c.begin(ctx, MethodCancelReservation, id); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reservations[id]
	if !ok {
		return providers.NewNotFoundError(fmt.Errorf("capacity reservation %s does not exist", id))
	}
	if r.State == "active" {
		c.free[r.InstanceType] += r.Available
		r.Available = 0
		r.State = "cancelled"
	}
	return nil
}

// Run launches between MinCount and MaxCount instances, from the targeted
// reservation or the open pool.
func (c *Compute) Run(ctx context.Context, in providers.RunInput) ([]providers.Instance, error) {
	if err := c.begin(ctx, MethodRun, in); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if in.ClientToken != "" {
		if rec, ok := c.runTokens[in.ClientToken]; ok {
			if !reflect.DeepEqual(rec.input, in) {
				return nil, providers.NewIdempotencyMismatchError(fmt.Errorf("client token %q was used with different parameters", in.ClientToken))
			}
			out := make([]providers.Instance, 0, len(rec.ids))
			for _, id := range rec.ids {
				out = append(out, copyInstance(c.byID[id]))
			}
			return out, nil
		}
	}
	if _, ok := c.free[in.InstanceType]; !ok || in.MinCount < 1 || in.MaxCount < in.MinCount {
		return nil, providers.NewInvalidError(fmt.Errorf("invalid launch of %d to %d %q", in.MinCount, in.MaxCount, in.InstanceType))
	}
	zone := in.Zone
	if zone == "" {
		zone = c.zones[0]
	}
	var available int
	var r *providers.Reservation
	if in.ReservationID != "" {
		var ok bool
		if r, ok = c.reservations[in.ReservationID]; !ok {
			return nil, providers.NewNotFoundError(fmt.Errorf("capacity reservation %s does not exist", in.ReservationID))
		}
		if r.State != "active" || r.InstanceType != in.InstanceType {
			return nil, providers.NewInvalidError(fmt.Errorf("cannot launch %s into %s reservation %s", in.InstanceType, r.State, r.ID))
		}
		available, zone = r.Available, r.Zone
	} else {
		available = c.free[in.InstanceType]
	}
	n := min(in.MaxCount, available)
	if n < in.MinCount {
		return nil, providers.NewInsufficientCapacityError(
			fmt.Errorf("insufficient %s capacity: %d available, at least %d asked", in.InstanceType, available, in.MinCount))
	}
	if r != nil {
		r.Available -= n
	} else {
		c.free[in.InstanceType] -= n
	}
	out := make([]providers.Instance, 0, n)
	var ids []string
	for range n {
		c.seq++
		inst := &providers.Instance{
			ID: fmt.Sprintf("i-%017x", c.seq), InstanceType: in.InstanceType, Zone: zone,
			State: providers.StateRunning, LaunchTime: c.now(), Tags: copyTags(in.Tags),
		}
		c.instances = append(c.instances, inst)
		c.byID[inst.ID] = inst
		if r != nil {
			c.origin[inst.ID] = r.ID
		}
		ids = append(ids, inst.ID)
		out = append(out, copyInstance(inst))
	}
	if in.ClientToken != "" {
		c.runTokens[in.ClientToken] = runRecord{input: in, ids: ids}
	}
	return out, nil
}

// Describe lists matching instances in launch order, terminated ones
// included unless f.States excludes them.
func (c *Compute) Describe(ctx context.Context, f providers.InstanceFilter) ([]providers.Instance, error) {
	if err := c.begin(ctx, MethodDescribe, f); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.Instance
	for _, in := range c.instances {
		if (len(f.IDs) == 0 || contains(f.IDs, in.ID)) &&
			(len(f.States) == 0 || contains(f.States, in.State)) && hasTags(in, f.Tags) {
			out = append(out, copyInstance(in))
		}
	}
	return out, nil
}

// Terminate terminates instances and returns their capacity to their
// reservation if it is still active, else to the open pool. An unknown id
// fails the whole call with NotFoundError and changes nothing.
func (c *Compute) Terminate(ctx context.Context, ids []string) error {
	if err := c.begin(ctx, MethodTerminate, append([]string(nil), ids...)); err != nil {
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
		if in.State == providers.StateTerminated {
			continue
		}
		in.State = providers.StateTerminated
		if r, ok := c.reservations[c.origin[id]]; ok && r.State == "active" {
			r.Available++
		} else {
			c.free[in.InstanceType]++
		}
	}
	return nil
}

// InstanceTypes lists the types given to SetCapacity.
func (c *Compute) InstanceTypes(ctx context.Context) ([]string, error) {
	if err := c.begin(ctx, MethodInstanceTypes, nil); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]string, 0, len(c.free))
	for t := range c.free {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// ErrInjected is a convenient error for FailNext when its kind does not
// matter.
var ErrInjected = errors.New("injected failure")

func hasTags(in *providers.Instance, tags map[string]string) bool {
	for k, v := range tags {
		if got, ok := in.Tags[k]; !ok || got != v {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func copyTags(m map[string]string) map[string]string {
	if m == nil {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func copyInstance(in *providers.Instance) providers.Instance {
	out := *in
	out.Tags = copyTags(in.Tags)
	return out
}
