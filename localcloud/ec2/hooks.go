package ec2

import (
	"context"
	"database/sql"
	"fmt"
)

// Instance state-change hooks. Every code path that creates or ends
// instances calls these inside its write transaction, so the events the
// cloud publishes (events.go) are committed with the change they describe.

// noteLaunched records that ids were launched (state pending) at now: it
// publishes their pending events, and their running events too when there
// is no boot delay; with one, the first queue read after it publishes them
// (materializeRunning).
func (c *Cloud) noteLaunched(ctx context.Context, tx *sql.Tx, acct string, ids []string, now int64) error {
	evs := make([]event, 0, 2*len(ids))
	for _, id := range ids {
		evs = append(evs, event{acct: acct, instanceID: id, at: now, state: "pending"})
	}
	state := "pending"
	if c.cfg.BootDelay == 0 {
		state = "running"
		for _, id := range ids {
			evs = append(evs, event{acct: acct, instanceID: id, at: now, state: "running"})
		}
	}
	if err := setEventState(ctx, tx, acct, ids, state); err != nil {
		return err
	}
	return c.publish(ctx, tx, evs, now)
}

// noteTerminated records that ids went to state terminated at now.
func (c *Cloud) noteTerminated(ctx context.Context, tx *sql.Tx, acct string, ids []string, now int64) error {
	return c.noteEnded(ctx, tx, acct, ids, now, now)
}

// noteEnded publishes the shutting-down and terminated events of ids,
// which ended at (the event's time) and are noticed at now. An instance
// that had finished booting but whose running event is not published yet
// gets that first, so a reader always sees the states in order.
func (c *Cloud) noteEnded(ctx context.Context, tx *sql.Tx, acct string, ids []string, at, now int64) error {
	boot := c.cfg.BootDelay.Nanoseconds()
	var evs []event
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		args := append([]any{acct}, anys(chunk)...)
		rows, err := tx.QueryContext(ctx, `SELECT id, launch_ns, event_state FROM instances WHERE account = ? AND id IN (`+
			placeholders(len(chunk))+`)`, args...)
		if err != nil {
			return fmt.Errorf("reading ended instances, %w", err)
		}
		for rows.Next() {
			var id, published string
			var launch int64
			if err := rows.Scan(&id, &launch, &published); err != nil {
				rows.Close()
				return fmt.Errorf("reading ended instances, %w", err)
			}
			if published == "terminated" {
				continue
			}
			if published == "pending" && launch+boot <= at {
				evs = append(evs, event{acct: acct, instanceID: id, at: launch + boot, state: "running"})
			}
			evs = append(evs,
				event{acct: acct, instanceID: id, at: at, state: "shutting-down"},
				event{acct: acct, instanceID: id, at: at, state: "terminated"})
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("reading ended instances, %w", err)
		}
		if err := setEventState(ctx, tx, acct, chunk, "terminated"); err != nil {
			return err
		}
	}
	return c.publish(ctx, tx, evs, now)
}
