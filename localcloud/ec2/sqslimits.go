package ec2

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sync"
	"time"
)

// The events queue's limits. Every queue call is a write transaction on
// the cloud's one database, and a long poll is one every pollInterval and
// on every commit that publishes; these limits bound what one account can
// make the cloud do, at rates a consumer that behaves as SQS asks (long
// polls, batches of up to ten) never reaches:
//
//   - each account's queue calls take a token from its request bucket
//     (Config.QueueBucket, QueueRefill), in SQLite as EC2's throttles are,
//     so processes sharing the file share it; a call without one fails
//     with SQS's RequestThrottled, which aws-sdk-go-v2 retries with backoff;
//   - at most Config.QueueLongPolls receives of an account wait at once in
//     this process; a receive beyond them looks once and returns what is
//     there, as with WaitTimeSeconds 0, so it pins no goroutine;
//   - PurgeQueue works once per Config.PurgeCooldown per account, as on
//     SQS (60 seconds); another fails with PurgeQueueInProgress.

// Defaults applied by Open to the zero Config fields of the queue limits.
const (
	// DefaultQueueBucket and DefaultQueueRefill are each account's request
	// throttle for queue calls. A quiet consumer long-polling for batches
	// makes a few calls a second, but a hundred fleets launching together
	// publish thousands of events, each batch of ten a receive and a
	// delete: at 50 a second the queue alone held their events back by
	// twenty seconds (BenchmarkConcurrentFleets). SQS itself barely limits
	// a standard queue; this bounds a hostile tenant's write load.
	DefaultQueueBucket = 1000
	DefaultQueueRefill = 500.0
	// DefaultQueueLongPolls is how many receives of an account may wait
	// at once in one process.
	DefaultQueueLongPolls = 16
	// DefaultPurgeCooldown is SQS's: one PurgeQueue a minute.
	DefaultPurgeCooldown = 60 * time.Second
)

// maxEmptyHint bounds how far ahead queueLimits remembers an empty bucket;
// the hint is only a shortcut, and a shorter one is never wrong.
const maxEmptyHint = time.Minute

// queueLimits is this process's part of the queue limits. Its maps hold an
// entry only for an account that is throttled or polling right now, so
// they are bounded by the accounts that call.
type queueLimits struct {
	mu sync.Mutex
	// emptyUntil is, per account, a time on the cloud's clock before which
	// its request bucket cannot hold a whole token: a throttled account's
	// flood is answered without a database write. It is sound across
	// processes because others only ever take tokens.
	emptyUntil map[string]int64
	// polls counts the account's receives waiting now.
	polls map[string]int
}

// empty reports whether acct's bucket is known to be empty at now.
func (l *queueLimits) empty(acct string, now int64) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	until, ok := l.emptyUntil[acct]
	// A hint further ahead than any markEmpty sets means the clock went
	// back: forget it rather than throttle for as long.
	if ok && (now >= until || until-now > int64(maxEmptyHint)) {
		delete(l.emptyUntil, acct)
		return false
	}
	return ok
}

// markEmpty records that acct's bucket is empty until until.
func (l *queueLimits) markEmpty(acct string, now, until int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.emptyUntil == nil {
		l.emptyUntil = map[string]int64{}
	}
	if len(l.emptyUntil) >= 1024 {
		for a, u := range l.emptyUntil {
			if now >= u {
				delete(l.emptyUntil, a)
			}
		}
	}
	l.emptyUntil[acct] = until
}

// startPoll takes one of acct's max long-poll slots (max < 0: no cap). If
// it got one, release gives it back and must be called once.
func (l *queueLimits) startPoll(acct string, max int) (release func(), ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if max >= 0 && l.polls[acct] >= max {
		return nil, false
	}
	if l.polls == nil {
		l.polls = map[string]int{}
	}
	l.polls[acct]++
	return func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if l.polls[acct]--; l.polls[acct] <= 0 {
			delete(l.polls, acct)
		}
	}, true
}

// longPolls is how many of acct's receives wait now in this process.
func (l *queueLimits) longPolls(acct string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.polls[acct]
}

func errRequestThrottled() *sqsError {
	return sqsErrorf(sqsRequestThrottled, "Rate exceeded: too many requests to the events queue of this account.")
}

// throttleQueue takes one token from acct's queue request bucket, in a
// transaction of its own that commits even when the call then fails: every
// call counts, as on SQS. It returns an *sqsError when there is none.
func (c *Cloud) throttleQueue(ctx context.Context, acct string) error {
	size, refill := c.cfg.QueueBucket, c.cfg.QueueRefill
	if size < 0 {
		return nil
	}
	if c.queue.empty(acct, c.cfg.Now().UnixNano()) {
		return errRequestThrottled()
	}
	var (
		left float64 // tokens after the call
		took bool
		now  int64
	)
	err := c.write(ctx, func(tx *sql.Tx) error {
		now = c.cfg.Now().UnixNano()
		tokens, err := bucketTokens(ctx, tx, "sqs:"+acct, float64(size), refill, now)
		if err != nil {
			return err
		}
		left, took = tokens, tokens >= 1
		if !took {
			return nil
		}
		left--
		return setBucket(ctx, tx, "sqs:"+acct, left, now)
	})
	if err != nil {
		return err
	}
	if left < 1 {
		wait := math.Min((1-left)/refill*float64(time.Second), float64(maxEmptyHint))
		c.queue.markEmpty(acct, now, now+int64(wait))
	}
	if !took {
		return errRequestThrottled()
	}
	return nil
}

// takePurge takes acct's one purge per cooldown, in the purge's
// transaction: a bucket of one token that refills once per cooldown.
func (c *Cloud) takePurge(ctx context.Context, tx *sql.Tx, acct string, now int64) error {
	cooldown := c.cfg.PurgeCooldown
	if cooldown < 0 {
		return nil
	}
	ok, err := takeTokens(ctx, tx, "purge:"+acct, 1, float64(time.Second)/float64(cooldown), now, 1)
	if err != nil {
		return err
	}
	if !ok {
		return sqsErrorf(sqsPurgeQueueInProgress, "Only one PurgeQueue operation on %s is allowed every %s.", EventsQueueName, formatSeconds(cooldown))
	}
	return nil
}

func formatSeconds(d time.Duration) string {
	return fmt.Sprintf("%g seconds", d.Seconds())
}
