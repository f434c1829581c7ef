// Package ec2 is the local cloud's EC2: an HTTP server that speaks the EC2
// Query protocol closely enough for aws-sdk-go-v2 and the AWS CLI
// (--endpoint-url), backed by SQLite.
//
// It models what gust's fleet launch depends on: capacity pools per
// instance type and zone that refill at a rate, capacity reservations that
// hold capacity, RunInstances' all-or-nothing MinCount and ClientToken
// idempotency, EC2's request and resource throttles, and a boot delay.
//
// All state, including the throttles' token buckets, lives in SQLite and
// every change happens in one IMMEDIATE transaction, so accounting is exact,
// survives a crash or restart, and is shared by every Cloud that opens the
// same file. Time-based changes (capacity arrivals, bucket refills, pending
// to running) are computed lazily from stored timestamps; there are no
// background goroutines.
//
// Supported actions: RunInstances, DescribeInstances, TerminateInstances,
// CreateCapacityReservation, DescribeCapacityReservations,
// CancelCapacityReservation, DescribeAvailabilityZones,
// DescribeInstanceTypeOfferings, CreateTags, DescribeRegions and
// DescribeInstanceStatus; for launch parameters (launch.go) DescribeVpcs,
// DescribeSubnets, Describe/Create/DeleteSecurityGroup(s), Create/Import/
// Describe/DeleteKeyPair(s), DescribeInstanceAttribute, the launch
// template actions (templates.go), DescribeSpotPriceHistory and
// GetSpotPlacementScores (spot.go), and CreateFleet of type instant,
// DescribeFleets and DeleteFleets (fleet.go). Pools sell on-demand or spot
// capacity at a fixed price (markets.go). Every action honours DryRun
// (dryrun.go).
//
// Every instance and capacity reservation belongs to an account, the tenant
// of the request's verified principal (the local cloud's server checks
// signatures and puts the principal in the request's context; this package
// trusts it). An account sees and touches only its own resources: another
// account's ids are not found, exactly as if they did not exist. Capacity
// pools are shared by all accounts, as an availability zone's capacity is;
// the API throttles are per account, as on AWS.
//
// Events (events.go, sqs.go): every account has one SQS-compatible queue,
// EventsQueueName, served by ServeSQS in SQS's JSON protocol, that
// receives the EventBridge events of its instances, as an EventBridge rule
// on aws.ec2 targeting an SQS queue would: state changes and spot
// interruption warnings. Spot instances are reclaimed at a configured rate
// (or by Interrupt) with EC2's two-minute notice (reclaim.go). Both are
// lazy too: each queue read publishes the running events that came due,
// and each write transaction applies due interruptions. Queue calls are
// limited per account (sqslimits.go): a request bucket (1000 calls of
// burst, 500 a second; RequestThrottled), 16 long polls waiting at once per
// process (more return at once) and one PurgeQueue a minute
// (PurgeQueueInProgress).
//
// Deliberate simplifications: instances go straight to terminated (the
// shutting-down event is published with the terminated one), "open" capacity reservations only hold capacity (only
// launches that target a reservation draw from it), limited reservations
// never expire, and filter values match exactly (no * wildcards). Each
// account has one default VPC with one default subnet per zone, whose ids
// derive from the account; spot prices never move; only instant fleets
// exist.
package ec2

import (
	"context"
	"database/sql"
	"encoding/xml"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"

	"github.com/gust-dev/gust/localcloud/stmtcache"
	"github.com/gust-dev/gust/tenants"
)

// Cloud is the EC2 API of the local cloud. It is an http.Handler that
// serves the Query protocol at any path; mount it at the root of the cloud
// port. Its methods are safe for concurrent use.
type Cloud struct {
	cfg Config
	db  *sql.DB
	// mu serializes this process's write transactions; other processes on
	// the same file are serialized by SQLite's lock and busy timeout.
	mu      sync.Mutex
	zones   map[string]bool
	actions map[string]action
	// events wakes long-polling queue readers when a write transaction
	// that published events commits (events.go).
	events eventSignal
	// queue is this process's part of the events queue's limits
	// (sqslimits.go).
	queue queueLimits
	// ready is set once the schema exists: from then on every write
	// transaction first applies due spot interruptions (reclaim.go).
	ready bool
}

