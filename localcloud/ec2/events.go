package ec2

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/gust-dev/gust/tenants"
)

// The events the cloud publishes are EventBridge events, byte for byte
// what an EventBridge rule on source aws.ec2 would deliver to an SQS
// queue: every account has one queue, EventsQueueName (sqs.go), that holds
// its own instances' events and nobody else's.
//
// State-change events are produced by the code that changes state, in its
// transaction (hooks.go): launch publishes pending (and running when there
// is no boot delay), termination publishes shutting-down and terminated.
// The pending-to-running transition happens with the passing of time, not
// with a call, so it is produced lazily: every queue read first publishes
// the running events that are due (materializeRunning). instances.
// event_state records the last state published for each instance, so each
// event is produced exactly once, by whichever process gets there first.

// The detail types of the events the cloud publishes.
const (
	DetailTypeStateChange = "EC2 Instance State-change Notification"
	DetailTypeSpotWarning = "EC2 Spot Instance Interruption Warning"
)

// Defaults of the queue's bounds.
const (
	// DefaultEventRetention is how long an event stays in the queue when no
	// one deletes it. SQS keeps messages 4 days by default; an hour of
	// instance events is more than any gust worker needs to catch up.
	DefaultEventRetention = time.Hour
	// DefaultEventQueueLimit is the most events an account's queue holds;
	// publishing more drops the oldest.
	DefaultEventQueueLimit = 100_000
)

// materializeBatch bounds the running events one queue read publishes,
// so that a huge launch coming due does not make one read take seconds;
// the rest are published by the next reads.
const materializeBatch = 5000

// sqlBootedInstances finds an account's instances still published as
// pending that were launched by a time (materializeRunning).
var sqlBootedInstances = fmt.Sprintf(`SELECT id, launch_ns FROM instances
		WHERE account = ? AND event_state = 'pending' AND launch_ns <= ? ORDER BY launch_ns LIMIT %d`, materializeBatch)

// eventsSchema holds the queues. event_queues counts each account's
// events, so that keeping the queue under its limit costs no scan.
const eventsSchema = `
CREATE TABLE IF NOT EXISTS events (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	account TEXT NOT NULL,
	message_id TEXT NOT NULL,
	body TEXT NOT NULL,          -- the EventBridge event, JSON
	sent_ns INTEGER NOT NULL,    -- enqueued at; the retention counts from here
	visible_ns INTEGER NOT NULL, -- receivable from then on
	receives INTEGER NOT NULL DEFAULT 0,
	first_receive_ns INTEGER,
	receipt TEXT NOT NULL DEFAULT '' -- the secret of the latest receipt handle
);
CREATE INDEX IF NOT EXISTS events_visible ON events (account, visible_ns);
CREATE INDEX IF NOT EXISTS events_sent ON events (account, sent_ns);
CREATE TABLE IF NOT EXISTS event_queues (
	account TEXT PRIMARY KEY,
	messages INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS instances_event_pending ON instances (account, launch_ns) WHERE event_state = 'pending';
CREATE INDEX IF NOT EXISTS instances_interrupted ON instances (interrupt_ns) WHERE interrupt_ns IS NOT NULL AND terminated_ns IS NULL;
CREATE INDEX IF NOT EXISTS instances_spot_live ON instances (launch_ns) WHERE lifecycle = 'spot' AND terminated_ns IS NULL AND interrupt_ns IS NULL;
`

