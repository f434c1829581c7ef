package ec2

import (
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/tenants"
)

// twoAccounts serves one cloud to the clients of tenants acme and globex.
func twoAccounts(t *testing.T, cfg Config) (acme, globex *awsec2.Client, cloud *Cloud, endpoint string) {
	t.Helper()
	cloud, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	srv := httptest.NewServer(trustKeyID(cloud))
	t.Cleanup(srv.Close)
	return clientFor(srv.URL, "acme"), clientFor(srv.URL, "globex"), cloud, srv.URL
}

// TestAccountsAreSeparate: an account sees and touches only its own
// instances and capacity reservations. Another account's ids answer
// exactly as ids that do not exist.
func TestAccountsAreSeparate(t *testing.T) {
	ctx := context.Background()
	acme, globex, cloud, _ := twoAccounts(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Zone: "us-east-1a", Initial: 20}}}))

	out, err := run(ctx, acme, "m5.large", 2, 2, withToken("tok"), withTags("gust:fleet-id", "f"))
	require.NoError(t, err)
	acmeIDs := ids(out)
	assert.Equal(t, tenants.AccountID("acme"), aws.ToString(out.OwnerId))
	cr, err := acme.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{
		InstanceType: aws.String("m5.large"), InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix,
		AvailabilityZone: aws.String("us-east-1a"), InstanceCount: aws.Int32(3), ClientToken: aws.String("cr-tok"),
	})
	require.NoError(t, err)
	crID := aws.ToString(cr.CapacityReservation.CapacityReservationId)
	assert.Equal(t, tenants.AccountID("acme"), aws.ToString(cr.CapacityReservation.OwnerId))
	assert.Contains(t, aws.ToString(cr.CapacityReservation.CapacityReservationArn), ":"+tenants.AccountID("acme")+":")

	// Describe: nothing of acme's, however globex asks.
	assert.Empty(t, describe(t, globex, &awsec2.DescribeInstancesInput{}))
	assert.Empty(t, describe(t, globex, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("gust:fleet-id", "f")}}))
	assert.Empty(t, describe(t, globex, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-id"), Values: acmeIDs}}}))
	assert.Empty(t, describe(t, globex, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("client-token"), Values: []string{"tok"}}}}))
	_, err = globex.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: acmeIDs[:1]})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
	assert.Equal(t, "The instance ID '"+acmeIDs[0]+"' does not exist", apiMessage(t, err), "the same answer as a missing id")
	d, err := globex.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{})
	require.NoError(t, err)
	assert.Empty(t, d.CapacityReservations)
	_, err = globex.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{crID}})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", errorCode(t, err))

	// Terminate, cancel, launch into the reservation: not found, and
	// nothing of acme's changes.
	_, err = globex.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: acmeIDs})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
	_, err = globex.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID)})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", errorCode(t, err))
	_, err = run(ctx, globex, "m5.large", 1, 1, withReservation(crID))
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", errorCode(t, err))
	for _, in := range describe(t, acme, &awsec2.DescribeInstancesInput{InstanceIds: acmeIDs}) {
		assert.NotEqual(t, types.InstanceStateNameTerminated, in.State.Name)
	}
	d, err = acme.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{crID}})
	require.NoError(t, err)
	assert.Equal(t, types.CapacityReservationStateActive, d.CapacityReservations[0].State)
	assert.Equal(t, int32(3), aws.ToInt32(d.CapacityReservations[0].AvailableInstanceCount))

	// Client tokens are per account: globex's "tok" is a new launch with
	// other parameters, not acme's replay and not a mismatch.
	gout, err := run(ctx, globex, "m5.large", 1, 1, withToken("tok"))
	require.NoError(t, err)
	require.Len(t, gout.Instances, 1)
	assert.NotContains(t, acmeIDs, ids(gout)[0])
	gcr, err := globex.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{
		InstanceType: aws.String("m5.large"), InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix,
		AvailabilityZone: aws.String("us-east-1a"), InstanceCount: aws.Int32(1), ClientToken: aws.String("cr-tok"),
	})
	require.NoError(t, err)
	assert.NotEqual(t, crID, aws.ToString(gcr.CapacityReservation.CapacityReservationId))
	again, err := run(ctx, acme, "m5.large", 2, 2, withToken("tok"), withTags("gust:fleet-id", "f"))
	require.NoError(t, err)
	assert.ElementsMatch(t, acmeIDs, ids(again), "acme's own token still replays")

	// The pool is shared: 20 - 2 - 3 - 1 - 1.
	assert.Equal(t, 13, free(t, cloud, "m5.large"))

	// acme's own calls work.
	_, err = acme.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: acmeIDs})
	require.NoError(t, err)
	_, err = acme.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID)})
	require.NoError(t, err)
	assert.Len(t, describe(t, globex, &awsec2.DescribeInstancesInput{}), 1, "globex's own instance is untouched")
}