// action handles one EC2 action for the caller's account (a tenant name).
// It writes the response's inner elements to w and returns an *apiError
// for the client, or any other error for an InternalError.
type action struct {
	run      func(ctx context.Context, acct string, p params, w *xmlWriter) error
	describe bool // throttled by the Describe bucket
}

// Open opens (or creates) the cloud's database and applies cfg's pools.
func Open(cfg Config) (*Cloud, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("invalid local cloud config, %w", err)
	}
	c := &Cloud{cfg: cfg, zones: map[string]bool{}}
	for _, z := range cfg.Zones {
		c.zones[z] = true
	}
	c.actions = map[string]action{
		"RunInstances":                  {run: c.runInstances},
		"DescribeInstances":             {run: c.describeInstances, describe: true},
		"TerminateInstances":            {run: c.terminateInstances},
		"CreateCapacityReservation":     {run: c.createCapacityReservation},
		"DescribeCapacityReservations":  {run: c.describeCapacityReservations, describe: true},
		"CancelCapacityReservation":     {run: c.cancelCapacityReservation},
		"DescribeAvailabilityZones":     {run: c.describeAvailabilityZones, describe: true},
		"DescribeInstanceTypeOfferings": {run: c.describeInstanceTypeOfferings, describe: true},
		"CreateTags":                    {run: c.createTags},
		"DescribeRegions":               {run: c.describeRegions, describe: true},
		"DescribeInstanceStatus":        {run: c.describeInstanceStatus, describe: true},
	}
	for name, act := range c.launchActions() { // launch.go
		c.actions[name] = act
	}

	const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_txlock=immediate"
	var dsn string
	if cfg.DBPath == "" {
		dsn = "file::memory:?" + pragmas
	} else {
		dsn = "file:" + (&url.URL{Path: cfg.DBPath}).EscapedPath() + "?" + pragmas
	}
	// Every call runs the same few dozen statements; the connections keep
	// them prepared (stmtcache) instead of parsing them each time.
	db := stmtcache.Open(dsn)
	if cfg.DBPath == "" {
		// Every connection to :memory: is a separate database.
		db.SetMaxOpenConns(1)
	} else {
		db.SetMaxOpenConns(4)
	}
	db.SetConnMaxLifetime(0)
	c.db = db
	if err := c.init(context.Background()); err != nil {
		db.Close()
		return nil, err
	}
	c.ready = true
	return c, nil
}

// Close closes the database.
func (c *Cloud) Close() error { return c.db.Close() }