// migrateEvents adds the columns of events and spot interruptions to an
// instances table written before they existed. Instances that exist then
// count as already announced in their current state: a new queue starts
// with no history, as a newly created EventBridge rule does.
func migrateEvents(ctx context.Context, tx *sql.Tx) error {
	var exists int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('instances')`).Scan(&exists); err != nil {
		return fmt.Errorf("reading local cloud schema, %w", err)
	}
	if exists == 0 {
		return nil // a new database: the schema creates them
	}
	for _, col := range []struct{ name, decl, fill string }{
		{"lifecycle", `TEXT NOT NULL DEFAULT 'on-demand'`, ""},
		{"event_state", `TEXT NOT NULL DEFAULT ''`,
			`UPDATE instances SET event_state = CASE WHEN terminated_ns IS NULL THEN 'running' ELSE 'terminated' END`},
		{"interrupt_ns", `INTEGER`, ""},
		{"reclaimed", `INTEGER NOT NULL DEFAULT 0`, ""},
	} {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info('instances') WHERE name = ?`, col.name).Scan(&n); err != nil {
			return fmt.Errorf("reading local cloud schema, %w", err)
		}
		if n > 0 {
			continue
		}
		if _, err := tx.ExecContext(ctx, `ALTER TABLE instances ADD COLUMN `+col.name+` `+col.decl); err != nil {
			return fmt.Errorf("adding %s to instances, %w", col.name, err)
		}
		if col.fill != "" {
			if _, err := tx.ExecContext(ctx, col.fill); err != nil {
				return fmt.Errorf("filling %s of instances, %w", col.name, err)
			}
		}
	}
	return nil
}

// event is one event to publish: a state change of an instance, or, with
// state "", its spot interruption warning.
type event struct {
	acct, instanceID string
	at               int64 // when it happened; the event's time
	state            string
}

// envelope is an EventBridge event, in EventBridge's field order.
type envelope struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     any      `json:"detail"`
}

type stateDetail struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

type warningDetail struct {
	InstanceID     string `json:"instance-id"`
	InstanceAction string `json:"instance-action"`
}

// body is the event's EventBridge JSON.
func (c *Cloud) body(e event) (string, error) {
	acctID := tenants.AccountID(e.acct)
	env := envelope{
		Version:    "0",
		ID:         newUUID(),
		DetailType: DetailTypeStateChange,
		Source:     "aws.ec2",
		Account:    acctID,
		Time:       time.Unix(0, e.at).UTC().Format(time.RFC3339),
		Region:     c.cfg.Region,
		Resources:  []string{"arn:aws:ec2:" + c.cfg.Region + ":" + acctID + ":instance/" + e.instanceID},
		Detail:     stateDetail{InstanceID: e.instanceID, State: e.state},
	}
	if e.state == "" {
		env.DetailType = DetailTypeSpotWarning
		env.Detail = warningDetail{InstanceID: e.instanceID, InstanceAction: "terminate"}
	}
	b, err := json.Marshal(env)
	if err != nil {
		return "", fmt.Errorf("encoding event, %w", err)
	}
	return string(b), nil
}

// publish enqueues evs, each in its account's queue, visible at once, and
// keeps every queue it touched within its bounds.
func (c *Cloud) publish(ctx context.Context, tx *sql.Tx, evs []event, now int64) error {
	if len(evs) == 0 {
		return nil
	}
	ins, err := tx.PrepareContext(ctx, `INSERT INTO events (account, message_id, body, sent_ns, visible_ns) VALUES (?, ?, ?, ?, ?)`)
	if err != nil {
		return fmt.Errorf("preparing event insert, %w", err)
	}
	defer ins.Close()
	added := map[string]int{}
	var order []string
	for _, e := range evs {
		body, err := c.body(e)
		if err != nil {
			return err
		}
		if _, err := ins.ExecContext(ctx, e.acct, newUUID(), body, now, now); err != nil {
			return fmt.Errorf("publishing event, %w", err)
		}
		if added[e.acct] == 0 {
			order = append(order, e.acct)
		}
		added[e.acct]++
	}
	for _, acct := range order {
		if _, err := tx.ExecContext(ctx, `INSERT INTO event_queues (account, messages) VALUES (?, ?)
			ON CONFLICT (account) DO UPDATE SET messages = messages + excluded.messages`, acct, added[acct]); err != nil {
			return fmt.Errorf("counting events, %w", err)
		}
		if err := c.boundQueue(ctx, tx, acct, now); err != nil {
			return err
		}
	}
	for _, acct := range order {
		c.events.note(acct, added[acct])
	}
	return nil
}

