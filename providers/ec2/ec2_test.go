package ec2

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	localec2 "github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/tenants"
)

// fakeAPI is an EC2API whose methods tests set as needed; unset ones fail
// the test. It records every input.
type fakeAPI struct {
	t        *testing.T
	run      func(*awsec2.RunInstancesInput) (*awsec2.RunInstancesOutput, error)
	describe func(*awsec2.DescribeInstancesInput) (*awsec2.DescribeInstancesOutput, error)
	term     func(*awsec2.TerminateInstancesInput) (*awsec2.TerminateInstancesOutput, error)
	create   func(*awsec2.CreateCapacityReservationInput) (*awsec2.CreateCapacityReservationOutput, error)
	descCR   func(*awsec2.DescribeCapacityReservationsInput) (*awsec2.DescribeCapacityReservationsOutput, error)
	cancel   func(*awsec2.CancelCapacityReservationInput) (*awsec2.CancelCapacityReservationOutput, error)
	offers   func(*awsec2.DescribeInstanceTypeOfferingsInput) (*awsec2.DescribeInstanceTypeOfferingsOutput, error)
	fleet    func(*awsec2.CreateFleetInput) (*awsec2.CreateFleetOutput, error)
	spot     func(*awsec2.DescribeSpotPriceHistoryInput) (*awsec2.DescribeSpotPriceHistoryOutput, error)
	scores   func(*awsec2.GetSpotPlacementScoresInput) (*awsec2.GetSpotPlacementScoresOutput, error)
	azs      func(*awsec2.DescribeAvailabilityZonesInput) (*awsec2.DescribeAvailabilityZonesOutput, error)
	subnets  func(*awsec2.DescribeSubnetsInput) (*awsec2.DescribeSubnetsOutput, error)
	inputs   []any
}

var _ EC2API = (*fakeAPI)(nil)

func call[I, O any](f *fakeAPI, fn func(I) (O, error), in I) (O, error) {
	f.inputs = append(f.inputs, in)
	if fn == nil {
		f.t.Fatalf("unexpected call with %T", in)
	}
	return fn(in)
}

func (f *fakeAPI) RunInstances(_ context.Context, in *awsec2.RunInstancesInput, _ ...func(*awsec2.Options)) (*awsec2.RunInstancesOutput, error) {
	return call(f, f.run, in)
}

func (f *fakeAPI) DescribeInstances(_ context.Context, in *awsec2.DescribeInstancesInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeInstancesOutput, error) {
	return call(f, f.describe, in)
}

func (f *fakeAPI) TerminateInstances(_ context.Context, in *awsec2.TerminateInstancesInput, _ ...func(*awsec2.Options)) (*awsec2.TerminateInstancesOutput, error) {
	return call(f, f.term, in)
}

func (f *fakeAPI) CreateCapacityReservation(_ context.Context, in *awsec2.CreateCapacityReservationInput, _ ...func(*awsec2.Options)) (*awsec2.CreateCapacityReservationOutput, error) {
	return call(f, f.create, in)
}

func (f *fakeAPI) DescribeCapacityReservations(_ context.Context, in *awsec2.DescribeCapacityReservationsInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeCapacityReservationsOutput, error) {
	return call(f, f.descCR, in)
}

func (f *fakeAPI) CancelCapacityReservation(_ context.Context, in *awsec2.CancelCapacityReservationInput, _ ...func(*awsec2.Options)) (*awsec2.CancelCapacityReservationOutput, error) {
	return call(f, f.cancel, in)
}

func (f *fakeAPI) DescribeInstanceTypeOfferings(_ context.Context, in *awsec2.DescribeInstanceTypeOfferingsInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeInstanceTypeOfferingsOutput, error) {
	return call(f, f.offers, in)
}

func (f *fakeAPI) CreateFleet(_ context.Context, in *awsec2.CreateFleetInput, _ ...func(*awsec2.Options)) (*awsec2.CreateFleetOutput, error) {
	return call(f, f.fleet, in)
}

func (f *fakeAPI) DescribeSpotPriceHistory(_ context.Context, in *awsec2.DescribeSpotPriceHistoryInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeSpotPriceHistoryOutput, error) {
	return call(f, f.spot, in)
}

func (f *fakeAPI) GetSpotPlacementScores(_ context.Context, in *awsec2.GetSpotPlacementScoresInput, _ ...func(*awsec2.Options)) (*awsec2.GetSpotPlacementScoresOutput, error) {
	return call(f, f.scores, in)
}

