package ec2

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// TestHotQueriesUseTheirIndexes: the queries that every write transaction
// or long poll runs find their few rows through their partial indexes, not
// by walking the live instances. The test fills an instances table of
// mostly live instances (the planner's own guesses, without statistics,
// are what the cloud runs with) and reads each query's plan.
func TestHotQueriesUseTheirIndexes(t *testing.T) {
	c, err := Open(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for i := range 2000 {
		var terminated any
		if i%10 == 0 {
			terminated = int64(i)
		}
		if _, err := c.db.ExecContext(ctx, `INSERT INTO instances (id, reservation_id, instance_type, zone, pool_zone, image_id,
			launch_index, launch_ns, terminated_ns, cr_id, client_token, account, lifecycle, event_state)
			VALUES (?, 'r-1', 'm5.large', 'us-east-1a', 'us-east-1a', 'ami-1', 0, ?, ?, '', '', ?, 'spot', 'running')`,
			fmt.Sprintf("i-%017x", i+1), int64(i), terminated, fmt.Sprintf("acct%d", i%3)); err != nil {
			t.Fatal(err)
		}
	}
	for name, q := range map[string]struct {
		sql   string
		args  []any
		index string
	}{
		"ended notices":     {sqlEndedNotices, []any{int64(5)}, "instances_interrupted"},
		"any ended notice":  {sqlAnyEndedNotice, []any{int64(5)}, "instances_interrupted"},
		"spot to interrupt": {sqlSpotToInterrupt, []any{int64(5), 10}, "instances_spot_live"},
		"next due of queue": {sqlNextDue, []any{"acct1", int64(5)}, "instances_interrupted"},
	} {
		rows, err := c.db.QueryContext(ctx, "EXPLAIN QUERY PLAN "+q.sql, q.args...)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var plan []string
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				t.Fatal(err)
			}
			plan = append(plan, detail)
		}
		rows.Close()
		all := strings.Join(plan, "; ")
		if !strings.Contains(all, q.index) {
			t.Errorf("%s: plan %q does not use %s", name, all, q.index)
		}
		for _, step := range plan {
			if strings.HasPrefix(step, "SCAN instances") || strings.Contains(step, "instances_terminated") ||
				strings.Contains(step, "instances_account") {
				t.Errorf("%s: plan step %q walks the instances", name, step)
			}
		}
	}
}
