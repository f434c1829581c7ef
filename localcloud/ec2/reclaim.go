package ec2

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"
)

// Spot reclaim. EC2 takes spot capacity back when it needs it: it sends an
// interruption warning (an EventBridge event) and terminates the instance
// two minutes later. The local cloud does the same, at the configured
// rate (Config.SpotReclaimPerMinute) or on demand (Interrupt).
//
// Like capacity arrivals it is lazy: every write transaction first runs
// reclaim, which ends the notices that have passed and then interrupts as
// many running spot instances as accrued since the last run. The accrual's
// fraction is carried in the buckets row reclaimBucket, so the long-run
// rate is exact across calls, restarts and processes. Accrual beyond the
// instances there are to interrupt is dropped: a cloud with no spot
// instances for an hour does not owe an hour of interruptions.

// DefaultSpotNoticePeriod is EC2's spot interruption notice.
const DefaultSpotNoticePeriod = 2 * time.Minute

// The state reason EC2 gives an instance it interrupts.
const (
	spotTerminationCode    = "Server.SpotInstanceTermination"
	spotTerminationMessage = "Server.SpotInstanceTermination: Spot instance termination"
)

// reclaimBucket is the buckets row that carries the reclaim accrual:
// tokens is the fraction of an interruption accrued, updated_ns when.
const reclaimBucket = "reclaim:spot"

// reclaimBatch bounds the instances one transaction interrupts or
// terminates; the rest wait for the next transaction.
const reclaimBatch = 1000

// The queries every write transaction (reclaim) or long poll (nextDue)
// runs. Each names its partial index: left to itself, SQLite's planner
// prefers instances_terminated for "terminated_ns IS NULL", which walks
// every live instance, and with a few thousand of them the local cloud
// spent half its write time there (TestHotQueriesUseTheirIndexes).
//
// A limit is written into the text, not bound: SQLite's planner reads a
// bound LIMIT's value, so every new binding of it expires the prepared
// statement and the next step parses it again (stmtcache's cache would
// not save the parse).
var sqlEndedNotices = fmt.Sprintf(`SELECT account, id, instance_type, pool_zone, cr_id, interrupt_ns FROM instances INDEXED BY instances_interrupted
		WHERE interrupt_ns IS NOT NULL AND terminated_ns IS NULL AND interrupt_ns <= ? ORDER BY interrupt_ns LIMIT %d`, reclaimBatch)

const (
	sqlAnyEndedNotice = `SELECT count(*) FROM (SELECT 1 FROM instances INDEXED BY instances_interrupted
		WHERE interrupt_ns IS NOT NULL AND terminated_ns IS NULL AND interrupt_ns <= ? LIMIT 1)`
	sqlSpotToInterrupt = `SELECT account, id FROM instances INDEXED BY instances_spot_live
		WHERE lifecycle = 'spot' AND terminated_ns IS NULL AND interrupt_ns IS NULL AND launch_ns <= ?
		ORDER BY random() LIMIT ?`
	sqlNextDue = `SELECT
		(SELECT min(visible_ns) FROM events WHERE account = ?1 AND visible_ns > ?2),
		(SELECT min(launch_ns) FROM instances WHERE account = ?1 AND event_state = 'pending'),
		(SELECT min(interrupt_ns) FROM instances INDEXED BY instances_interrupted WHERE interrupt_ns IS NOT NULL AND terminated_ns IS NULL AND account = ?1)`
)

// reclaim ends the spot notices that have passed by now and interrupts
// the spot instances due by the reclaim rate.
func (c *Cloud) reclaim(ctx context.Context, tx *sql.Tx, now int64) error {
	if err := c.endNotices(ctx, tx, now); err != nil {
		return err
	}
	rate := c.cfg.SpotReclaimPerMinute / 60 // per second
	if rate <= 0 {
		return nil
	}
	var carry float64
	var at int64
	err := tx.QueryRowContext(ctx, `SELECT tokens, updated_ns FROM buckets WHERE name = ?`, reclaimBucket).Scan(&carry, &at)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return setBucket(ctx, tx, reclaimBucket, 0, now)
	case err != nil:
		return fmt.Errorf("reading the spot reclaim accrual, %w", err)
	case now <= at:
		return nil
	}
	due := carry + rate*float64(now-at)/1e9
	whole := math.Floor(due)
	if whole >= 1 {
		rows, err := tx.QueryContext(ctx, sqlSpotToInterrupt, now-c.cfg.BootDelay.Nanoseconds(), int(math.Min(whole, reclaimBatch)))
		if err != nil {
			return fmt.Errorf("choosing spot instances to interrupt, %w", err)
		}
		byAcct := map[string][]string{}
		var accts []string
		for rows.Next() {
			var acct, id string
			if err := rows.Scan(&acct, &id); err != nil {
				rows.Close()
				return fmt.Errorf("choosing spot instances to interrupt, %w", err)
			}
			if byAcct[acct] == nil {
				accts = append(accts, acct)
			}
			byAcct[acct] = append(byAcct[acct], id)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("choosing spot instances to interrupt, %w", err)
		}
		for _, acct := range accts {
			if err := c.startNotices(ctx, tx, acct, byAcct[acct], now); err != nil {
				return err
			}
		}
	}
	return setBucket(ctx, tx, reclaimBucket, due-whole, now)
}

