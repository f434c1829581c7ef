package activities

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/fake"
)

// errWorkerKilled stands for an attempt that died mid-plan: a plain error,
// so the activity fails retryably without giving anything back, as a
// killed worker would.
var errWorkerKilled = errors.New("worker killed")

// dyingCompute is the fake cloud for an attempt that dies at the Reserve
// after its first `after` successful ones.
type dyingCompute struct {
	*fake.Compute
	after, made int
}

func (d *dyingCompute) Reserve(ctx context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	if d.made == d.after {
		return providers.Reservation{}, errWorkerKilled
	}
	r, err := d.Compute.Reserve(ctx, in)
	if err == nil {
		d.made++
	}
	return r, err
}

// heartbeats captures the activity's heartbeat details in place of the SDK.
type heartbeats struct {
	mu   sync.Mutex
	last *reserveProgress
}

func captureHeartbeats(t *testing.T) *heartbeats {
	h := &heartbeats{}
	orig := recordHeartbeat
	t.Cleanup(func() { recordHeartbeat = orig })
	recordHeartbeat = func(ctx context.Context, details ...any) {
		orig(ctx, details...)
		if len(details) == 1 {
			if p, ok := details[0].(reserveProgress); ok {
				h.mu.Lock()
				h.last = &p
				h.mu.Unlock()
			}
		}
	}
	return h
}

func (h *heartbeats) record(t *testing.T) reserveProgress {
	h.mu.Lock()
	defer h.mu.Unlock()
	require.NotNil(t, h.last, "the attempt recorded what it holds")
	return *h.last
}

// twoOfferings: 4 units over m5.large in us-east-1a (3 free) then
// c5.large in us-east-1b (3 free): neither holds them all, so after the
// first pass (4 of each, refused) the second pass splits them.
func twoOfferings() (*fake.Compute, ReserveOfferingsInput) {
	c := fake.NewCompute()
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 3)
	c.SetOfferingCapacity("c5.large", "us-east-1b", providers.MarketOnDemand, 3)
	return c, reserveInput(4,
		ReserveOffering{Offering: 0, InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1},
		ReserveOffering{Offering: 1, InstanceType: "c5.large", Zone: "us-east-1b", Weight: 1})
}

// dyingAttempt runs an attempt that dies after `after` reservations and
// returns what it recorded in its heartbeats.
func dyingAttempt(t *testing.T, c *fake.Compute, in ReserveOfferingsInput, after int, prior *reserveProgress) reserveProgress {
	hb := captureHeartbeats(t)
	a := &Fleet{Accounts: providers.OneAccount(&dyingCompute{Compute: c, after: after})}
	env := newActivityEnv(t, a)
	if prior != nil {
		env.SetHeartbeatDetails(*prior)
	}
	_, err := env.ExecuteActivity(a.ReserveOfferings, in)
	require.ErrorContains(t, err, errWorkerKilled.Error())
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	require.False(t, appErr.NonRetryable(), "a dead attempt is retried")
	return hb.record(t)
}

// retry runs the next attempt with the record the dead one left.
func retry(t *testing.T, c *fake.Compute, in ReserveOfferingsInput, rec reserveProgress) (ReserveOfferingsResult, error) {
	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	env.SetHeartbeatDetails(rec)
	v, err := env.ExecuteActivity(a.ReserveOfferings, in)
	return reserveResult(t, v, err)
}

// reserveResult decodes what a ReserveOfferings run returned.
func reserveResult(t *testing.T, v converter.EncodedValue, err error) (ReserveOfferingsResult, error) {
	if err != nil {
		return ReserveOfferingsResult{}, err
	}
	var res ReserveOfferingsResult
	require.NoError(t, v.Get(&res))
	return res, nil
}

func ids(held []HeldReservation) []string {
	var out []string
	for _, h := range held {
		out = append(out, h.ReservationID)
	}
	return out
}

// active returns the ids of the reservations the fake holds active.
func active(c *fake.Compute) []string {
	var out []string
	for _, r := range c.Reservations() {
		if r.State == "active" {
			out = append(out, r.ID)
		}
	}
	return out
}

func TestReserveOfferingsRetryCancelsWhatItsPlanDropped(t *testing.T) {
	c, in := twoOfferings()
	// Attempt 1: 4 of m5.large fail, 2 hold (r1); it dies asking for the
	// other 2.
	rec := dyingAttempt(t, c, in, 1, nil)
	require.Len(t, c.Reservations(), 1)
	r1 := c.Reservations()[0].ID
	assert.Equal(t, []string{r1}, rec.Held)

	// Capacity came back: the retry holds all 4 in one reservation, under
	// a token attempt 1 never got an answer for.
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 10)
	res, err := retry(t, c, in, rec)
	require.NoError(t, err)
	require.Len(t, res.Reservations, 1)
	assert.Equal(t, 4, res.Reservations[0].Count)
	assert.NotEqual(t, r1, res.Reservations[0].ReservationID)

	assert.Equal(t, ids(res.Reservations), active(c), "exactly the returned reservations are held")
	r, _ := c.Reservation(r1)
	assert.Equal(t, "cancelled", r.State, "the dead attempt's reservation is given back")
	n, _ := c.OfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand)
	assert.Equal(t, 10-4+2, n)
}

