package ec2

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// clock is a manual Now for tests; it only moves when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// unthrottled disables the request and resource throttles (the queue's
// too), for tests about something else.
func unthrottled(cfg Config) Config {
	cfg.RequestBucket, cfg.DescribeBucket, cfg.ResourceBucket, cfg.QueueBucket = -1, -1, -1, -1
	return cfg
}

// serve starts cloud behind an HTTP server and returns the real SDK client
// pointed at it, acting for the account "test".
func serve(t *testing.T, cloud *Cloud) (*awsec2.Client, string) {
	t.Helper()
	srv := httptest.NewServer(trustKeyID(cloud))
	t.Cleanup(srv.Close)
	return clientFor(srv.URL, "test"), srv.URL
}

// clientFor is an SDK client of endpoint that acts for tenant.
func clientFor(endpoint, tenant string) *awsec2.Client {
	return awsec2.New(awsec2.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(tenant, "test", ""),
		Retryer:      transportRetryer(),
	})
}

// transportRetryer retries only transport failures, never an API error,
// so tests see every error code the cloud returns. Transport retries are
// needed because the SDK closes a request body as soon as response headers
// arrive; against a server as fast as this one that can race the HTTP
// transport's final body read and tear the connection down under a large
// response ("use of closed network connection"), which the SDK's default
// retryer also treats as retryable.
func transportRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.Retryables = []retry.IsErrorRetryable{retry.RetryableConnectionError{}}
		o.RateLimiter = ratelimit.None
		o.MaxBackoff = 10 * time.Millisecond
	})
}

func start(t *testing.T, cfg Config) (*awsec2.Client, *Cloud) {
	t.Helper()
	cloud, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	client, _ := serve(t, cloud)
	return client, cloud
}

func errorCode(t *testing.T, err error) string {
	t.Helper()
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae)
	return ae.ErrorCode()
}

func httpStatus(t *testing.T, err error) int {
	t.Helper()
	var re *awshttp.ResponseError
	require.ErrorAs(t, err, &re)
	return re.HTTPStatusCode()
}

type runOpt func(*awsec2.RunInstancesInput)

func run(ctx context.Context, c *awsec2.Client, typ string, minCount, maxCount int32, opts ...runOpt) (*awsec2.RunInstancesOutput, error) {
	in := &awsec2.RunInstancesInput{
		ImageId:      aws.String("ami-12345678"),
		InstanceType: types.InstanceType(typ),
		MinCount:     aws.Int32(minCount),
		MaxCount:     aws.Int32(maxCount),
	}
	for _, o := range opts {
		o(in)
	}
	return c.RunInstances(ctx, in)
}

func withToken(tok string) runOpt {
	return func(in *awsec2.RunInstancesInput) { in.ClientToken = aws.String(tok) }
}