// schema is the current schema. Every instance, capacity reservation and
// client token belongs to an account: the name of the tenant whose
// principal created it. Pools and throttles' rows are not per account
// (bucket names carry the account instead).
const schema = `
CREATE TABLE IF NOT EXISTS pools (
	instance_type TEXT NOT NULL,
	zone TEXT NOT NULL,       -- the pool key (markets.go): '' is the type's regional on-demand pool, 'spot:' + zone a spot pool
	initial INTEGER NOT NULL, -- the configured Initial, so config changes apply as deltas
	free INTEGER NOT NULL,    -- may go negative if a config change shrank a busy pool
	rate REAL NOT NULL,       -- arrivals per second
	carry REAL NOT NULL,      -- fraction of an instance accrued but not yet free
	accrued_ns INTEGER NOT NULL,
	price REAL NOT NULL DEFAULT 0, -- USD per hour; 0: DefaultPrice (markets.go)
	PRIMARY KEY (instance_type, zone)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS buckets (
	name TEXT PRIMARY KEY,
	tokens REAL NOT NULL,
	updated_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS instances (
	seq INTEGER PRIMARY KEY AUTOINCREMENT, -- describe order and pagination cursor
	id TEXT NOT NULL UNIQUE,
	reservation_id TEXT NOT NULL,
	instance_type TEXT NOT NULL,
	zone TEXT NOT NULL,
	pool_zone TEXT NOT NULL, -- the pool the capacity came from, to return it there
	image_id TEXT NOT NULL,
	launch_index INTEGER NOT NULL,
	launch_ns INTEGER NOT NULL,
	terminated_ns INTEGER,
	cr_id TEXT NOT NULL,
	client_token TEXT NOT NULL,
	account TEXT NOT NULL DEFAULT 'default',
	lifecycle TEXT NOT NULL DEFAULT 'on-demand', -- 'on-demand' or 'spot'
	event_state TEXT NOT NULL DEFAULT '', -- the last state published to the events queue (events.go)
	interrupt_ns INTEGER, -- when a spot interruption notice started (reclaim.go)
	reclaimed INTEGER NOT NULL DEFAULT 0, -- 1: terminated by a spot interruption
	subnet_id TEXT NOT NULL DEFAULT '', -- launch parameters (launch.go)
	key_name TEXT NOT NULL DEFAULT '',
	security_groups TEXT NOT NULL DEFAULT '', -- group ids, comma-separated
	user_data TEXT NOT NULL DEFAULT '', -- base64, as given
	iam_profile TEXT NOT NULL DEFAULT '' -- the instance profile's ARN
);
CREATE INDEX IF NOT EXISTS instances_reservation ON instances (reservation_id);
CREATE INDEX IF NOT EXISTS instances_terminated ON instances (terminated_ns);
CREATE INDEX IF NOT EXISTS instances_account ON instances (account, seq);
CREATE TABLE IF NOT EXISTS tags (
	seq INTEGER NOT NULL,
	key TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (seq, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS tags_key_value ON tags (key, value, seq);
CREATE TABLE IF NOT EXISTS account_run_tokens (
	account TEXT NOT NULL,
	token TEXT NOT NULL,
	digest TEXT NOT NULL,
	reservation_id TEXT NOT NULL,
	PRIMARY KEY (account, token)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS capacity_reservations (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	id TEXT NOT NULL UNIQUE,
	instance_type TEXT NOT NULL,
	zone TEXT NOT NULL,
	pool_zone TEXT NOT NULL,
	platform TEXT NOT NULL,
	total INTEGER NOT NULL,
	available INTEGER NOT NULL,
	state TEXT NOT NULL,
	end_date_type TEXT NOT NULL,
	end_date TEXT NOT NULL,
	match_criteria TEXT NOT NULL,
	tags TEXT NOT NULL, -- JSON object
	created_ns INTEGER NOT NULL,
	client_token TEXT NOT NULL,
	digest TEXT NOT NULL,
	account TEXT NOT NULL DEFAULT 'default'
);
CREATE UNIQUE INDEX IF NOT EXISTS capacity_reservations_account_token
	ON capacity_reservations (account, client_token) WHERE client_token != '';
`

// migrateAccounts brings a database written before accounts existed up to
// the current schema: its instances, reservations and client tokens become
// the default tenant's, which is whom every request acted for then. Its
// throttle buckets were shared by everyone and are dropped; the per-account
// buckets start full. It is a no-op on a new or current database.
func migrateAccounts(ctx context.Context, tx *sql.Tx) error {
	has := func(table, column string) (bool, error) {
		var n int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, table, column).Scan(&n)
		return n > 0, err
	}
	for _, table := range []string{"instances", "capacity_reservations"} {
		exists, err := has(table, "id")
		if err != nil {
			return fmt.Errorf("reading local cloud schema, %w", err)
		}
		migrated, err := has(table, "account")
		if err != nil {
			return fmt.Errorf("reading local cloud schema, %w", err)
		}
		if exists && !migrated {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+table+` ADD COLUMN account TEXT NOT NULL DEFAULT 'default'`); err != nil {
				return fmt.Errorf("adding accounts to %s, %w", table, err)
			}
		}
	}
	old, err := has("run_tokens", "token")
	if err != nil {
		return fmt.Errorf("reading local cloud schema, %w", err)
	}
	if !old {
		return nil
	}
	for _, stmt := range []string{
		`CREATE TABLE IF NOT EXISTS account_run_tokens (account TEXT NOT NULL, token TEXT NOT NULL, digest TEXT NOT NULL,
			reservation_id TEXT NOT NULL, PRIMARY KEY (account, token)) WITHOUT ROWID`,
		`INSERT OR IGNORE INTO account_run_tokens (account, token, digest, reservation_id)
			SELECT 'default', token, digest, reservation_id FROM run_tokens`,
		`DROP TABLE run_tokens`,
		`DROP INDEX IF EXISTS capacity_reservations_token`,
		`DELETE FROM buckets WHERE name IN ('resource:RunInstances') OR (name LIKE 'request:%' AND instr(substr(name, 9), ':') = 0)`,
	} {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return fmt.Errorf("migrating local cloud state to accounts, %w", err)
		}
	}
	return nil
}

