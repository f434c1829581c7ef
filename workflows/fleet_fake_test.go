package workflows

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/gust-dev/gust/providers"
)

// fakeCloud is an in-memory providers.Compute with EC2's semantics where the
// fleet depends on them: ClientToken idempotency, MinCount all-or-nothing,
// capacity reservations drawn from the open pool, and instances that boot
// pending → running (a pending instance is reported as running from the
// second DescribeInstances that sees it on).
type fakeCloud struct {
	mu sync.Mutex

	types    []string
	capacity int // open capacity left; < 0 means unlimited
	// reserveFailures makes that many Reserve calls fail with
	// InsufficientCapacity before capacity rules apply.
	reserveFailures int
	// runErr, when set, may fail a Run before anything happens; it sees the
	// input and how many times that token was called before.
	runErr func(in providers.RunInput, call int) error
	// loseResponse makes Run launch and then report an error, as a worker
	// crash or lost response would, that many times per token prefix.
	loseResponse map[string]int
	// instantBoot reports instances running from the first Describe on.
	instantBoot bool
	// terminateLag makes Describe go on reporting a terminated instance as
	// running that many times, as EC2's eventual consistency can.
	terminateLag int
	lagging      map[string]int

	nextID       int
	instances    map[string]*providers.Instance
	order        []string
	seen         map[string]bool // instances seen pending once by Describe
	tokens       map[string][]string
	tokenParams  map[string]string
	runCalls     map[string]int
	reserveCalls int
	// reservedLaunches counts instances launched into a reservation.
	reservedLaunches int
	reservations     map[string]*providers.Reservation
	cancelled        []string
	terminated       []string
}

var _ providers.Compute = (*fakeCloud)(nil)

func newFakeCloud(capacity int) *fakeCloud {
	return &fakeCloud{
		types:        []string{"m5.large", "t3.micro"},
		capacity:     capacity,
		loseResponse: map[string]int{},
		instances:    map[string]*providers.Instance{},
		seen:         map[string]bool{},
		lagging:      map[string]int{},
		tokens:       map[string][]string{},
		tokenParams:  map[string]string{},
		runCalls:     map[string]int{},
		reservations: map[string]*providers.Reservation{},
	}
}

func (c *fakeCloud) Reserve(_ context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reserveCalls++
	if !slices.Contains(c.types, in.InstanceType) || in.Count < 1 {
		return providers.Reservation{}, providers.NewInvalidError(errors.New("bad reservation"))
	}
	if c.reserveFailures > 0 {
		c.reserveFailures--
		return providers.Reservation{}, providers.NewInsufficientCapacityError(errors.New("no capacity (scripted)"))
	}
	if c.capacity >= 0 && c.capacity < in.Count {
		return providers.Reservation{}, providers.NewInsufficientCapacityError(fmt.Errorf("only %d available", c.capacity))
	}
	if c.capacity >= 0 {
		c.capacity -= in.Count
	}
	zone := "zone-a"
	if len(in.Zones) > 0 {
		zone = in.Zones[0]
	}
	r := &providers.Reservation{ID: fmt.Sprintf("cr-%d", len(c.reservations)+1), InstanceType: in.InstanceType, Zone: zone, Count: in.Count, Available: in.Count, State: "active"}
	c.reservations[r.ID] = r
	return *r, nil
}

func (c *fakeCloud) CancelReservation(_ context.Context, id string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.reservations[id]
	if !ok || r.State != "active" {
		return providers.NewNotFoundError(errors.New("no reservation " + id))
	}
	r.State = "cancelled"
	if c.capacity >= 0 {
		c.capacity += r.Available
	}
	r.Available = 0
	c.cancelled = append(c.cancelled, id)
	return nil
}