func withTags(kv ...string) runOpt {
	return func(in *awsec2.RunInstancesInput) {
		spec := types.TagSpecification{ResourceType: types.ResourceTypeInstance}
		for i := 0; i < len(kv); i += 2 {
			spec.Tags = append(spec.Tags, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		in.TagSpecifications = append(in.TagSpecifications, spec)
	}
}

func withReservation(id string) runOpt {
	return func(in *awsec2.RunInstancesInput) {
		in.CapacityReservationSpecification = &types.CapacityReservationSpecification{
			CapacityReservationTarget: &types.CapacityReservationTarget{CapacityReservationId: aws.String(id)},
		}
	}
}

func withZone(z string) runOpt {
	return func(in *awsec2.RunInstancesInput) { in.Placement = &types.Placement{AvailabilityZone: aws.String(z)} }
}

func ids(out *awsec2.RunInstancesOutput) []string {
	var s []string
	for _, in := range out.Instances {
		s = append(s, aws.ToString(in.InstanceId))
	}
	return s
}

// describe returns every instance that matches, following pagination.
func describe(t *testing.T, c *awsec2.Client, in *awsec2.DescribeInstancesInput) []types.Instance {
	t.Helper()
	var out []types.Instance
	p := awsec2.NewDescribeInstancesPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		require.NoError(t, err)
		for _, r := range page.Reservations {
			out = append(out, r.Instances...)
		}
	}
	return out
}

func tagFilter(k, v string) types.Filter {
	return types.Filter{Name: aws.String("tag:" + k), Values: []string{v}}
}

func free(t *testing.T, c *Cloud, typ string) int {
	t.Helper()
	n, err := c.Free(context.Background(), typ)
	require.NoError(t, err)
	return n
}

func TestRunInstancesIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Zone: "us-east-1a", Initial: 10}}}))

	_, err := run(ctx, client, "m5.large", 11, 20)
	require.Error(t, err)
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err))
	assert.Equal(t, http.StatusInternalServerError, httpStatus(t, err))
	assert.Empty(t, describe(t, client, &awsec2.DescribeInstancesInput{}), "a failed launch must launch nothing")
	assert.Equal(t, 10, free(t, cloud, "m5.large"))

	// At least MinCount available: launch as many as possible up to MaxCount.
	out, err := run(ctx, client, "m5.large", 5, 20)
	require.NoError(t, err)
	assert.Len(t, out.Instances, 10)
	assert.Equal(t, 0, free(t, cloud, "m5.large"))
	for _, in := range out.Instances {
		assert.Equal(t, "us-east-1a", aws.ToString(in.Placement.AvailabilityZone))
		assert.Regexp(t, `^i-[0-9a-f]{17}$`, aws.ToString(in.InstanceId))
	}
	assert.Regexp(t, `^r-[0-9a-f]{17}$`, aws.ToString(out.ReservationId))

	_, err = run(ctx, client, "t9.nonexistent", 1, 1)
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
	assert.Equal(t, http.StatusBadRequest, httpStatus(t, err))
	_, err = run(ctx, client, "m5.large", 3, 2)
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
	_, err = run(ctx, client, "m5.large", 1, 1, withZone("mars-1a"))
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
}

func TestRunInstancesClientTokenIdempotency(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Initial: 30}}}))

	first, err := run(ctx, client, "m5.large", 2, 4, withToken("fleet-1/run-1/chunk-0"), withTags("gust:fleet-id", "fleet-1"))
	require.NoError(t, err)
	require.Len(t, first.Instances, 4)
	assert.Equal(t, 26, free(t, cloud, "m5.large"))

	again, err := run(ctx, client, "m5.large", 2, 4, withToken("fleet-1/run-1/chunk-0"), withTags("gust:fleet-id", "fleet-1"))
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(first.ReservationId), aws.ToString(again.ReservationId))
	assert.ElementsMatch(t, ids(first), ids(again))
	assert.Equal(t, 26, free(t, cloud, "m5.large"), "a replay must not launch again")
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{}), 4)

	_, err = run(ctx, client, "m5.large", 2, 5, withToken("fleet-1/run-1/chunk-0"), withTags("gust:fleet-id", "fleet-1"))
	assert.Equal(t, "IdempotentParameterMismatch", errorCode(t, err))
	assert.Equal(t, http.StatusBadRequest, httpStatus(t, err))

	// A replay reports the instances' current state.
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(first)[:1]})
	require.NoError(t, err)
	again, err = run(ctx, client, "m5.large", 2, 4, withToken("fleet-1/run-1/chunk-0"), withTags("gust:fleet-id", "fleet-1"))
	require.NoError(t, err)
	states := map[string]int{}
	for _, in := range again.Instances {
		states[string(in.State.Name)]++
	}
	assert.Equal(t, map[string]int{"terminated": 1, "running": 3}, states)
}

func TestDescribeInstancesTagsAndFilters(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{}))

	a, err := run(ctx, client, "m5.large", 3, 3, withTags("gust:fleet-id", "a", "team", "x"))
	require.NoError(t, err)
	_, err = run(ctx, client, "t3.micro", 2, 2, withTags("gust:fleet-id", "b"))
	require.NoError(t, err)
	_, err = run(ctx, client, "t3.micro", 1, 1)
	require.NoError(t, err)

	got := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("gust:fleet-id", "a")}})
	require.Len(t, got, 3)
	for _, in := range got {
		tags := map[string]string{}
		for _, tg := range in.Tags {
			tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
		}
		assert.Equal(t, map[string]string{"gust:fleet-id": "a", "team": "x"}, tags)
		assert.Equal(t, types.InstanceTypeM5Large, in.InstanceType)
	}
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:gust:fleet-id"), Values: []string{"a", "b"}}}}), 5, "values of one filter are ORed")
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag-key"), Values: []string{"gust:fleet-id"}}}}), 5)
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		tagFilter("gust:fleet-id", "a"), tagFilter("team", "y")}}), 0, "filters are ANDed")
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-id"), Values: ids(a)[:2]}}}), 2)
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{InstanceIds: ids(a)[1:]}), 2)

	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(a)[:1]})
	require.NoError(t, err)
	byState := func(s string) int {
		return len(describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
			tagFilter("gust:fleet-id", "a"), {Name: aws.String("instance-state-name"), Values: []string{s}}}}))
	}
	assert.Equal(t, 2, byState("running"))
	assert.Equal(t, 1, byState("terminated"))
	assert.Equal(t, 0, byState("pending"))

	_, err = client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: []string{ids(a)[0], "i-0123456789abcdef0"}})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
	_, err = client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("color"), Values: []string{"red"}}}})
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
}