func TestReserveOfferingsRetryKeepsWhatItsPlanReturnsAgain(t *testing.T) {
	c, in := twoOfferings()
	// Attempt 1: 2 of m5.large (r1), then 1 (r2), then none left; it
	// dies asking c5.large for the last unit.
	rec := dyingAttempt(t, c, in, 2, nil)
	require.Len(t, c.Reservations(), 2)
	r1, r2 := c.Reservations()[0].ID, c.Reservations()[1].ID
	assert.Equal(t, []string{r1, r2}, rec.Held)

	// Two m5.large came free: the retry gets r1 back by its token, then
	// holds the other 2 in one new reservation instead of r2 and c5.large.
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 2)
	res, err := retry(t, c, in, rec)
	require.NoError(t, err)
	got := ids(res.Reservations)
	require.Len(t, got, 2)
	assert.Equal(t, r1, got[0], "the same token returns the same reservation")
	assert.NotContains(t, got, r2)

	assert.Equal(t, got, active(c), "exactly the returned reservations are held")
	r, _ := c.Reservation(r2)
	assert.Equal(t, "cancelled", r.State)
	n, _ := c.OfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand)
	assert.Equal(t, 1, n, "r2's unit is back in the pool")
	assert.Equal(t, 2, countReserves(c, "c5.large"), "c5.large was asked only in each attempt's first pass")
	for _, r := range c.Reservations() {
		assert.NotEqual(t, "c5.large", r.InstanceType, "c5.large was never needed")
	}
}

func TestReserveOfferingsFailedRetryCancelsTheEarlierAttempts(t *testing.T) {
	c, in := twoOfferings()
	in.Units = 8
	// Attempt 1: 2 of m5.large (r1); it dies asking for more.
	rec := dyingAttempt(t, c, in, 1, nil)
	require.Len(t, rec.Held, 1)

	// The retry holds 4 m5.large in a new reservation and finds no more
	// anywhere: it gives back its own and r1.
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 4)
	c.SetOfferingCapacity("c5.large", "us-east-1b", providers.MarketOnDemand, 0)
	_, err := retry(t, c, in, rec)
	var appErr *temporal.ApplicationError
	require.ErrorAs(t, err, &appErr)
	assert.Equal(t, providers.ErrTypeInsufficientCapacity, appErr.Type())
	require.Len(t, c.Reservations(), 2, "the retry's plan made a reservation of its own")
	assert.Empty(t, active(c), "nothing is left held")
	n, _ := c.OfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand)
	assert.Equal(t, 4+2, n)
}

func TestReserveOfferingsRecordKeepsEarlierAttemptsUntilCancelled(t *testing.T) {
	c, in := twoOfferings()
	in.Units = 8
	// Attempt 1: 2 of m5.large (r1), then 1 (r2); it dies asking
	// c5.large for the other 5.
	rec := dyingAttempt(t, c, in, 2, nil)
	require.Len(t, c.Reservations(), 2)
	r1, r2 := c.Reservations()[0].ID, c.Reservations()[1].ID

	// Attempt 2 finds 5 m5.large free: 4 in a new r3, then r2 again by
	// its token; it dies before its plan is done. Its record still names
	// r1, which it neither returned nor cancelled.
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 5)
	rec2 := dyingAttempt(t, c, in, 2, &rec)
	require.Len(t, c.Reservations(), 3)
	r3 := c.Reservations()[2].ID
	assert.ElementsMatch(t, []string{r1, r2, r3}, rec2.Held)

	// Attempt 3 finishes the plan (r3, r2, one more m5.large and 2
	// c5.large) and gives r1 back.
	res, err := retry(t, c, in, rec2)
	require.NoError(t, err)
	got := ids(res.Reservations)
	require.Len(t, got, 4)
	assert.Equal(t, []string{r3, r2}, got[:2])
	assert.NotContains(t, got, r1)
	assert.ElementsMatch(t, got, active(c), "exactly the returned reservations are held")
	n, _ := c.OfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand)
	assert.Equal(t, 2, n, "r1's 2 are back in the pool")
}

func TestReserveOfferingsIgnoresUnreadableRecord(t *testing.T) {
	c, in := twoOfferings()
	res, err := retry(t, c, in, reserveProgress{})
	require.NoError(t, err)
	assert.Equal(t, ids(res.Reservations), active(c))

	a := &Fleet{Accounts: providers.OneAccount(c)}
	env := newActivityEnv(t, a)
	env.SetHeartbeatDetails("not a record")
	_, err = env.ExecuteActivity(a.ReserveOfferings, in)
	require.NoError(t, err, "a record that does not decode is logged, not fatal")
}