func (f *fakeAPI) DescribeAvailabilityZones(_ context.Context, in *awsec2.DescribeAvailabilityZonesInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeAvailabilityZonesOutput, error) {
	return call(f, f.azs, in)
}

func (f *fakeAPI) DescribeSubnets(_ context.Context, in *awsec2.DescribeSubnetsInput, _ ...func(*awsec2.Options)) (*awsec2.DescribeSubnetsOutput, error) {
	return call(f, f.subnets, in)
}

func apiErr(code string) error {
	return &smithy.GenericAPIError{Code: code, Message: "test " + code}
}

func TestErrorTranslation(t *testing.T) {
	cases := []struct {
		code string
		is   func(error) bool
	}{
		{"InsufficientInstanceCapacity", providers.IsInsufficientCapacity},
		{"InsufficientCapacityOnHost", providers.IsInsufficientCapacity},
		{"ReservationCapacityExceeded", providers.IsInsufficientCapacity},
		{"RequestLimitExceeded", providers.IsThrottled},
		{"Throttling", providers.IsThrottled},
		{"InvalidInstanceID.NotFound", providers.IsNotFound},
		{"InvalidCapacityReservationId.NotFound", providers.IsNotFound},
		{"InvalidParameterValue", providers.IsInvalid},
		{"InvalidParameterCombination", providers.IsInvalid},
		{"MissingParameter", providers.IsInvalid},
		{"Unsupported", providers.IsInvalid},
		{"InvalidInstanceID.Malformed", providers.IsInvalid},
		{"IdempotentParameterMismatch", providers.IsIdempotencyMismatch},
	}
	all := []func(error) bool{providers.IsInsufficientCapacity, providers.IsThrottled, providers.IsNotFound,
		providers.IsInvalid, providers.IsIdempotencyMismatch}
	for _, c := range cases {
		t.Run(c.code, func(t *testing.T) {
			api := &fakeAPI{t: t, run: func(*awsec2.RunInstancesInput) (*awsec2.RunInstancesOutput, error) { return nil, apiErr(c.code) }}
			_, err := New(api).Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
			require.Error(t, err)
			assert.True(t, c.is(err))
			matches := 0
			for _, is := range all {
				if is(err) {
					matches++
				}
			}
			assert.Equal(t, 1, matches, "exactly one typed error")
			assert.True(t, strings.HasPrefix(err.Error(), "running instances, "), err.Error())
			var ae smithy.APIError
			require.ErrorAs(t, err, &ae, "the EC2 error stays reachable")
			assert.Equal(t, c.code, ae.ErrorCode())
		})
	}

	// Errors without an EC2 code pass through untyped.
	api := &fakeAPI{t: t, term: func(*awsec2.TerminateInstancesInput) (*awsec2.TerminateInstancesOutput, error) {
		return nil, fmt.Errorf("dial, %w", context.DeadlineExceeded)
	}}
	err := New(api).Terminate(context.Background(), []string{"i-1"})
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	for _, is := range all {
		assert.False(t, is(err))
	}
	api.term = func(*awsec2.TerminateInstancesInput) (*awsec2.TerminateInstancesOutput, error) {
		return nil, apiErr("AuthFailure")
	}
	err = New(api).Terminate(context.Background(), []string{"i-1"})
	for _, is := range all {
		assert.False(t, is(err), "unknown codes stay untyped")
	}
}