func TestDescribeInstancesPagination(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{}))
	want := map[string]bool{}
	for range 4 { // several reservations, so pages cut through them
		out, err := run(ctx, client, "t3.micro", 6, 6, withTags("gust:fleet-id", "p"))
		require.NoError(t, err)
		for _, id := range ids(out) {
			want[id] = true
		}
	}
	_, err := run(ctx, client, "t3.micro", 3, 3, withTags("gust:fleet-id", "other"))
	require.NoError(t, err)

	pages := 0
	got := map[string]bool{}
	p := awsec2.NewDescribeInstancesPaginator(client, &awsec2.DescribeInstancesInput{
		MaxResults: aws.Int32(5),
		Filters:    []types.Filter{tagFilter("gust:fleet-id", "p")},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		pages++
		n := 0
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				assert.False(t, got[aws.ToString(in.InstanceId)], "instance served twice")
				got[aws.ToString(in.InstanceId)] = true
				n++
			}
		}
		assert.LessOrEqual(t, n, 5)
	}
	assert.Equal(t, want, got)
	assert.Equal(t, 5, pages) // 24 instances, 5 per page

	_, err = client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{MaxResults: aws.Int32(2)})
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
	_, err = client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{NextToken: aws.String("garbage")})
	assert.Equal(t, "InvalidNextToken", errorCode(t, err))
}

func TestTerminateReturnsCapacity(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Initial: 5}}}))
	out, err := run(ctx, client, "m5.large", 5, 5)
	require.NoError(t, err)
	_, err = run(ctx, client, "m5.large", 1, 1)
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err))

	term, err := client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)[:2]})
	require.NoError(t, err)
	require.Len(t, term.TerminatingInstances, 2)
	for _, ch := range term.TerminatingInstances {
		assert.Equal(t, types.InstanceStateNameRunning, ch.PreviousState.Name)
		assert.Equal(t, types.InstanceStateNameTerminated, ch.CurrentState.Name)
		assert.Equal(t, int32(48), aws.ToInt32(ch.CurrentState.Code))
	}
	assert.Equal(t, 2, free(t, cloud, "m5.large"))

	// Terminating again is harmless and returns nothing twice.
	term, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)[:2]})
	require.NoError(t, err)
	assert.Equal(t, types.InstanceStateNameTerminated, term.TerminatingInstances[0].PreviousState.Name)
	assert.Equal(t, 2, free(t, cloud, "m5.large"))

	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: []string{ids(out)[2], "i-0123456789abcdef0"}})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
	assert.Equal(t, 2, free(t, cloud, "m5.large"), "a failed terminate must change nothing")
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"running"}}}}), 3)

	out, err = run(ctx, client, "m5.large", 2, 2)
	require.NoError(t, err)
	assert.Len(t, out.Instances, 2)
}

func TestTerminatedInstancesExpire(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, _ := start(t, unthrottled(Config{Now: clk.Now, TerminatedRetention: time.Hour}))
	out, err := run(ctx, client, "t3.micro", 2, 2)
	require.NoError(t, err)
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)[:1]})
	require.NoError(t, err)
	clk.Advance(59 * time.Minute)
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{}), 2)
	clk.Advance(2 * time.Minute)
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{}), 1)
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)[:1]})
	assert.Equal(t, "InvalidInstanceID.NotFound", errorCode(t, err))
}