func (c *fakeCloud) Run(_ context.Context, in providers.RunInput) ([]providers.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	call := c.runCalls[in.ClientToken]
	c.runCalls[in.ClientToken]++
	params := fmt.Sprint(in.InstanceType, in.ImageID, in.Zone, in.MinCount, in.MaxCount, in.ReservationID)
	// As on EC2, throttling comes before the idempotency check: a replayed
	// token can be throttled too.
	if c.runErr != nil {
		if err := c.runErr(in, call); err != nil {
			return nil, err
		}
	}
	if ids, ok := c.tokens[in.ClientToken]; ok {
		if c.tokenParams[in.ClientToken] != params {
			return nil, providers.NewIdempotencyMismatchError(errors.New("token reused with other parameters"))
		}
		return c.describeIDs(ids), nil
	}
	var avail int
	var res *providers.Reservation
	if in.ReservationID != "" {
		res = c.reservations[in.ReservationID]
		if res == nil || res.State != "active" {
			return nil, providers.NewInvalidError(errors.New("no reservation " + in.ReservationID))
		}
		avail = res.Available
	} else {
		avail = c.capacity
		if avail < 0 {
			avail = in.MaxCount
		}
	}
	n := min(in.MaxCount, avail)
	if n < in.MinCount {
		return nil, providers.NewInsufficientCapacityError(fmt.Errorf("%d available, MinCount %d", avail, in.MinCount))
	}
	if res != nil {
		res.Available -= n
		c.reservedLaunches += n
	} else if c.capacity >= 0 {
		c.capacity -= n
	}
	ids := make([]string, n)
	for i := range ids {
		c.nextID++
		id := fmt.Sprintf("i-%08d", c.nextID)
		tags := map[string]string{}
		for k, v := range in.Tags {
			tags[k] = v
		}
		c.instances[id] = &providers.Instance{ID: id, InstanceType: in.InstanceType, Zone: in.Zone, State: providers.StatePending, Tags: tags}
		c.order = append(c.order, id)
		ids[i] = id
	}
	c.tokens[in.ClientToken] = ids
	c.tokenParams[in.ClientToken] = params
	for prefix, n := range c.loseResponse {
		if n > 0 && strings.HasPrefix(in.ClientToken, prefix) {
			c.loseResponse[prefix]--
			return nil, errors.New("connection reset after launch (scripted)")
		}
	}
	return c.describeIDs(ids), nil
}

func (c *fakeCloud) describeIDs(ids []string) []providers.Instance {
	out := make([]providers.Instance, len(ids))
	for i, id := range ids {
		out[i] = *c.instances[id]
	}
	return out
}

func (c *fakeCloud) Describe(_ context.Context, f providers.InstanceFilter) ([]providers.Instance, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []providers.Instance
	for _, id := range c.order {
		inst := c.instances[id]
		if c.lagging[id] > 0 {
			c.lagging[id]--
			stale := *inst
			stale.State = providers.StateRunning
			inst = &stale
		}
		if len(f.IDs) > 0 && !slices.Contains(f.IDs, id) {
			continue
		}
		if len(f.States) > 0 && !slices.Contains(f.States, inst.State) {
			continue
		}
		match := true
		for k, v := range f.Tags {
			if inst.Tags[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		if c.instantBoot && inst.State == providers.StatePending {
			inst.State = providers.StateRunning
		}
		out = append(out, *inst)
		// Boot: an instance seen pending once is running from then on.
		if inst.State == providers.StatePending {
			if c.seen[id] {
				inst.State = providers.StateRunning
			}
			c.seen[id] = true
		}
	}
	return out, nil
}

func (c *fakeCloud) Terminate(_ context.Context, ids []string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, id := range ids {
		if c.instances[id] == nil {
			return providers.NewNotFoundError(errors.New("no instance " + id))
		}
	}
	for _, id := range ids {
		if c.instances[id].State != providers.StateTerminated {
			c.instances[id].State = providers.StateTerminated
			c.terminated = append(c.terminated, id)
			c.lagging[id] = c.terminateLag
		}
	}
	return nil
}

func (c *fakeCloud) InstanceTypes(context.Context) ([]string, error) {
	return c.types, nil
}

// live returns the ids of the instances that are not terminated.
func (c *fakeCloud) live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var ids []string
	for _, id := range c.order {
		if c.instances[id].State != providers.StateTerminated {
			ids = append(ids, id)
		}
	}
	return ids
}

// calls returns how many Run calls used tokens starting with prefix, by token.
func (c *fakeCloud) calls(prefix string) map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for tok, n := range c.runCalls {
		if strings.HasPrefix(tok, prefix) {
			out[tok] = n
		}
	}
	return out
}

func (c *fakeCloud) activeReservations() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reservations {
		if r.State == "active" {
			n++
		}
	}
	return n
}