func TestRunBuildsTheRequest(t *testing.T) {
	launched := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	api := &fakeAPI{t: t, run: func(in *awsec2.RunInstancesInput) (*awsec2.RunInstancesOutput, error) {
		return &awsec2.RunInstancesOutput{Instances: []types.Instance{{
			InstanceId: aws.String("i-1"), InstanceType: in.InstanceType, LaunchTime: aws.Time(launched),
			Placement: &types.Placement{AvailabilityZone: aws.String("us-east-1b")},
			State:     &types.InstanceState{Name: types.InstanceStateNamePending},
			Tags:      []types.Tag{{Key: aws.String(providers.FleetTagKey), Value: aws.String("f1")}},
		}}}, nil
	}}
	got, err := New(api).Run(context.Background(), providers.RunInput{
		InstanceType: "m5.large", ImageID: "ami-1", Zone: "us-east-1b", MinCount: 2, MaxCount: 5,
		ClientToken: "f1/run/0", ReservationID: "cr-1", Tags: map[string]string{"z": "1", providers.FleetTagKey: "f1", "a": "2"},
	})
	require.NoError(t, err)
	assert.Equal(t, []providers.Instance{{ID: "i-1", InstanceType: "m5.large", Zone: "us-east-1b", State: "pending",
		Tags: map[string]string{providers.FleetTagKey: "f1"}, LaunchTime: launched, Market: providers.MarketOnDemand}}, got)

	in := api.inputs[0].(*awsec2.RunInstancesInput)
	assert.Equal(t, int32(2), aws.ToInt32(in.MinCount))
	assert.Equal(t, int32(5), aws.ToInt32(in.MaxCount))
	assert.Equal(t, "f1/run/0", aws.ToString(in.ClientToken))
	assert.Equal(t, "ami-1", aws.ToString(in.ImageId))
	assert.Equal(t, "us-east-1b", aws.ToString(in.Placement.AvailabilityZone))
	assert.Equal(t, "cr-1", aws.ToString(in.CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId))
	require.Len(t, in.TagSpecifications, 1)
	assert.Equal(t, types.ResourceTypeInstance, in.TagSpecifications[0].ResourceType)
	var keys []string
	for _, tg := range in.TagSpecifications[0].Tags {
		keys = append(keys, aws.ToString(tg.Key))
	}
	assert.Equal(t, []string{"a", providers.FleetTagKey, "z"}, keys, "sorted, so retries send identical parameters")

	_, err = New(api).Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 3, MaxCount: 2})
	assert.True(t, providers.IsInvalid(err))
	assert.Len(t, api.inputs, 1, "invalid input never reaches EC2")
}

func TestDescribeFollowsPaginationAndChunksIDs(t *testing.T) {
	api := &fakeAPI{t: t}
	api.describe = func(in *awsec2.DescribeInstancesInput) (*awsec2.DescribeInstancesOutput, error) {
		var ids []string
		for _, f := range in.Filters {
			if aws.ToString(f.Name) == "instance-id" {
				ids = f.Values
			}
		}
		// Serve each id, two per page.
		start := 0
		if in.NextToken != nil {
			fmt.Sscan(aws.ToString(in.NextToken), &start)
		}
		out := &awsec2.DescribeInstancesOutput{}
		end := min(start+2, len(ids))
		var r types.Reservation
		for _, id := range ids[start:end] {
			r.Instances = append(r.Instances, types.Instance{InstanceId: aws.String(id)})
		}
		out.Reservations = []types.Reservation{r}
		if end < len(ids) {
			out.NextToken = aws.String(fmt.Sprint(end))
		}
		return out, nil
	}
	var ids []string
	for i := range 205 {
		ids = append(ids, fmt.Sprintf("i-%017d", i))
	}
	got, err := New(api).Describe(context.Background(), providers.InstanceFilter{
		IDs: ids, Tags: map[string]string{providers.FleetTagKey: "f"}, States: []string{"running"},
	})
	require.NoError(t, err)
	require.Len(t, got, 205)
	for i, in := range got {
		assert.Equal(t, ids[i], in.ID)
	}
	assert.Len(t, api.inputs, 100+3, "200 ids in 100 pages, then 5 ids in 3")
	first := api.inputs[0].(*awsec2.DescribeInstancesInput)
	names := []string{}
	for _, f := range first.Filters {
		names = append(names, aws.ToString(f.Name))
	}
	assert.Equal(t, []string{"tag:" + providers.FleetTagKey, "instance-state-name", "instance-id"}, names)
	assert.Len(t, first.Filters[2].Values, 200)
}

func TestTerminateBatches(t *testing.T) {
	api := &fakeAPI{t: t, term: func(*awsec2.TerminateInstancesInput) (*awsec2.TerminateInstancesOutput, error) {
		return &awsec2.TerminateInstancesOutput{}, nil
	}}
	ids := make([]string, 2500)
	for i := range ids {
		ids[i] = fmt.Sprintf("i-%d", i)
	}
	require.NoError(t, New(api).Terminate(context.Background(), ids))
	require.Len(t, api.inputs, 3)
	assert.Len(t, api.inputs[2].(*awsec2.TerminateInstancesInput).InstanceIds, 500)
	require.NoError(t, New(api).Terminate(context.Background(), nil))
	assert.Len(t, api.inputs, 3)
}