func (c *Cloud) init(ctx context.Context) error {
	return c.write(ctx, func(tx *sql.Tx) error {
		if err := migrateAccounts(ctx, tx); err != nil {
			return err
		}
		if err := migrateEvents(ctx, tx); err != nil {
			return err
		}
		if err := migrateLaunch(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, schema); err != nil {
			return fmt.Errorf("creating local cloud schema, %w", err)
		}
		if _, err := tx.ExecContext(ctx, eventsSchema); err != nil {
			return fmt.Errorf("creating local cloud events schema, %w", err)
		}
		if _, err := tx.ExecContext(ctx, launchSchema); err != nil {
			return fmt.Errorf("creating local cloud launch schema, %w", err)
		}
		now := c.cfg.Now().UnixNano()
		for _, p := range c.cfg.zonePools() {
			// A new pool starts with its Initial; an existing one keeps its
			// state and only moves by the change in Initial.
			_, err := tx.ExecContext(ctx, `
				INSERT INTO pools (instance_type, zone, initial, free, rate, carry, accrued_ns, price)
				VALUES (?1, ?2, ?3, ?3, ?4, 0, ?5, ?6)
				ON CONFLICT (instance_type, zone) DO UPDATE SET
					free = free + excluded.initial - initial,
					initial = excluded.initial,
					rate = excluded.rate,
					price = excluded.price`,
				p.instanceType, p.zone, p.initial, p.rate, now, p.price)
			if err != nil {
				return fmt.Errorf("configuring pool %s in %s, %w", p.instanceType, p.zone, err)
			}
		}
		return nil
	})
}

// write runs fn in an IMMEDIATE transaction under the writer mutex, and
// commits if fn returns nil, unless ctx is a DryRun call's (withDryRun):
// then it rolls back either way.
func (c *Cloud) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning transaction, %w", err)
	}
	defer c.events.settled()
	if c.ready {
		if err := c.reclaim(ctx, tx, c.cfg.Now().UnixNano()); err != nil {
			_ = tx.Rollback()
			return err
		}
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	if isDryRun(ctx) {
		// The call would have succeeded: keep none of it.
		_ = tx.Rollback()
		return nil
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("committing transaction, %w", err)
	}
	c.events.committed()
	return nil
}

// read runs fn in a read-only transaction, a consistent snapshot.
func (c *Cloud) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := c.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("beginning transaction, %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	return fn(tx)
}

// ServeHTTP serves one EC2 Query API call for the principal the request's
// context carries (tenants.WithPrincipal): the caller must have been
// authenticated before, by the local cloud's server. The principal's tenant
// is the account that every resource the call sees or makes belongs to.
// Without a principal the call fails with MissingAuthenticationToken; the
// platform's own principal, which acts for no account until it assumes a
// role, gets UnauthorizedOperation.
func (c *Cloud) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	requestID := newRequestID()
	principal, ok := tenants.PrincipalFrom(r.Context())
	switch {
	case !ok:
		writeError(rw, &apiError{Code: CodeMissingAuthenticationToken, Message: "Request is missing Authentication Token",
			Status: http.StatusUnauthorized}, requestID)
		return
	case principal.Tenant == "":
		writeError(rw, &apiError{Code: codeUnauthorizedOperation, Status: http.StatusForbidden,
			Message: "You are not authorized to perform this operation. The platform principal must assume a tenant's role first."}, requestID)
		return
	}
	acct := principal.Tenant
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeError(rw, apiErrorf(codeInvalidAction, "The HTTP method %s is not supported", r.Method), requestID)
		return
	}
	r.Body = http.MaxBytesReader(rw, r.Body, 10<<20)
	if err := r.ParseForm(); err != nil {
		writeError(rw, apiErrorf(codeInvalidParameterValue, "malformed request body: %v", err), requestID)
		return
	}
	p := params(r.Form)
	for k := range p {
		// A presigned URL's signature parameters are not the action's: they
		// must not change a ClientToken's parameter digest.
		if strings.HasPrefix(k, "X-Amz-") {
			delete(p, k)
		}
	}
	name := p.get("Action")
	act, ok := c.actions[name]
	if !ok {
		writeError(rw, apiErrorf(codeInvalidAction, "The action %s is not valid for this web service.", name), requestID)
		return
	}
	dry, err := dryRunParam(p)
	if err != nil {
		writeError(rw, err, requestID)
		return
	}
	ctx := r.Context()
	// A dry run is a request like any other: it takes its token from the
	// request bucket (see dryrun.go).
	if err := c.throttleRequest(ctx, acct, name, act.describe); err != nil {
		c.fail(rw, err, requestID)
		return
	}
	if act.describe {
		// A Describe call writes nothing of its own: spot interruptions
		// whose notice has passed must be applied before it reads.
		if err := c.settle(ctx); err != nil {
			c.fail(rw, err, requestID)
			return
		}
	}
	if dry {
		ctx = withDryRun(ctx)
	}
	ctx = context.WithValue(ctx, hostKey{}, r.Host) // DescribeRegions' endpoint
	var w xmlWriter
	w.b.WriteString(xml.Header)
	w.b.WriteString("<" + name + `Response xmlns="` + xmlns + `">`)
	w.text("requestId", requestID)
	if err := act.run(ctx, acct, p, &w); err != nil {
		c.fail(rw, err, requestID)
		return
	}
	if dry {
		writeError(rw, errDryRunOperation(), requestID)
		return
	}
	w.close(name + "Response")
	rw.Header().Set("Content-Type", "text/xml;charset=UTF-8")
	rw.Header().Set("x-amzn-RequestId", requestID)
	_, _ = rw.Write(w.b.Bytes())
}

