package ec2

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// The events queue's storage: each account's events are rows of the
// events table (events.go). A receive makes its messages invisible for
// the visibility timeout and gives each a fresh receipt handle; only the
// latest handle deletes or changes the message, as on SQS, where an older
// handle's delete succeeds without deleting. Delivery is at least once: a
// message not deleted in time is received again.

// pollInterval bounds how long a long poll sleeps between looks at the
// database, for the events other processes commit (this process's wake it
// at once) and for spot reclaim, whose interruptions no one schedules.
const pollInterval = 500 * time.Millisecond

// message is one received message.
type message struct {
	id, receipt, body string
	sentNs, firstNs   int64
	receives          int
}

// receipt handles are opaque to clients; inside they are the event's seq
// and the secret the receive stored.
func encodeReceipt(seq int64, secret string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(seq, 10) + ":" + secret))
}

func decodeReceipt(h string) (seq int64, secret string, ok bool) {
	if len(h) > 1024 {
		return 0, "", false
	}
	b, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		return 0, "", false
	}
	num, secret, found := strings.Cut(string(b), ":")
	seq, err = strconv.ParseInt(num, 10, 64)
	if !found || err != nil || len(secret) != 32 {
		return 0, "", false
	}
	return seq, secret, true
}

func newSecret() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// refreshQueue brings the account's queue up to now before it is read:
// it publishes the running events that are due, then drops what the
// retention and the queue limit no longer allow.
func (c *Cloud) refreshQueue(ctx context.Context, tx *sql.Tx, acct string, now int64) error {
	if err := c.materializeRunning(ctx, tx, acct, now); err != nil {
		return err
	}
	return c.boundQueue(ctx, tx, acct, now)
}

// receive takes up to limit visible messages of the account's queue,
// hiding each for visibility, after publishing the events that are due.
// With none, due is when the queue may next gain one by itself (ok false:
// never, unless someone writes).
func (c *Cloud) receive(ctx context.Context, acct string, limit int, visibility time.Duration) (msgs []message, due int64, ok bool, err error) {
	err = c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		if err := c.refreshQueue(ctx, tx, acct, now); err != nil {
			return err
		}
		// limit (1 to 10) is in the text: a bound LIMIT expires the
		// statement at each binding (sqlEndedNotices).
		rows, err := tx.QueryContext(ctx, fmt.Sprintf(`SELECT seq, message_id, body, sent_ns, receives, coalesce(first_receive_ns, ?)
			FROM events WHERE account = ? AND visible_ns <= ? ORDER BY visible_ns, seq LIMIT %d`, limit), now, acct, now)
		if err != nil {
			return fmt.Errorf("receiving events, %w", err)
		}
		var seqs []int64
		for rows.Next() {
			var m message
			var seq int64
			if err := rows.Scan(&seq, &m.id, &m.body, &m.sentNs, &m.receives, &m.firstNs); err != nil {
				rows.Close()
				return fmt.Errorf("receiving events, %w", err)
			}
			m.receives++
			seqs = append(seqs, seq)
			msgs = append(msgs, m)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("receiving events, %w", err)
		}
		for i, seq := range seqs {
			secret := newSecret()
			msgs[i].receipt = encodeReceipt(seq, secret)
			if _, err := tx.ExecContext(ctx, `UPDATE events SET visible_ns = ?, receives = receives + 1,
				first_receive_ns = coalesce(first_receive_ns, ?), receipt = ? WHERE seq = ?`,
				now+visibility.Nanoseconds(), now, secret, seq); err != nil {
				return fmt.Errorf("receiving events, %w", err)
			}
		}
		if len(msgs) == 0 {
			due, ok, err = c.nextDue(ctx, tx, acct, now)
		}
		return err
	})
	return msgs, due, ok, err
}