func TestCapacityReservations(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{
		{InstanceType: "m5.large", Zone: "us-east-1a", Initial: 3},
		{InstanceType: "m5.large", Zone: "us-east-1b", Initial: 6},
		{InstanceType: "t3.micro", Initial: 10},
	}}))
	zoneFree := func(z string) int {
		pools, err := cloud.Pools(ctx)
		require.NoError(t, err)
		for _, p := range pools {
			if p.InstanceType == "m5.large" && p.Zone == z {
				return p.Free
			}
		}
		t.Fatalf("no pool in %s", z)
		return 0
	}
	create := func(count int32, zone, token string) (*types.CapacityReservation, error) {
		in := &awsec2.CreateCapacityReservationInput{
			InstanceType:          aws.String("m5.large"),
			InstancePlatform:      types.CapacityReservationInstancePlatformLinuxUnix,
			InstanceCount:         aws.Int32(count),
			InstanceMatchCriteria: types.InstanceMatchCriteriaTargeted,
			EndDateType:           types.EndDateTypeUnlimited,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeCapacityReservation,
				Tags: []types.Tag{{Key: aws.String("gust:fleet-id"), Value: aws.String("f")}}}},
		}
		if zone != "" {
			in.AvailabilityZone = aws.String(zone)
		}
		if token != "" {
			in.ClientToken = aws.String(token)
		}
		out, err := client.CreateCapacityReservation(ctx, in)
		if err != nil {
			return nil, err
		}
		return out.CapacityReservation, nil
	}

	_, err := create(7, "", "")
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err), "no single zone holds 7")
	_, err = create(4, "us-east-1a", "")
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err))

	cr1, err := create(5, "", "tok-cr1")
	require.NoError(t, err)
	assert.Regexp(t, `^cr-[0-9a-f]{17}$`, aws.ToString(cr1.CapacityReservationId))
	assert.Equal(t, "us-east-1b", aws.ToString(cr1.AvailabilityZone))
	assert.Equal(t, int32(5), aws.ToInt32(cr1.TotalInstanceCount))
	assert.Equal(t, int32(5), aws.ToInt32(cr1.AvailableInstanceCount))
	assert.Equal(t, types.CapacityReservationStateActive, cr1.State)
	assert.Equal(t, types.InstanceMatchCriteriaTargeted, cr1.InstanceMatchCriteria)
	assert.Equal(t, 1, zoneFree("us-east-1b"), "a reservation holds its capacity")

	again, err := create(5, "", "tok-cr1")
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(cr1.CapacityReservationId), aws.ToString(again.CapacityReservationId))
	assert.Equal(t, 1, zoneFree("us-east-1b"))
	_, err = create(4, "", "tok-cr1")
	assert.Equal(t, "IdempotentParameterMismatch", errorCode(t, err))

	cr2, err := create(3, "us-east-1a", "")
	require.NoError(t, err)
	assert.Equal(t, 0, zoneFree("us-east-1a"))

	// Launching against the reservation draws from it, all or nothing.
	cr1ID := aws.ToString(cr1.CapacityReservationId)
	_, err = run(ctx, client, "m5.large", 6, 6, withReservation(cr1ID))
	assert.Equal(t, "ReservationCapacityExceeded", errorCode(t, err))
	_, err = run(ctx, client, "t3.micro", 1, 1, withReservation(cr1ID))
	assert.Equal(t, "InvalidParameterCombination", errorCode(t, err))
	out, err := run(ctx, client, "m5.large", 5, 5, withReservation(cr1ID))
	require.NoError(t, err)
	for _, in := range out.Instances {
		assert.Equal(t, "us-east-1b", aws.ToString(in.Placement.AvailabilityZone))
		assert.Equal(t, cr1ID, aws.ToString(in.CapacityReservationId))
	}
	assert.Equal(t, 1, zoneFree("us-east-1b"), "launching into a reservation does not touch the pool")

	describeCR := func(id string) types.CapacityReservation {
		d, err := client.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{id}})
		require.NoError(t, err)
		require.Len(t, d.CapacityReservations, 1)
		return d.CapacityReservations[0]
	}
	assert.Equal(t, int32(0), aws.ToInt32(describeCR(cr1ID).AvailableInstanceCount))

	// A terminated instance gives its capacity back to the active reservation.
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)[:1]})
	require.NoError(t, err)
	assert.Equal(t, int32(1), aws.ToInt32(describeCR(cr1ID).AvailableInstanceCount))

	// Cancelling returns the unused capacity to the pool; later terminations
	// of instances that ran in it return theirs to the pool too.
	_, err = client.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: cr2.CapacityReservationId})
	require.NoError(t, err)
	assert.Equal(t, 3, zoneFree("us-east-1a"))
	_, err = client.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(cr1ID)})
	require.NoError(t, err)
	assert.Equal(t, 2, zoneFree("us-east-1b"))
	assert.Equal(t, types.CapacityReservationStateCancelled, describeCR(cr1ID).State)
	_, err = client.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids(out)[1:]})
	require.NoError(t, err)
	assert.Equal(t, 6, zoneFree("us-east-1b"))
	assert.Equal(t, 9, free(t, cloud, "m5.large"), "every instance of capacity is back")

	_, err = client.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(cr1ID)})
	assert.NoError(t, err, "cancelling twice is harmless")
	_, err = run(ctx, client, "m5.large", 1, 1, withReservation(cr1ID))
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err))
	_, err = client.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String("cr-0123456789abcdef0")})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", errorCode(t, err))
	_, err = client.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{"cr-0123456789abcdef0"}})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", errorCode(t, err))

	d, err := client.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{Filters: []types.Filter{
		tagFilter("gust:fleet-id", "f"), {Name: aws.String("availability-zone"), Values: []string{"us-east-1a"}}}})
	require.NoError(t, err)
	require.Len(t, d.CapacityReservations, 1)
	assert.Equal(t, aws.ToString(cr2.CapacityReservationId), aws.ToString(d.CapacityReservations[0].CapacityReservationId))
}