func TestReserveTriesZonesWithPerZoneTokens(t *testing.T) {
	api := &fakeAPI{t: t}
	api.descCR = func(*awsec2.DescribeCapacityReservationsInput) (*awsec2.DescribeCapacityReservationsOutput, error) {
		return &awsec2.DescribeCapacityReservationsOutput{}, nil
	}
	api.create = func(in *awsec2.CreateCapacityReservationInput) (*awsec2.CreateCapacityReservationOutput, error) {
		if aws.ToString(in.AvailabilityZone) != "us-east-1c" {
			return nil, apiErr("InsufficientInstanceCapacity")
		}
		return &awsec2.CreateCapacityReservationOutput{CapacityReservation: &types.CapacityReservation{
			CapacityReservationId: aws.String("cr-1"), InstanceType: in.InstanceType, AvailabilityZone: in.AvailabilityZone,
			TotalInstanceCount: in.InstanceCount, AvailableInstanceCount: in.InstanceCount, State: types.CapacityReservationStateActive,
		}}, nil
	}
	p := New(api)
	r, err := p.Reserve(context.Background(), providers.ReserveInput{
		InstanceType: "m5.large", Zones: []string{"us-east-1a", "us-east-1c"}, Count: 200, ClientToken: "fleet-1/reserve",
	})
	require.NoError(t, err)
	assert.Equal(t, providers.Reservation{ID: "cr-1", InstanceType: "m5.large", Zone: "us-east-1c", Count: 200, Available: 200, State: "active"}, r)
	require.Len(t, api.inputs, 3)
	a, c := api.inputs[1].(*awsec2.CreateCapacityReservationInput), api.inputs[2].(*awsec2.CreateCapacityReservationInput)
	assert.NotEqual(t, aws.ToString(a.ClientToken), aws.ToString(c.ClientToken))
	assert.Equal(t, types.InstanceMatchCriteriaTargeted, c.InstanceMatchCriteria)
	assert.Equal(t, ReserveTokenTagKey, aws.ToString(c.TagSpecifications[0].Tags[0].Key))

	// A retry finds the reservation by its token tag and creates nothing.
	api.descCR = func(*awsec2.DescribeCapacityReservationsInput) (*awsec2.DescribeCapacityReservationsOutput, error) {
		return &awsec2.DescribeCapacityReservationsOutput{CapacityReservations: []types.CapacityReservation{{
			CapacityReservationId: aws.String("cr-1"), AvailabilityZone: aws.String("us-east-1c")}}}, nil
	}
	r, err = p.Reserve(context.Background(), providers.ReserveInput{
		InstanceType: "m5.large", Zones: []string{"us-east-1a", "us-east-1c"}, Count: 200, ClientToken: "fleet-1/reserve",
	})
	require.NoError(t, err)
	assert.Equal(t, "cr-1", r.ID)
	assert.Len(t, api.inputs, 4)

	// No zone can hold it.
	api.descCR = func(*awsec2.DescribeCapacityReservationsInput) (*awsec2.DescribeCapacityReservationsOutput, error) {
		return &awsec2.DescribeCapacityReservationsOutput{}, nil
	}
	_, err = p.Reserve(context.Background(), providers.ReserveInput{InstanceType: "m5.large", Zones: []string{"us-east-1a", "us-east-1b"}, Count: 9})
	assert.True(t, providers.IsInsufficientCapacity(err))
	assert.Contains(t, err.Error(), "reserving 9 m5.large in us-east-1a, us-east-1b")

	assert.Equal(t, 64, len(zoneToken(strings.Repeat("x", 64), "us-east-1a")))
}

// localCloud serves the local cloud's EC2 service and counts the HTTP
// requests it gets. Every request acts in the default tenant's account, as
// if the local cloud's server had verified it: the provider's EC2 code is
// under test here; signing and accounts are in accounts_test.go, against
// the whole local cloud.
func localCloud(t *testing.T, cfg localec2.Config) (string, *localec2.Cloud, *atomic.Int64) {
	t.Helper()
	// Keep the developer's AWS configuration out of the test.
	dir := t.TempDir()
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_REGION", "AWS_DEFAULT_REGION"} {
		t.Setenv(k, "")
	}
	cloud, err := localec2.Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		cloud.ServeHTTP(w, r.WithContext(tenants.WithPrincipal(r.Context(), tenants.Principal{Tenant: providers.DefaultTenant})))
	}))
	t.Cleanup(srv.Close)
	return srv.URL, cloud, &n
}