// TestThrottlesArePerAccount: one account's calls do not spend another's
// request or RunInstances resource tokens, as on AWS.
func TestThrottlesArePerAccount(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	acme, globex, _, _ := twoAccounts(t, Config{Now: clk.Now, RequestBucket: 2, RequestRefill: 1, DescribeBucket: 1, DescribeRefill: 1,
		ResourceBucket: 5, ResourceRefill: 1, Pools: []Pool{{InstanceType: "t3.micro", Initial: 100}}})

	_, err := run(ctx, acme, "t3.micro", 5, 5)
	require.NoError(t, err)
	_, err = run(ctx, acme, "t3.micro", 1, 1)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err), "acme spent its resource tokens")
	_, err = acme.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	require.NoError(t, err)
	_, err = acme.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err), "acme spent its describe tokens")

	out, err := run(ctx, globex, "t3.micro", 5, 5)
	require.NoError(t, err, "globex has buckets of its own")
	assert.Len(t, out.Instances, 5)
	_, err = globex.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	require.NoError(t, err)
}

// TestUnauthenticatedAndPlatformCallers: the service itself refuses a
// request that carries no principal, and the platform's principal, which
// has no account of its own.
func TestUnauthenticatedAndPlatformCallers(t *testing.T) {
	cloud, err := Open(Config{})
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	form := url.Values{"Action": {"DescribeInstances"}, "Version": {"2016-11-15"}}

	call := func(ctx context.Context) (int, string) {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		rec := httptest.NewRecorder()
		cloud.ServeHTTP(rec, req)
		return rec.Code, rec.Body.String()
	}
	status, body := call(context.Background())
	assert.Equal(t, http.StatusUnauthorized, status)
	assert.Contains(t, body, "<Code>MissingAuthenticationToken</Code>")

	platform := tenants.WithPrincipal(context.Background(), tenants.Principal{AccessKeyID: "AKIAPLATFORM", Platform: true})
	status, body = call(platform)
	assert.Equal(t, http.StatusForbidden, status)
	assert.Contains(t, body, "<Code>UnauthorizedOperation</Code>")
}

// oldSchema is ec2.db's schema before accounts existed, as the released
// local cloud created it.
const oldSchema = `
CREATE TABLE pools (instance_type TEXT NOT NULL, zone TEXT NOT NULL, initial INTEGER NOT NULL, free INTEGER NOT NULL,
	rate REAL NOT NULL, carry REAL NOT NULL, accrued_ns INTEGER NOT NULL, PRIMARY KEY (instance_type, zone)) WITHOUT ROWID;
CREATE TABLE buckets (name TEXT PRIMARY KEY, tokens REAL NOT NULL, updated_ns INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE instances (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, reservation_id TEXT NOT NULL,
	instance_type TEXT NOT NULL, zone TEXT NOT NULL, pool_zone TEXT NOT NULL, image_id TEXT NOT NULL,
	launch_index INTEGER NOT NULL, launch_ns INTEGER NOT NULL, terminated_ns INTEGER, cr_id TEXT NOT NULL,
	client_token TEXT NOT NULL);
CREATE INDEX instances_reservation ON instances (reservation_id);
CREATE INDEX instances_terminated ON instances (terminated_ns);
CREATE TABLE tags (seq INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (seq, key)) WITHOUT ROWID;
CREATE INDEX tags_key_value ON tags (key, value, seq);
CREATE TABLE run_tokens (token TEXT PRIMARY KEY, digest TEXT NOT NULL, reservation_id TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE capacity_reservations (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE,
	instance_type TEXT NOT NULL, zone TEXT NOT NULL, pool_zone TEXT NOT NULL, platform TEXT NOT NULL,
	total INTEGER NOT NULL, available INTEGER NOT NULL, state TEXT NOT NULL, end_date_type TEXT NOT NULL,
	end_date TEXT NOT NULL, match_criteria TEXT NOT NULL, tags TEXT NOT NULL, created_ns INTEGER NOT NULL,
	client_token TEXT NOT NULL, digest TEXT NOT NULL);
CREATE UNIQUE INDEX capacity_reservations_token ON capacity_reservations (client_token) WHERE client_token != '';
`