func TestRequestThrottleIsPerAction(t *testing.T) {
	ctx := context.Background()
	clk := newClock() // frozen: buckets refill only when the test says so
	client, _ := start(t, Config{Now: clk.Now, RequestBucket: 2, RequestRefill: 1, DescribeBucket: 3, DescribeRefill: 1})

	for range 2 {
		_, err := run(ctx, client, "t3.micro", 1, 1)
		require.NoError(t, err)
	}
	_, err := run(ctx, client, "t3.micro", 1, 1)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err))
	assert.Equal(t, http.StatusServiceUnavailable, httpStatus(t, err))

	// Describe has its own bucket and is not starved by RunInstances.
	for range 3 {
		_, err := client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
		require.NoError(t, err)
	}
	_, err = client.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err))

	clk.Advance(time.Second)
	_, err = run(ctx, client, "t3.micro", 1, 1)
	require.NoError(t, err)
	_, err = run(ctx, client, "t3.micro", 1, 1)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err))
}

func TestResourceThrottleCountsInstances(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, cloud := start(t, Config{Now: clk.Now, RequestBucket: -1, DescribeBucket: -1, ResourceBucket: 10, ResourceRefill: 2,
		Pools: []Pool{{InstanceType: "t3.micro", Initial: 100}}})
	before := free(t, cloud, "t3.micro")

	_, err := run(ctx, client, "t3.micro", 8, 8)
	require.NoError(t, err)
	_, err = run(ctx, client, "t3.micro", 3, 5)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err))
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{}), 8, "a throttled call launches nothing")

	out, err := run(ctx, client, "t3.micro", 1, 5)
	require.NoError(t, err)
	assert.Len(t, out.Instances, 2, "launch what the bucket allows")
	_, err = run(ctx, client, "t3.micro", 1, 1)
	assert.Equal(t, "RequestLimitExceeded", errorCode(t, err))

	clk.Advance(1500 * time.Millisecond) // 3 tokens
	out, err = run(ctx, client, "t3.micro", 1, 100)
	require.NoError(t, err)
	assert.Len(t, out.Instances, 3)
	assert.Equal(t, before-13, free(t, cloud, "t3.micro"))

	_, err = run(ctx, client, "t3.micro", 11, 11)
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err), "a MinCount above the bucket size can never succeed")
}

func TestPoolArrivals(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, cloud := start(t, unthrottled(Config{Now: clk.Now, Zones: []string{"us-east-1a"},
		Pools: []Pool{{InstanceType: "c5.xlarge", Initial: 1, RatePerSec: 2}}}))
	_, err := run(ctx, client, "c5.xlarge", 2, 2)
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err))
	clk.Advance(750 * time.Millisecond) // 1.5 arrived
	assert.Equal(t, 2, free(t, cloud, "c5.xlarge"))
	clk.Advance(250 * time.Millisecond) // the carried half plus another half
	assert.Equal(t, 3, free(t, cloud, "c5.xlarge"))
	out, err := run(ctx, client, "c5.xlarge", 2, 10)
	require.NoError(t, err)
	assert.Len(t, out.Instances, 3)
}