func (c *Cloud) fail(rw http.ResponseWriter, err error, requestID string) {
	var ae *apiError
	if !errors.As(err, &ae) {
		ae = apiErrorf(codeInternalError, "%v", err)
	}
	writeError(rw, ae, requestID)
}

// throttleRequest takes one token from the account's request bucket of
// the action. Its own transaction commits even when the action later
// fails, because on EC2 every call counts against the limit. Limits are
// per account, as on AWS: one tenant's polling cannot throttle another.
func (c *Cloud) throttleRequest(ctx context.Context, acct, actionName string, describe bool) error {
	size, refill := c.cfg.RequestBucket, c.cfg.RequestRefill
	if describe {
		size, refill = c.cfg.DescribeBucket, c.cfg.DescribeRefill
	}
	if size < 0 {
		return nil
	}
	var ok bool
	err := c.write(ctx, func(tx *sql.Tx) error {
		var err error
		ok, err = takeTokens(ctx, tx, "request:"+acct+":"+actionName, float64(size), refill, c.cfg.Now().UnixNano(), 1)
		return err
	})
	if err != nil {
		return err
	}
	if !ok {
		return apiErrorf(codeRequestLimitExceeded, "Request limit exceeded.")
	}
	return nil
}

// bucketTokens refills the named bucket up to size and returns its tokens.
func bucketTokens(ctx context.Context, tx *sql.Tx, name string, size, refill float64, now int64) (float64, error) {
	var tokens float64
	var updated int64
	err := tx.QueryRowContext(ctx, `SELECT tokens, updated_ns FROM buckets WHERE name = ?`, name).Scan(&tokens, &updated)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return size, nil
	case err != nil:
		return 0, fmt.Errorf("reading bucket %s, %w", name, err)
	}
	if now > updated {
		tokens += refill * float64(now-updated) / 1e9
	}
	return math.Min(tokens, size), nil
}

func setBucket(ctx context.Context, tx *sql.Tx, name string, tokens float64, now int64) error {
	_, err := tx.ExecContext(ctx, `
		INSERT INTO buckets (name, tokens, updated_ns) VALUES (?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET tokens = excluded.tokens, updated_ns = excluded.updated_ns`,
		name, tokens, now)
	if err != nil {
		return fmt.Errorf("writing bucket %s, %w", name, err)
	}
	return nil
}

// takeTokens takes n tokens if the bucket holds them.
func takeTokens(ctx context.Context, tx *sql.Tx, name string, size, refill float64, now int64, n float64) (bool, error) {
	tokens, err := bucketTokens(ctx, tx, name, size, refill, now)
	if err != nil {
		return false, err
	}
	if tokens < n {
		return false, nil
	}
	return true, setBucket(ctx, tx, name, tokens-n, now)
}