// receiveWait is receive as a long poll: it waits up to wait for a message,
// waking when this process commits events to acct's queue that another
// waiter does not take, when the queue's next scheduled change is due
// (one waiter for it: eventSignal), and every pollInterval.
func (c *Cloud) receiveWait(ctx context.Context, acct string, limit int, visibility, wait time.Duration) ([]message, error) {
	deadline := time.Now().Add(wait)
	for {
		woken, cancel := c.events.wait(acct) // before the look, so no commit is missed
		msgs, due, ok, err := c.receive(ctx, acct, limit, visibility)
		if err != nil || len(msgs) > 0 {
			n := 0
			if cancel() {
				n++ // a wake-up meant for a waiter came while this one looked
			}
			if len(msgs) == limit {
				n++ // a full batch: more may be there for another waiter
			}
			c.events.wake(acct, n)
			return msgs, err
		}
		sleep := time.Until(deadline)
		if sleep <= 0 {
			if cancel() {
				c.events.wake(acct, 1)
			}
			return nil, nil
		}
		if ok {
			// due is on the cloud's clock; a millisecond late makes sure
			// it has passed when a waiter looks.
			c.events.wakeAt(acct, time.Now().Add(max(time.Duration(due-c.cfg.Now().UnixNano())+time.Millisecond, 0)))
		}
		t := time.NewTimer(min(sleep, pollInterval))
		select {
		case <-ctx.Done():
			t.Stop()
			if cancel() {
				c.events.wake(acct, 1)
			}
			return nil, ctx.Err()
		case <-woken:
			t.Stop()
		case <-t.C:
		}
		cancel()
	}
}

// errReceiptInvalid is a receipt handle that is not one.
var errReceiptInvalid = errors.New("receipt handle is invalid")

// deleteMessages deletes the messages whose latest receipt handles are
// handles; errs has the error of each handle that is malformed.
// A handle that was valid once but is not the latest, or whose message is
// gone, deletes nothing and is no error, as on SQS.
func (c *Cloud) deleteMessages(ctx context.Context, acct string, handles []string) ([]error, error) {
	errs := make([]error, len(handles))
	err := c.write(ctx, func(tx *sql.Tx) error {
		var deleted int64
		for i, h := range handles {
			seq, secret, ok := decodeReceipt(h)
			if !ok {
				errs[i] = errReceiptInvalid
				continue
			}
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE seq = ? AND account = ? AND receipt = ?`, seq, acct, secret)
			if err != nil {
				return fmt.Errorf("deleting event, %w", err)
			}
			n, _ := res.RowsAffected()
			deleted += n
		}
		return forgetEvents(ctx, tx, acct, deleted)
	})
	return errs, err
}

// changeVisibility makes the in-flight message whose latest receipt
// handle is h visible after timeout from now.
func (c *Cloud) changeVisibility(ctx context.Context, acct, h string, timeout time.Duration) error {
	seq, secret, ok := decodeReceipt(h)
	if !ok {
		return errReceiptInvalid
	}
	return c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		var visible int64
		err := tx.QueryRowContext(ctx, `SELECT visible_ns FROM events WHERE seq = ? AND account = ? AND receipt = ?`,
			seq, acct, secret).Scan(&visible)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			return sqsErrorf(sqsInvalidParameterValue, "Value %s for parameter ReceiptHandle is invalid. Reason: Message does not exist or is not available for visibility timeout change.", h)
		case err != nil:
			return fmt.Errorf("changing visibility, %w", err)
		case visible <= now:
			return sqsErrorf(sqsMessageNotInflight, "Message is not in flight.")
		}
		if _, err := tx.ExecContext(ctx, `UPDATE events SET visible_ns = ? WHERE seq = ?`, now+timeout.Nanoseconds(), seq); err != nil {
			return fmt.Errorf("changing visibility, %w", err)
		}
		return nil
	})
}

// purge deletes every message of the account's queue, once per
// Config.PurgeCooldown: sooner it is an *sqsError, PurgeQueueInProgress.
func (c *Cloud) purge(ctx context.Context, acct string) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		if err := c.takePurge(ctx, tx, acct, c.cfg.Now().UnixNano()); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM events WHERE account = ?`, acct); err != nil {
			return fmt.Errorf("purging events, %w", err)
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM event_queues WHERE account = ?`, acct); err != nil {
			return fmt.Errorf("purging events, %w", err)
		}
		return nil
	})
}

// queueCounts counts the account's visible and in-flight messages, after
// publishing due events, so the counts include them.
func (c *Cloud) queueCounts(ctx context.Context, acct string) (visible, inflight int, err error) {
	err = c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		if err := c.refreshQueue(ctx, tx, acct, now); err != nil {
			return err
		}
		err := tx.QueryRowContext(ctx, `SELECT
			(SELECT count(*) FROM events WHERE account = ?1 AND visible_ns <= ?2),
			(SELECT count(*) FROM events WHERE account = ?1 AND visible_ns > ?2)`, acct, now).Scan(&visible, &inflight)
		if err != nil {
			return fmt.Errorf("counting events, %w", err)
		}
		return nil
	})
	return visible, inflight, err
}