func TestBootDelay(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	client, _ := start(t, unthrottled(Config{Now: clk.Now, BootDelay: 30 * time.Second}))
	out, err := run(ctx, client, "t3.micro", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, types.InstanceStateNamePending, out.Instances[0].State.Name)
	assert.Equal(t, clk.Now(), aws.ToTime(out.Instances[0].LaunchTime))

	stateCount := func(s string) int {
		return len(describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
			{Name: aws.String("instance-state-name"), Values: []string{s}}}}))
	}
	clk.Advance(29 * time.Second)
	assert.Equal(t, 2, stateCount("pending"))
	assert.Equal(t, 0, stateCount("running"))
	clk.Advance(time.Second)
	assert.Equal(t, 0, stateCount("pending"))
	assert.Equal(t, 2, stateCount("running"))
	got := describe(t, client, &awsec2.DescribeInstancesInput{InstanceIds: ids(out)})
	assert.Equal(t, int32(16), aws.ToInt32(got[0].State.Code))
}

func TestStatePersistsAcrossRestart(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ec2.db")
	cfg := unthrottled(Config{DBPath: path, Pools: []Pool{{InstanceType: "m5.large", Initial: 20}}})

	cloud, err := Open(cfg)
	require.NoError(t, err)
	client, _ := serve(t, cloud)
	first, err := run(ctx, client, "m5.large", 3, 3, withToken("tok"), withTags("gust:fleet-id", "persist"))
	require.NoError(t, err)
	cr, err := client.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{
		InstanceType: aws.String("m5.large"), InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix,
		InstanceCount: aws.Int32(4), ClientToken: aws.String("cr-tok"),
	})
	require.NoError(t, err)
	require.NoError(t, cloud.Close())

	cloud, err = Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	client, _ = serve(t, cloud)
	got := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("gust:fleet-id", "persist")}})
	assert.Len(t, got, 3)
	assert.Equal(t, 13, free(t, cloud, "m5.large"))
	again, err := run(ctx, client, "m5.large", 3, 3, withToken("tok"), withTags("gust:fleet-id", "persist"))
	require.NoError(t, err)
	assert.ElementsMatch(t, ids(first), ids(again), "client tokens survive a restart")
	crAgain, err := client.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{
		InstanceType: aws.String("m5.large"), InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix,
		InstanceCount: aws.Int32(4), ClientToken: aws.String("cr-tok"),
	})
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(cr.CapacityReservation.CapacityReservationId), aws.ToString(crAgain.CapacityReservation.CapacityReservationId))
	assert.Equal(t, 13, free(t, cloud, "m5.large"))
	require.NoError(t, cloud.Close())

	// A new Initial applies as a delta on the stored free count.
	cfg.Pools[0].Initial = 30
	cloud, err = Open(cfg)
	require.NoError(t, err)
	defer cloud.Close()
	assert.Equal(t, 23, free(t, cloud, "m5.large"))
}