// boundQueue drops the account's events older than the retention, then
// its oldest events beyond the queue limit.
func (c *Cloud) boundQueue(ctx context.Context, tx *sql.Tx, acct string, now int64) error {
	res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE account = ? AND sent_ns <= ?`,
		acct, now-c.cfg.EventRetention.Nanoseconds())
	if err != nil {
		return fmt.Errorf("expiring events, %w", err)
	}
	expired, _ := res.RowsAffected()
	var n int64
	err = tx.QueryRowContext(ctx, `UPDATE event_queues SET messages = max(messages - ?, 0) WHERE account = ? RETURNING messages`,
		expired, acct).Scan(&n)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil
	case err != nil:
		return fmt.Errorf("counting events, %w", err)
	}
	over := n - int64(c.cfg.EventQueueLimit)
	if over <= 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq IN
		(SELECT seq FROM events WHERE account = ? ORDER BY sent_ns, seq LIMIT ?)`, acct, over); err != nil {
		return fmt.Errorf("dropping the oldest events, %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE event_queues SET messages = ? WHERE account = ?`, c.cfg.EventQueueLimit, acct); err != nil {
		return fmt.Errorf("counting events, %w", err)
	}
	return nil
}

// forgetEvents lowers the account's event count after n events were
// deleted.
func forgetEvents(ctx context.Context, tx *sql.Tx, acct string, n int64) error {
	if n == 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE event_queues SET messages = max(messages - ?, 0) WHERE account = ?`, n, acct); err != nil {
		return fmt.Errorf("counting events, %w", err)
	}
	return nil
}

// materializeRunning publishes the running events of the account's
// instances whose boot delay has passed by now, at most materializeBatch
// of them. An instance that became running longer ago than the retention
// is only marked: its event would already have expired.
func (c *Cloud) materializeRunning(ctx context.Context, tx *sql.Tx, acct string, now int64) error {
	boot := c.cfg.BootDelay.Nanoseconds()
	// The limit is in the text: a bound LIMIT expires the statement at
	// each binding (sqlEndedNotices).
	rows, err := tx.QueryContext(ctx, sqlBootedInstances, acct, now-boot)
	if err != nil {
		return fmt.Errorf("finding booted instances, %w", err)
	}
	var evs []event
	var ids []string
	for rows.Next() {
		var id string
		var launch int64
		if err := rows.Scan(&id, &launch); err != nil {
			rows.Close()
			return fmt.Errorf("finding booted instances, %w", err)
		}
		ids = append(ids, id)
		if at := launch + boot; at > now-c.cfg.EventRetention.Nanoseconds() {
			evs = append(evs, event{acct: acct, instanceID: id, at: at, state: "running"})
		}
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("finding booted instances, %w", err)
	}
	if err := setEventState(ctx, tx, acct, ids, "running"); err != nil {
		return err
	}
	return c.publish(ctx, tx, evs, now)
}

// setEventState records state as the last state published for ids.
func setEventState(ctx context.Context, tx *sql.Tx, acct string, ids []string, state string) error {
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := append([]any{state, acct}, anys(chunk)...)
		if _, err := tx.ExecContext(ctx, `UPDATE instances SET event_state = ? WHERE account = ? AND id IN (`+
			placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("recording published events, %w", err)
		}
	}
	return nil
}

// nextDue is the earliest time after now at which the account's queue may
// gain a receivable message without anyone writing: a message's
// visibility timeout ends, an instance finishes booting or a spot notice
// ends. ok is false when nothing is scheduled.
func (c *Cloud) nextDue(ctx context.Context, tx *sql.Tx, acct string, now int64) (due int64, ok bool, err error) {
	var visible, launched, interrupted sql.NullInt64
	err = tx.QueryRowContext(ctx, sqlNextDue, acct, now).Scan(&visible, &launched, &interrupted)
	if err != nil {
		return 0, false, fmt.Errorf("finding the next event, %w", err)
	}
	consider := func(v sql.NullInt64, plus time.Duration) {
		if !v.Valid {
			return
		}
		t := v.Int64 + plus.Nanoseconds()
		if !ok || t < due {
			due, ok = t, true
		}
	}
	consider(visible, 0)
	consider(launched, c.cfg.BootDelay)
	consider(interrupted, c.cfg.SpotNoticePeriod)
	return due, ok, nil
}

// eventSignal wakes this process's long-polling readers of a queue when
// events are committed to it, or come due (a boot delay or visibility
// timeout passes), as many as the events need: a commit of n events wakes
// ceil(n/10) of the account's waiters, oldest first, and a reader that
// got a full batch wakes one more. Waking every reader on every commit
// made 84% of the receives of 100 launching fleets find nothing, each a
// write transaction (BenchmarkConcurrentFleets). Readers in other
// processes, and events no one scheduled (spot reclaim), are found by
// polling (pollInterval).
type eventSignal struct {
	// published counts, by account, the events the open write transaction
	// published; it is guarded by Cloud.mu, which every write transaction
	// holds, and read when the transaction ends.
	published map[string]int

	mu      sync.Mutex
	waiters map[string][]chan struct{} // by account, oldest first
	timers  map[string]*dueTimer       // by account: the next due time's wake-up
}

// dueTimer wakes one waiter of its account at at.
type dueTimer struct {
	t  *time.Timer
	at time.Time
}

// note counts n events published to acct by the open transaction.
func (s *eventSignal) note(acct string, n int) {
	if s.published == nil {
		s.published = map[string]int{}
	}
	s.published[acct] += n
}

// wait registers a waiter for acct's next wake-up; cancel unregisters it
// and reports whether a wake-up came that the waiter did not take from
// woken, which the caller, if it will not look again, hands on (wake).
func (s *eventSignal) wait(acct string) (woken <-chan struct{}, cancel func() (untaken bool)) {
	ch := make(chan struct{}, 1)
	s.mu.Lock()
	if s.waiters == nil {
		s.waiters = map[string][]chan struct{}{}
	}
	s.waiters[acct] = append(s.waiters[acct], ch)
	s.mu.Unlock()
	return ch, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		i := slices.Index(s.waiters[acct], ch)
		if i < 0 {
			return len(ch) > 0 // woken: the buffered wake-up is still there unless taken
		}
		s.waiters[acct] = slices.Delete(s.waiters[acct], i, i+1)
		if len(s.waiters[acct]) == 0 {
			delete(s.waiters, acct)
		}
		return false
	}
}

// wake wakes up to n of acct's waiters, oldest first.
func (s *eventSignal) wake(acct string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ws := s.waiters[acct]
	n = min(n, len(ws))
	for _, ch := range ws[:n] {
		ch <- struct{}{} // buffered, and each is woken once
	}
	if n == len(ws) {
		delete(s.waiters, acct)
	} else {
		s.waiters[acct] = ws[n:]
	}
}

// wakeAt makes sure one of acct's waiters is woken at at, when the queue
// may gain a message by itself; an earlier wake-up already set stands.
func (s *eventSignal) wakeAt(acct string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.timers[acct]; ok && !d.at.After(at) {
		return
	}
	if d, ok := s.timers[acct]; ok {
		d.t.Stop()
	}
	if s.timers == nil {
		s.timers = map[string]*dueTimer{}
	}
	d := &dueTimer{at: at}
	d.t = time.AfterFunc(time.Until(at), func() {
		s.mu.Lock()
		if s.timers[acct] == d {
			delete(s.timers, acct)
		}
		s.mu.Unlock()
		s.wake(acct, 1)
	})
	s.timers[acct] = d
}

// committed wakes, for each account the committed transaction published
// to, the waiters its events need.
func (s *eventSignal) committed() {
	for acct, n := range s.published {
		s.wake(acct, (n+sqsMaxBatch-1)/sqsMaxBatch)
	}
	clear(s.published)
}

// settled forgets what a transaction published when it ends without a
// commit.
func (s *eventSignal) settled() { clear(s.published) }

// newUUID returns a random (version 4) UUID, the form of EventBridge event
// ids and SQS message ids.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