// TestOpensPreAccountsDatabase: an ec2.db written before accounts keeps
// working: what it holds becomes the default tenant's, client tokens still
// replay, and other accounts see none of it.
func TestOpensPreAccountsDatabase(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	path := filepath.Join(t.TempDir(), "ec2.db")

	// The old cloud's state: a pool with 10 of 16 m5.large taken by a
	// reservation of 4 (1 used by an instance launched into it) and a
	// tokened launch of 2, and a drained request bucket.
	now := clk.Now().UnixNano()
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	// The old RunInstances digest of "tok": the parameters the SDK sends
	// below, as params.digest computes it.
	tokDigest := params(url.Values{"ImageId": {"ami-12345678"}, "InstanceType": {"m5.large"}, "MinCount": {"2"}, "MaxCount": {"2"}}).digest()
	for _, stmt := range []string{
		oldSchema,
		`INSERT INTO pools VALUES ('m5.large', '', 16, 10, 0, 0, ` + itoa(now) + `)`,
		`INSERT INTO buckets VALUES ('request:RunInstances', 0, ` + itoa(now) + `)`,
		`INSERT INTO instances (id, reservation_id, instance_type, zone, pool_zone, image_id, launch_index, launch_ns, cr_id, client_token)
			VALUES ('i-0000000000000000a', 'r-0000000000000000a', 'm5.large', 'us-east-1a', '', 'ami-12345678', 0, ` + itoa(now) + `, '', 'tok'),
			       ('i-0000000000000000b', 'r-0000000000000000a', 'm5.large', 'us-east-1a', '', 'ami-12345678', 1, ` + itoa(now) + `, '', 'tok'),
			       ('i-0000000000000000c', 'r-0000000000000000c', 'm5.large', 'us-east-1b', '', 'ami-12345678', 0, ` + itoa(now) + `, 'cr-0000000000000000a', '')`,
		`INSERT INTO tags VALUES (1, 'gust:fleet-id', 'old')`,
		`INSERT INTO run_tokens VALUES ('tok', '` + tokDigest + `', 'r-0000000000000000a')`,
		`INSERT INTO capacity_reservations (id, instance_type, zone, pool_zone, platform, total, available, state, end_date_type,
			end_date, match_criteria, tags, created_ns, client_token, digest)
			VALUES ('cr-0000000000000000a', 'm5.large', 'us-east-1b', '', 'Linux/UNIX', 4, 3, 'active', 'unlimited', '', 'open', '{}', ` + itoa(now) + `, 'cr-tok', 'd')`,
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	cfg := Config{DBPath: path, Now: clk.Now, RequestBucket: 1, RequestRefill: 0.001, DescribeBucket: -1, ResourceBucket: -1,
		Pools: []Pool{{InstanceType: "m5.large", Initial: 16}}}
	for round := range 2 { // the second Open finds the schema current
		cloud, err := Open(cfg)
		require.NoError(t, err, "round %d", round)
		srv := httptest.NewServer(trustKeyID(cloud))
		def, other := clientFor(srv.URL, tenants.DefaultTenant), clientFor(srv.URL, "acme")

		got := describe(t, def, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("gust:fleet-id", "old")}})
		require.Len(t, got, 1, "round %d", round)
		assert.Equal(t, "i-0000000000000000a", aws.ToString(got[0].InstanceId))
		assert.Len(t, describe(t, def, &awsec2.DescribeInstancesInput{}), 3)
		for _, in := range describe(t, other, &awsec2.DescribeInstancesInput{}) {
			// Only acme's own launch of round 0, terminated since.
			assert.NotContains(t, []string{"i-0000000000000000a", "i-0000000000000000b", "i-0000000000000000c"}, aws.ToString(in.InstanceId))
			assert.Equal(t, types.InstanceStateNameTerminated, in.State.Name)
		}
		d, err := def.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{})
		require.NoError(t, err)
		require.Len(t, d.CapacityReservations, 1)
		assert.Equal(t, tenants.AccountID(tenants.DefaultTenant), aws.ToString(d.CapacityReservations[0].OwnerId))
		_, err = other.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{"cr-0000000000000000a"}})
		assert.Equal(t, "InvalidCapacityReservationId.NotFound", errorCode(t, err))
		assert.Equal(t, 10, free(t, cloud, "m5.large"), "pools are untouched")

		if round == 0 {
			// The old token replays for the default tenant (this is also
			// its first RunInstances in its new, full request bucket).
			out, err := run(ctx, def, "m5.large", 2, 2, withToken("tok"))
			require.NoError(t, err)
			assert.ElementsMatch(t, []string{"i-0000000000000000a", "i-0000000000000000b"}, ids(out))
			// and is not acme's.
			out, err = run(ctx, other, "m5.large", 1, 1, withToken("tok"))
			require.NoError(t, err)
			assert.Len(t, out.Instances, 1)
			_, err = other.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)})
			require.NoError(t, err)
		}
		srv.Close()
		require.NoError(t, cloud.Close())
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func apiMessage(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	return ae.ErrorMessage()
}