// accrue adds the capacity that arrived in the pool since it was last
// accrued and returns the free count. ok is false if the pool does not
// exist.
func accrue(ctx context.Context, tx *sql.Tx, instanceType, zone string, now int64) (free int, ok bool, err error) {
	var rate, carry float64
	var at int64
	err = tx.QueryRowContext(ctx, `SELECT free, rate, carry, accrued_ns FROM pools WHERE instance_type = ? AND zone = ?`,
		instanceType, zone).Scan(&free, &rate, &carry, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("reading pool %s in %s, %w", instanceType, zone, err)
	}
	if now <= at {
		return free, true, nil
	}
	arrived := carry + rate*float64(now-at)/1e9
	whole := math.Floor(arrived)
	free += int(whole)
	_, err = tx.ExecContext(ctx, `UPDATE pools SET free = ?, carry = ?, accrued_ns = ? WHERE instance_type = ? AND zone = ?`,
		free, arrived-whole, now, instanceType, zone)
	if err != nil {
		return 0, false, fmt.Errorf("accruing pool %s in %s, %w", instanceType, zone, err)
	}
	return free, true, nil
}

// source is where a launch or reservation takes its capacity from.
type source struct {
	zone     string // where the instances run
	poolZone string // the pool key drawn from (markets.go): zone, or "" for the regional pool
	free     int
	price    float64 // hourly, of one instance from the pool
}

// bestSource accrues the pools that can serve instanceType in zone (any
// zone when empty) and returns the one with the most free capacity. A draw
// never spans pools: its instances all come from one. With ties the zonal
// pool wins, keeping regional capacity for zones without their own.
func (c *Cloud) bestSource(ctx context.Context, tx *sql.Tx, instanceType, zone string, now int64) (source, error) {
	return c.marketSource(ctx, tx, MarketOnDemand, instanceType, zone, 0, now)
}

// addFree moves n instances of capacity into (n > 0) or out of (n < 0) a
// pool.
func addFree(ctx context.Context, tx *sql.Tx, instanceType, zone string, n int) error {
	_, err := tx.ExecContext(ctx, `UPDATE pools SET free = free + ? WHERE instance_type = ? AND zone = ?`, n, instanceType, zone)
	if err != nil {
		return fmt.Errorf("updating pool %s in %s, %w", instanceType, zone, err)
	}
	return nil
}

// knownType reports whether any zone has a pool of instanceType.
func knownType(ctx context.Context, tx *sql.Tx, instanceType string) (bool, error) {
	var n int
	err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pools WHERE instance_type = ?`, instanceType).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("looking up instance type, %w", err)
	}
	return n > 0, nil
}

// PoolStatus is the free capacity of one pool.
type PoolStatus struct {
	Market       string // MarketOnDemand or MarketSpot
	InstanceType string
	Zone         string // empty for a regional pool
	Free         int
	RatePerSec   float64
}

// Pools reports the free capacity of every pool now, after arrivals. It is
// for tests and status displays; it does not go through the throttles.
func (c *Cloud) Pools(ctx context.Context) ([]PoolStatus, error) {
	var out []PoolStatus
	err := c.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT instance_type, zone, rate FROM pools ORDER BY instance_type, zone`)
		if err != nil {
			return fmt.Errorf("listing pools, %w", err)
		}
		for rows.Next() {
			var s PoolStatus
			if err := rows.Scan(&s.InstanceType, &s.Zone, &s.RatePerSec); err != nil {
				rows.Close()
				return fmt.Errorf("listing pools, %w", err)
			}
			out = append(out, s)
		}
		if err := rows.Close(); err != nil {
			return fmt.Errorf("listing pools, %w", err)
		}
		now := c.cfg.Now().UnixNano()
		for i := range out {
			free, _, err := accrue(ctx, tx, out[i].InstanceType, out[i].Zone, now)
			if err != nil {
				return err
			}
			out[i].Free = free
			out[i].Market, out[i].Zone = splitPoolKey(out[i].Zone)
		}
		return nil
	})
	return out, err
}

// Free is the total free capacity of instanceType over all zones and
// both markets; MarketFree counts one market.
func (c *Cloud) Free(ctx context.Context, instanceType string) (int, error) {
	return c.MarketFree(ctx, "", instanceType)
}

// MarketFree is the total free capacity of instanceType in market
// (MarketOnDemand or MarketSpot; empty for both) over all zones.
func (c *Cloud) MarketFree(ctx context.Context, market, instanceType string) (int, error) {
	pools, err := c.Pools(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range pools {
		if p.InstanceType == instanceType && (market == "" || p.Market == market) {
			n += p.Free
		}
	}
	return n, nil
}

// Ping checks that the cloud's database answers, for health checks.
func (c *Cloud) Ping(ctx context.Context) error { return c.db.PingContext(ctx) }