func TestTwoCloudsShareOneFileExactly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ec2.db")
	cfg := unthrottled(Config{DBPath: path, Pools: []Pool{{InstanceType: "m5.large", Initial: 100}}})
	var clients []*awsec2.Client
	for range 2 {
		cloud, err := Open(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { cloud.Close() })
		c, _ := serve(t, cloud)
		clients = append(clients, c)
	}
	var mu sync.Mutex
	launched := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := clients[w%2]
			for range 10 {
				out, err := run(ctx, client, "m5.large", 1, 3)
				if err != nil {
					continue // InsufficientInstanceCapacity once the pool is empty
				}
				mu.Lock()
				for _, id := range ids(out) {
					launched[id] = true
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	assert.Len(t, launched, 100, "8 workers asked for up to 240; exactly the 100 available must launch")
	assert.Len(t, describe(t, clients[1], &awsec2.DescribeInstancesInput{}), 100)
}

func TestZonesAndOfferings(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, Config{Pools: []Pool{{InstanceType: "m5.large"}, {InstanceType: "g5.xlarge", Zone: "us-east-1b", Initial: 1}}})
	az, err := client.DescribeAvailabilityZones(ctx, &awsec2.DescribeAvailabilityZonesInput{})
	require.NoError(t, err)
	var names []string
	for _, z := range az.AvailabilityZones {
		names = append(names, aws.ToString(z.ZoneName))
		assert.Equal(t, types.AvailabilityZoneStateAvailable, z.State)
		assert.Equal(t, "us-east-1", aws.ToString(z.RegionName))
	}
	assert.Equal(t, []string{"us-east-1a", "us-east-1b", "us-east-1c"}, names)
	assert.Equal(t, "use1-az1", aws.ToString(az.AvailabilityZones[0].ZoneId))

	off, err := client.DescribeInstanceTypeOfferings(ctx, &awsec2.DescribeInstanceTypeOfferingsInput{})
	require.NoError(t, err)
	var types_ []string
	for _, o := range off.InstanceTypeOfferings {
		types_ = append(types_, string(o.InstanceType)+"@"+aws.ToString(o.Location))
	}
	assert.Equal(t, []string{"g5.xlarge@us-east-1", "m5.large@us-east-1"}, types_)

	off, err = client.DescribeInstanceTypeOfferings(ctx, &awsec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeAvailabilityZone,
		Filters:      []types.Filter{{Name: aws.String("instance-type"), Values: []string{"g5.xlarge"}}},
	})
	require.NoError(t, err)
	require.Len(t, off.InstanceTypeOfferings, 1)
	assert.Equal(t, "us-east-1b", aws.ToString(off.InstanceTypeOfferings[0].Location))
	assert.Equal(t, types.LocationTypeAvailabilityZone, off.InstanceTypeOfferings[0].LocationType)
}

func TestProtocolErrors(t *testing.T) {
	cloud, err := Open(Config{})
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	_, endpoint := serve(t, cloud)
	post := func(form url.Values) (int, string) {
		req, err := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(form.Encode()))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", testAuthorization("test"))
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp.StatusCode, string(b)
	}
	status, body := post(url.Values{"Action": {"LaunchRockets"}, "Version": {"2016-11-15"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "<Response><Errors><Error><Code>InvalidAction</Code>")
	assert.Contains(t, body, "<RequestID>")

	status, body = post(url.Values{"Action": {"RunInstances"}, "Version": {"2016-11-15"}, "MinCount": {"1"}, "MaxCount": {"1"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "<Code>MissingParameter</Code>")

	status, body = post(url.Values{"Action": {"RunInstances"}, "InstanceType": {"t3.micro"}, "MinCount": {"one"}, "MaxCount": {"1"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "<Code>InvalidParameterValue</Code>")

	status, body = post(url.Values{"Action": {"TerminateInstances"}, "InstanceId.1": {"bogus"}})
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, body, "<Code>InvalidInstanceID.Malformed</Code>")

	status, body = post(url.Values{"Action": {"DescribeAvailabilityZones"}, "Version": {"2016-11-15"}})
	assert.Equal(t, http.StatusOK, status)
	assert.True(t, strings.HasPrefix(body, `<?xml version="1.0" encoding="UTF-8"?>`+"\n"+
		`<DescribeAvailabilityZonesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>`), body)
}

func TestParseCapacity(t *testing.T) {
	good := map[string]Pool{
		"m5.large=500+10/s":  {InstanceType: "m5.large", Initial: 500, RatePerSec: 10},
		"t3.micro=0":         {InstanceType: "t3.micro"},
		"c5.xlarge=20+0.5/s": {InstanceType: "c5.xlarge", Initial: 20, RatePerSec: 0.5},
		" u-6tb1.metal=1 ":   {InstanceType: "u-6tb1.metal", Initial: 1},
	}
	for in, want := range good {
		got, err := ParseCapacity(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "m5.large", "m5.large=", "m5.large=-1", "m5.large=ten", "=5", "m5=5",
		"M5.Large=5", "m5.large=5+10", "m5.large=5+x/s", "m5.large=5+-1/s", "m5.large=5+10/m"} {
		_, err := ParseCapacity(in)
		require.Error(t, err, in)
		assert.Contains(t, err.Error(), "=COUNT[+RATE/s]", in)
		assert.Equal(t, strings.ToLower(err.Error()[:1]), err.Error()[:1])
	}
}

func TestOpenRejectsBadConfig(t *testing.T) {
	_, err := Open(Config{Pools: []Pool{{InstanceType: "m5.large", Zone: "eu-west-1a", Initial: 1}}})
	assert.ErrorContains(t, err, "zone")
	_, err = Open(Config{Pools: []Pool{{InstanceType: "m5.large", Initial: -1}}})
	assert.Error(t, err)
}

func TestBigLaunchAndDescribeByTag(t *testing.T) {
	if testing.Short() {
		t.Skip("launches 10,000 instances")
	}
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Initial: 20000}}}))

	t0 := time.Now()
	out, err := run(ctx, client, "m5.large", 200, 200, withTags("gust:fleet-id", "big", "chunk", "0"))
	require.NoError(t, err)
	require.Len(t, out.Instances, 200)
	t.Logf("RunInstances of 200: %s (speed is the benchmarks' business, not this test's)", time.Since(t0))

	for i := 1; i < 10; i++ {
		_, err := run(ctx, client, "m5.large", 1000, 1000, withTags("gust:fleet-id", "big", "chunk", fmt.Sprint(i)))
		require.NoError(t, err)
	}
	_, err = run(ctx, client, "m5.large", 800, 800, withTags("gust:fleet-id", "big", "chunk", "last"))
	require.NoError(t, err)
	_, err = run(ctx, client, "m5.large", 500, 500, withTags("gust:fleet-id", "other"))
	require.NoError(t, err)

	t0 = time.Now()
	got := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("gust:fleet-id", "big")}})
	t.Logf("DescribeInstances of 10,000 by tag: %s", time.Since(t0))
	require.Len(t, got, 10000)
	seen := map[string]bool{}
	for _, in := range got {
		seen[aws.ToString(in.InstanceId)] = true
	}
	assert.Len(t, seen, 10000)
}

