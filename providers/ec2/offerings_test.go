package ec2

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/providers"
)

func TestDescribeOfferings(t *testing.T) {
	now := time.Now()
	price := func(typ, zone, p string, age time.Duration) types.SpotPrice {
		return types.SpotPrice{InstanceType: types.InstanceType(typ), AvailabilityZone: aws.String(zone), SpotPrice: aws.String(p), Timestamp: aws.Time(now.Add(-age))}
	}
	api := &fakeAPI{t: t}
	api.spot = func(in *awsec2.DescribeSpotPriceHistoryInput) (*awsec2.DescribeSpotPriceHistoryOutput, error) {
		if in.NextToken == nil {
			return &awsec2.DescribeSpotPriceHistoryOutput{NextToken: aws.String("2"), SpotPriceHistory: []types.SpotPrice{
				price("m5.large", "us-east-1a", "0.040", time.Hour), // older, superseded below
				price("m5.large", "us-east-1b", "0.030", time.Minute),
			}}, nil
		}
		return &awsec2.DescribeSpotPriceHistoryOutput{SpotPriceHistory: []types.SpotPrice{
			price("m5.large", "us-east-1a", "0.035", time.Minute),
			price("m5.large", "us-east-1a", "0.050", 2*time.Hour),
		}}, nil
	}
	api.scores = func(in *awsec2.GetSpotPlacementScoresInput) (*awsec2.GetSpotPlacementScoresOutput, error) {
		return &awsec2.GetSpotPlacementScoresOutput{SpotPlacementScores: []types.SpotPlacementScore{
			{AvailabilityZoneId: aws.String("use1-az1"), Region: aws.String("us-east-1"), Score: aws.Int32(3)},
			{AvailabilityZoneId: aws.String("use1-az2"), Region: aws.String("us-east-1"), Score: aws.Int32(8)},
		}}, nil
	}
	api.azs = func(*awsec2.DescribeAvailabilityZonesInput) (*awsec2.DescribeAvailabilityZonesOutput, error) {
		return &awsec2.DescribeAvailabilityZonesOutput{AvailabilityZones: []types.AvailabilityZone{
			{ZoneId: aws.String("use1-az1"), ZoneName: aws.String("us-east-1a")},
			{ZoneId: aws.String("use1-az2"), ZoneName: aws.String("us-east-1b")},
		}}, nil
	}
	p := New(api)
	p.region = "us-east-1"
	got, err := p.DescribeOfferings(context.Background(), []providers.Offering{
		{InstanceType: "m5.large", Zone: "us-east-1a", Market: providers.MarketSpot},
		{InstanceType: "m5.large", Market: providers.MarketSpot},
		{InstanceType: "m5.large", Zone: "us-east-1a", Market: providers.MarketOnDemand},
		{InstanceType: "x9.odd", Market: providers.MarketOnDemand},
	})
	require.NoError(t, err)
	type pv struct {
		price float64
		score int
	}
	var views []pv
	for _, o := range got {
		views = append(views, pv{o.Price, o.Score})
	}
	assert.Equal(t, []pv{{0.035, 3}, {0.030, 8}, {0.096, 0}, {0, 0}}, views,
		"latest spot price per zone, the lowest and best for any zone, the table's on-demand price, 0 for unknown")
	assert.Equal(t, "us-east-1a", got[0].Zone)

	sp := api.inputs[0].(*awsec2.DescribeSpotPriceHistoryInput)
	assert.Equal(t, []string{"Linux/UNIX"}, sp.ProductDescriptions)
	assert.Equal(t, []types.InstanceType{"m5.large"}, sp.InstanceTypes)
	var sc *awsec2.GetSpotPlacementScoresInput
	for _, in := range api.inputs {
		if s, ok := in.(*awsec2.GetSpotPlacementScoresInput); ok {
			sc = s
		}
	}
	require.NotNil(t, sc)
	assert.True(t, aws.ToBool(sc.SingleAvailabilityZone))
	assert.Equal(t, int32(1), aws.ToInt32(sc.TargetCapacity))
	assert.Equal(t, []string{"us-east-1"}, sc.RegionNames)
	assert.Equal(t, []string{"m5.large"}, sc.InstanceTypes)
}

func TestDescribeOfferingsWithoutSpotCalls(t *testing.T) {
	for _, code := range []string{"UnsupportedOperation", "InvalidAction"} {
		api := &fakeAPI{t: t}
		api.spot = func(*awsec2.DescribeSpotPriceHistoryInput) (*awsec2.DescribeSpotPriceHistoryOutput, error) {
			return nil, apiErr(code)
		}
		api.scores = func(*awsec2.GetSpotPlacementScoresInput) (*awsec2.GetSpotPlacementScoresOutput, error) {
			return nil, apiErr(code)
		}
		got, err := New(api).DescribeOfferings(context.Background(), []providers.Offering{{InstanceType: "m5.large", Market: providers.MarketSpot}})
		require.NoError(t, err, code)
		assert.Zero(t, got[0].Price)
		assert.Zero(t, got[0].Score)
	}
	// On-demand only: no call at all.
	api := &fakeAPI{t: t}
	_, err := New(api).DescribeOfferings(context.Background(), []providers.Offering{{InstanceType: "m5.large", Market: providers.MarketOnDemand}})
	require.NoError(t, err)
	assert.Empty(t, api.inputs)

	api.spot = func(*awsec2.DescribeSpotPriceHistoryInput) (*awsec2.DescribeSpotPriceHistoryOutput, error) {
		return nil, apiErr("RequestLimitExceeded")
	}
	_, err = New(api).DescribeOfferings(context.Background(), []providers.Offering{{InstanceType: "m5.large", Market: providers.MarketSpot}})
	assert.True(t, providers.IsThrottled(err), "a cloud that cannot be asked now is an error: %v", err)
}

func TestSubnets(t *testing.T) {
	api := &fakeAPI{t: t, subnets: func(in *awsec2.DescribeSubnetsInput) (*awsec2.DescribeSubnetsOutput, error) {
		var out awsec2.DescribeSubnetsOutput
		for _, id := range in.SubnetIds {
			switch id {
			case "subnet-a":
				out.Subnets = append(out.Subnets, types.Subnet{SubnetId: aws.String(id), AvailabilityZone: aws.String("us-east-1a")})
			case "subnet-b":
				out.Subnets = append(out.Subnets, types.Subnet{SubnetId: aws.String(id), AvailabilityZone: aws.String("us-east-1b")})
			case "subnet-gone":
				return nil, apiErr("InvalidSubnetID.NotFound")
			}
		}
		return &out, nil
	}}
	got, err := New(api).Subnets(context.Background(), []string{"subnet-b", "subnet-a", "subnet-b"})
	require.NoError(t, err)
	assert.Equal(t, []providers.Subnet{{ID: "subnet-b", Zone: "us-east-1b"}, {ID: "subnet-a", Zone: "us-east-1a"}, {ID: "subnet-b", Zone: "us-east-1b"}}, got, "in order")
	assert.Equal(t, []string{"subnet-b", "subnet-a"}, api.inputs[0].(*awsec2.DescribeSubnetsInput).SubnetIds)
	_, err = New(api).Subnets(context.Background(), []string{"subnet-a", "subnet-gone"})
	assert.True(t, providers.IsNotFound(err), "%v", err)
	_, err = New(api).Subnets(context.Background(), []string{"subnet-a", "subnet-silent"})
	assert.True(t, providers.IsNotFound(err), "a subnet missing from the answer: %v", err)
}