// startNotices marks the account's instances ids as interrupted at now and
// publishes their interruption warnings.
func (c *Cloud) startNotices(ctx context.Context, tx *sql.Tx, acct string, ids []string, now int64) error {
	evs := make([]event, 0, len(ids))
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := append([]any{now, acct}, anys(chunk)...)
		if _, err := tx.ExecContext(ctx, `UPDATE instances SET interrupt_ns = ? WHERE account = ? AND id IN (`+
			placeholders(len(chunk))+`)`, args...); err != nil {
			return fmt.Errorf("interrupting spot instances, %w", err)
		}
		for _, id := range chunk {
			evs = append(evs, event{acct: acct, instanceID: id, at: now})
		}
	}
	return c.publish(ctx, tx, evs, now)
}

// endNotices terminates the interrupted instances whose notice has passed
// by now, as of the moment it passed, returns their capacity and
// publishes their state changes.
func (c *Cloud) endNotices(ctx context.Context, tx *sql.Tx, now int64) error {
	notice := c.cfg.SpotNoticePeriod.Nanoseconds()
	rows, err := tx.QueryContext(ctx, sqlEndedNotices, now-notice)
	if err != nil {
		return fmt.Errorf("finding ended spot notices, %w", err)
	}
	// Instances ending at the same moment in the same account are handled
	// together; a batch of interruptions shares its start.
	type group struct {
		acct string
		at   int64
	}
	ended := map[group][]*instance{}
	var order []group
	for rows.Next() {
		var acct string
		var interrupted int64
		in := &instance{}
		if err := rows.Scan(&acct, &in.id, &in.instanceType, &in.poolZone, &in.crID, &interrupted); err != nil {
			rows.Close()
			return fmt.Errorf("finding ended spot notices, %w", err)
		}
		g := group{acct, interrupted + notice}
		if ended[g] == nil {
			order = append(order, g)
		}
		ended[g] = append(ended[g], in)
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("finding ended spot notices, %w", err)
	}
	for _, g := range order {
		list := ended[g]
		ids := make([]string, len(list))
		for i, in := range list {
			ids[i] = in.id
		}
		for rest := ids; len(rest) > 0; {
			chunk := rest[:min(len(rest), 500)]
			rest = rest[len(chunk):]
			args := append([]any{g.at, g.acct}, anys(chunk)...)
			if _, err := tx.ExecContext(ctx, `UPDATE instances SET terminated_ns = ?, reclaimed = 1 WHERE account = ? AND id IN (`+
				placeholders(len(chunk))+`)`, args...); err != nil {
				return fmt.Errorf("terminating interrupted spot instances, %w", err)
			}
		}
		if err := releaseCapacity(ctx, tx, g.acct, list); err != nil {
			return err
		}
		if err := c.noteEnded(ctx, tx, g.acct, ids, g.at, now); err != nil {
			return err
		}
	}
	return nil
}

// settle applies due spot interruptions before a call that writes nothing
// itself: always when reclaim is on (its accrual moves with time), else
// only when a notice has passed, so that reads stay cheap.
func (c *Cloud) settle(ctx context.Context) error {
	if c.cfg.SpotReclaimPerMinute <= 0 {
		var n int
		err := c.db.QueryRowContext(ctx, sqlAnyEndedNotice, c.cfg.Now().UnixNano()-c.cfg.SpotNoticePeriod.Nanoseconds()).Scan(&n)
		if err != nil {
			return fmt.Errorf("finding ended spot notices, %w", err)
		}
		if n == 0 {
			return nil
		}
	}
	// write runs reclaim first; there is nothing else to do.
	return c.write(ctx, func(*sql.Tx) error { return nil })
}

// Interrupt starts the interruption notice of the account's spot
// instances ids now, as a reclaim would: each gets its warning event and
// is terminated when the notice (Config.SpotNoticePeriod) has passed.
// Instances already under notice keep theirs. It fails, and interrupts
// none, if any id is not a running or pending spot instance of the
// account. It is for tests and debugging tools; tenants cannot call it.
func (c *Cloud) Interrupt(ctx context.Context, acct string, ids []string) error {
	if len(ids) > reclaimBatch {
		return fmt.Errorf("at most %d instances can be interrupted at once", reclaimBatch)
	}
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return fmt.Errorf("malformed instance id %q", id)
		}
	}
	return c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		type row struct {
			lifecycle   string
			terminated  bool
			interrupted bool
		}
		found := map[string]row{}
		for rest := ids; len(rest) > 0; {
			chunk := rest[:min(len(rest), 500)]
			rest = rest[len(chunk):]
			args := append([]any{acct}, anys(chunk)...)
			rows, err := tx.QueryContext(ctx, `SELECT id, lifecycle, terminated_ns IS NOT NULL, interrupt_ns IS NOT NULL
				FROM instances WHERE account = ? AND id IN (`+placeholders(len(chunk))+`)`, args...)
			if err != nil {
				return fmt.Errorf("looking up instances, %w", err)
			}
			for rows.Next() {
				var id string
				var r row
				if err := rows.Scan(&id, &r.lifecycle, &r.terminated, &r.interrupted); err != nil {
					rows.Close()
					return fmt.Errorf("looking up instances, %w", err)
				}
				found[id] = r
			}
			if err := rows.Close(); err != nil {
				return fmt.Errorf("looking up instances, %w", err)
			}
		}
		var start, bad []string
		seen := map[string]bool{}
		for _, id := range ids {
			r, ok := found[id]
			switch {
			case seen[id]:
			case !ok || r.terminated || r.lifecycle != MarketSpot:
				bad = append(bad, id)
			case !r.interrupted:
				start = append(start, id)
			}
			seen[id] = true
		}
		if len(bad) > 0 {
			return fmt.Errorf("not live spot instances of %s: %s", acct, strings.Join(bad, ", "))
		}
		return c.startNotices(ctx, tx, acct, start, now)
	})
}