// TestDescribeCapacityReservationsByStateAndTag: the state and tag
// filters, which the listing applies in SQL, select exactly what EC2's
// would: every tag filter and the state must match, any of a filter's
// values will do, and a tag key is a plain string (dots and quotes are
// not a JSON path).
func TestDescribeCapacityReservationsByStateAndTag(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Initial: 20}}}))
	create := func(tags map[string]string) string {
		var list []types.Tag
		for k, v := range tags {
			list = append(list, types.Tag{Key: aws.String(k), Value: aws.String(v)})
		}
		out, err := client.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{
			InstanceType: aws.String("m5.large"), InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix,
			InstanceCount: aws.Int32(1), EndDateType: types.EndDateTypeUnlimited,
			TagSpecifications: []types.TagSpecification{{ResourceType: types.ResourceTypeCapacityReservation, Tags: list}},
		})
		require.NoError(t, err)
		return aws.ToString(out.CapacityReservation.CapacityReservationId)
	}
	a := create(map[string]string{"gust:reserve": "tok-a", "team": "x"})
	b := create(map[string]string{"gust:reserve": "tok-a", "team": "y"})
	cancelled := create(map[string]string{"gust:reserve": "tok-a", "team": "x"})
	other := create(map[string]string{"gust:reserve": "tok-b", `odd."key`: "v"})
	untagged := create(nil)
	_, err := client.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(cancelled)})
	require.NoError(t, err)

	list := func(filters ...types.Filter) []string {
		out, err := client.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{Filters: filters})
		require.NoError(t, err)
		var ids []string
		for _, cr := range out.CapacityReservations {
			ids = append(ids, aws.ToString(cr.CapacityReservationId))
		}
		return ids
	}
	live := types.Filter{Name: aws.String("state"), Values: []string{"active", "pending"}}
	assert.Equal(t, []string{a, b}, list(tagFilter("gust:reserve", "tok-a"), live))
	assert.Equal(t, []string{a, b, cancelled}, list(tagFilter("gust:reserve", "tok-a")))
	assert.Equal(t, []string{a}, list(tagFilter("gust:reserve", "tok-a"), tagFilter("team", "x"), live))
	assert.Equal(t, []string{a, b, other}, list(types.Filter{Name: aws.String("tag:gust:reserve"), Values: []string{"tok-a", "tok-b"}}, live))
	assert.Equal(t, []string{other}, list(tagFilter(`odd."key`, "v")))
	assert.Empty(t, list(tagFilter("odd", "v")))
	assert.Equal(t, []string{cancelled}, list(types.Filter{Name: aws.String("state"), Values: []string{"cancelled"}}))
	assert.Equal(t, []string{a, b, other, untagged}, list(live))
}