func TestEndToEndAgainstLocalCloud(t *testing.T) {
	ctx := context.Background()
	endpoint, cloud, _ := localCloud(t, localec2.Config{
		Pools:          []localec2.Pool{{InstanceType: "m5.large", Initial: 10}, {InstanceType: "t3.micro", Initial: 3}},
		RequestBucket:  -1,
		DescribeBucket: -1,
	})
	p, err := NewFromConfig(ctx, Options{Endpoint: endpoint, DefaultImageID: LocalCloudImageID})
	require.NoError(t, err)

	typesOffered, err := p.InstanceTypes(ctx)
	require.NoError(t, err)
	assert.Equal(t, []string{"m5.large", "t3.micro"}, typesOffered)

	_, err = p.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 11})
	assert.True(t, providers.IsInsufficientCapacity(err), "%v", err)
	r, err := p.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 6, ClientToken: "f/reserve", Tags: map[string]string{providers.FleetTagKey: "f"}})
	require.NoError(t, err)
	assert.Equal(t, 6, r.Available)
	again, err := p.Reserve(ctx, providers.ReserveInput{InstanceType: "m5.large", Count: 6, ClientToken: "f/reserve", Tags: map[string]string{providers.FleetTagKey: "f"}})
	require.NoError(t, err)
	assert.Equal(t, r.ID, again.ID, "a retried Reserve does not reserve twice")
	free, err := cloud.Free(ctx, "m5.large")
	require.NoError(t, err)
	assert.Equal(t, 4, free)

	tags := map[string]string{providers.FleetTagKey: "f"}
	burst, err := p.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 6, MaxCount: 6, ReservationID: r.ID, ClientToken: "f/burst/0", Tags: tags})
	require.NoError(t, err)
	assert.Len(t, burst, 6)
	replay, err := p.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 6, MaxCount: 6, ReservationID: r.ID, ClientToken: "f/burst/0", Tags: tags})
	require.NoError(t, err)
	assert.Equal(t, ids(burst), ids(replay))
	_, err = p.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 5, MaxCount: 6, ReservationID: r.ID, ClientToken: "f/burst/0", Tags: tags})
	assert.True(t, providers.IsIdempotencyMismatch(err), "%v", err)

	fill, err := p.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 100, Tags: tags})
	require.NoError(t, err)
	assert.Len(t, fill, 4, "the fill takes what is left")
	_, err = p.Run(ctx, providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsInsufficientCapacity(err), "%v", err)
	_, err = p.Run(ctx, providers.RunInput{InstanceType: "x1.nope", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsInvalid(err), "%v", err)

	got, err := p.Describe(ctx, providers.InstanceFilter{Tags: tags})
	require.NoError(t, err)
	assert.Len(t, got, 10)
	for _, in := range got {
		assert.Equal(t, "f", in.Tags[providers.FleetTagKey])
		assert.Equal(t, providers.StateRunning, in.State)
		assert.NotEmpty(t, in.Zone)
	}

	require.NoError(t, p.Terminate(ctx, ids(fill)))
	require.NoError(t, p.Terminate(ctx, ids(fill)), "terminating again is not an error")
	err = p.Terminate(ctx, []string{"i-0123456789abcdef0"})
	assert.True(t, providers.IsNotFound(err), "%v", err)
	running, err := p.Describe(ctx, providers.InstanceFilter{Tags: tags, States: []string{providers.StateRunning}})
	require.NoError(t, err)
	assert.Len(t, running, 6)
	some, err := p.Describe(ctx, providers.InstanceFilter{IDs: append(ids(fill)[:2], "i-0123456789abcdef0")})
	require.NoError(t, err)
	assert.Len(t, some, 2, "unknown ids are absent, not an error")

	listed, err := p.ListReservations(ctx, map[string]string{providers.FleetTagKey: "f"})
	require.NoError(t, err)
	require.Len(t, listed, 1)
	assert.Equal(t, r.ID, listed[0].ID)
	listed, err = p.ListReservations(ctx, map[string]string{providers.FleetTagKey: "g"})
	require.NoError(t, err)
	assert.Empty(t, listed, "another fleet's tag")
	_, err = p.ListReservations(ctx, nil)
	assert.True(t, providers.IsInvalid(err), "%v", err)

	require.NoError(t, p.CancelReservation(ctx, r.ID))
	listed, err = p.ListReservations(ctx, map[string]string{providers.FleetTagKey: "f"})
	require.NoError(t, err)
	assert.Empty(t, listed, "a cancelled reservation is not listed")
	err = p.CancelReservation(ctx, "cr-0123456789abcdef0")
	assert.True(t, providers.IsNotFound(err), "%v", err)
}