func TestKeepAliveWithHeartbeatsItsDetails(t *testing.T) {
	hb := captureHeartbeats(t)
	a := &Fleet{Accounts: providers.OneAccount(fake.NewCompute())}
	env := newActivityEnv(t, a)
	slowCall := func(ctx context.Context) (int, error) {
		return keepAliveWith(ctx, reserveProgress{Held: []string{"cr-1"}}, func() (int, error) {
			time.Sleep(heartbeatEvery + 300*time.Millisecond)
			return 1, nil
		})
	}
	env.RegisterActivity(slowCall)
	_, err := env.ExecuteActivity(slowCall)
	require.NoError(t, err)
	assert.Equal(t, []string{"cr-1"}, hb.record(t).Held, "a background heartbeat does not wipe the record")
}

func countReserves(c *fake.Compute, instanceType string) int {
	n := 0
	for _, call := range c.Calls() {
		if in, ok := call.Input.(providers.ReserveInput); ok && in.InstanceType == instanceType {
			n++
		}
	}
	return n
}

// runLocal runs ReserveOfferings as a local activity, as a fleet on
// fleetLocalReserve does: no heartbeat record, only the cloud's tags.
func runLocal(t *testing.T, compute providers.Compute, in ReserveOfferingsInput) (ReserveOfferingsResult, error) {
	a := &Fleet{Accounts: providers.OneAccount(compute)}
	env := newActivityEnv(t, a)
	v, err := env.ExecuteLocalActivity(a.ReserveOfferings, in)
	return reserveResult(t, v, err)
}

// TestReserveOfferingsLocalRerunCancelsWhatItsPlanDropped: a local run
// that died (its workflow task lost with it) left a reservation that the
// next run's plan does not ask for again; the next run finds it by its
// tag and cancels it. A live reservation under another token (another
// attempt's, or another fleet's) is not touched.
func TestReserveOfferingsLocalRerunCancelsWhatItsPlanDropped(t *testing.T) {
	c, in := twoOfferings()
	c.SetOfferingCapacity("t3.micro", "us-east-1a", providers.MarketOnDemand, 1)
	bystander, err := c.Reserve(context.Background(), providers.ReserveInput{InstanceType: "t3.micro", Zones: []string{"us-east-1a"}, Count: 1,
		Tags: map[string]string{providers.FleetTagKey: "f1", ReserveTagKey: "f1-r0"}})
	require.NoError(t, err)

	// Run 1: 4 of m5.large fail, 2 hold (r1); it dies asking for the
	// other 2.
	_, err = runLocal(t, &dyingCompute{Compute: c, after: 1}, in)
	require.ErrorContains(t, err, errWorkerKilled.Error())
	require.Len(t, c.Reservations(), 2)
	r1 := c.Reservations()[1].ID

	// Capacity came back: the rerun holds all 4 in one reservation, under a
	// token run 1 never got an answer for.
	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 10)
	res, err := runLocal(t, c, in)
	require.NoError(t, err)
	require.Len(t, res.Reservations, 1)
	assert.Equal(t, 4, res.Reservations[0].Count)
	assert.NotEqual(t, r1, res.Reservations[0].ReservationID)
	assert.Equal(t, append([]string{bystander.ID}, ids(res.Reservations)...), active(c), "the returned reservations and the bystander are held")
	r, _ := c.Reservation(r1)
	assert.Equal(t, "cancelled", r.State, "the dead run's reservation is given back")
	n, _ := c.OfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand)
	assert.Equal(t, 10-4+2, n)
	assert.Equal(t, 2, c.CallCount(fake.MethodListReservations), "each run listed its token's reservations once")
}

// TestReserveOfferingsLocalRerunKeepsWhatItsPlanReturnsAgain: the rerun
// gets run 1's first reservation back by its client token and keeps it;
// the second, which its plan no longer makes, it cancels.
func TestReserveOfferingsLocalRerunKeepsWhatItsPlanReturnsAgain(t *testing.T) {
	c, in := twoOfferings()
	_, err := runLocal(t, &dyingCompute{Compute: c, after: 2}, in)
	require.ErrorContains(t, err, errWorkerKilled.Error())
	require.Len(t, c.Reservations(), 2)
	r1, r2 := c.Reservations()[0].ID, c.Reservations()[1].ID

	c.SetOfferingCapacity("m5.large", "us-east-1a", providers.MarketOnDemand, 2)
	res, err := runLocal(t, c, in)
	require.NoError(t, err)
	got := ids(res.Reservations)
	require.Len(t, got, 2)
	assert.Equal(t, r1, got[0], "the same token returns the same reservation")
	assert.NotContains(t, got, r2)
	assert.Equal(t, got, active(c), "exactly the returned reservations are held")
}

// TestReserveOfferingsLocalListingFails: a rerun that cannot list what an
// earlier run may hold reserves nothing; the error is retried.
func TestReserveOfferingsLocalListingFails(t *testing.T) {
	c, in := twoOfferings()
	c.FailNext(fake.MethodListReservations, errors.New("connection reset"))
	_, err := runLocal(t, c, in)
	require.ErrorContains(t, err, "listing the reservations of f1-r1")
	var appErr *temporal.ApplicationError
	assert.False(t, errors.As(err, &appErr) && appErr.NonRetryable(), "a listing that failed is retried")
	assert.Empty(t, c.Reservations())
}