func TestThrottlingSurfacesWithoutSDKRetries(t *testing.T) {
	ctx := context.Background()
	endpoint, _, requests := localCloud(t, localec2.Config{RequestBucket: 1, RequestRefill: 0.001,
		Pools: []localec2.Pool{{InstanceType: "t3.micro", Initial: 3}}})
	p, err := NewFromConfig(ctx, Options{Endpoint: endpoint, Region: "eu-west-1", DefaultImageID: LocalCloudImageID})
	require.NoError(t, err)

	_, err = p.Run(ctx, providers.RunInput{InstanceType: "t3.micro", MinCount: 1, MaxCount: 1})
	require.NoError(t, err)
	before := requests.Load()
	_, err = p.Run(ctx, providers.RunInput{InstanceType: "t3.micro", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsThrottled(err), "%v", err)
	assert.Equal(t, before+1, requests.Load(), "the SDK must not retry a throttled call")

	// InsufficientInstanceCapacity comes back as a 500, which the SDK's
	// default retryer would retry.
	before = requests.Load()
	_, err = p.Reserve(ctx, providers.ReserveInput{InstanceType: "t3.micro", Zones: []string{"us-east-1a"}, Count: 5})
	assert.True(t, providers.IsInsufficientCapacity(err), "%v", err)
	assert.Equal(t, before+1, requests.Load(), "the SDK must not retry a capacity error")
}

func TestNewFromConfigUsesEnvironmentCredentials(t *testing.T) {
	ctx := context.Background()
	endpoint, _, _ := localCloud(t, localec2.Config{})
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "secret")
	t.Setenv("AWS_REGION", "us-west-2")
	p, err := NewFromConfig(ctx, Options{Endpoint: endpoint, DefaultImageID: LocalCloudImageID})
	require.NoError(t, err)
	client := p.api.(*awsec2.Client)
	assert.Equal(t, "us-west-2", client.Options().Region)
	creds, err := client.Options().Credentials.Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, "AKIDEXAMPLE", creds.AccessKeyID)

	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
	t.Setenv("AWS_REGION", "")
	p, err = NewFromConfig(ctx, Options{Endpoint: endpoint})
	require.NoError(t, err)
	client = p.api.(*awsec2.Client)
	assert.Equal(t, "us-east-1", client.Options().Region)
	creds, err = client.Options().Credentials.Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, "test", creds.AccessKeyID)
}

func ids(list []providers.Instance) []string {
	var out []string
	for _, in := range list {
		out = append(out, in.ID)
	}
	return out
}

// TestRunUsesTheDefaultImage: a Run that names no image launches the
// provider's default (the local cloud's, for workers that talk to it); with
// no default it sends no ImageId, and EC2's MissingParameter comes back as
// an InvalidError, which no retry fixes.
func TestRunUsesTheDefaultImage(t *testing.T) {
	api := &fakeAPI{t: t, run: func(in *awsec2.RunInstancesInput) (*awsec2.RunInstancesOutput, error) {
		if in.ImageId == nil {
			return nil, &smithy.GenericAPIError{Code: "MissingParameter", Message: "The request must contain the parameter ImageId"}
		}
		return &awsec2.RunInstancesOutput{Instances: []types.Instance{{InstanceId: aws.String("i-1"), InstanceType: in.InstanceType,
			State: &types.InstanceState{Name: types.InstanceStateNamePending}}}}, nil
	}}
	p := New(api)
	p.defaultImage = LocalCloudImageID
	_, err := p.Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	require.NoError(t, err)
	assert.Equal(t, LocalCloudImageID, aws.ToString(api.inputs[0].(*awsec2.RunInstancesInput).ImageId))
	_, err = p.Run(context.Background(), providers.RunInput{InstanceType: "m5.large", ImageID: "ami-mine", MinCount: 1, MaxCount: 1})
	require.NoError(t, err)
	assert.Equal(t, "ami-mine", aws.ToString(api.inputs[1].(*awsec2.RunInstancesInput).ImageId), "a fleet's own image wins")

	_, err = New(api).Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	assert.True(t, providers.IsInvalid(err), "no image anywhere: %v", err)
}
