package ec2

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

type override = types.FleetLaunchTemplateOverridesRequest

func fleetInput(template string, total, onDemand, spot int32, overrides ...override) *awsec2.CreateFleetInput {
	return &awsec2.CreateFleetInput{
		Type: types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{
			LaunchTemplateSpecification: &types.FleetLaunchTemplateSpecificationRequest{LaunchTemplateName: aws.String(template), Version: aws.String("$Latest")},
			Overrides:                   overrides,
		}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(total), OnDemandTargetCapacity: aws.Int32(onDemand), SpotTargetCapacity: aws.Int32(spot),
			DefaultTargetCapacityType: types.DefaultTargetCapacityTypeOnDemand,
		},
	}
}

// launchedByType counts a fleet's instances per type and lifecycle.
func launchedByType(out *awsec2.CreateFleetOutput) map[string]int {
	m := map[string]int{}
	for _, fi := range out.Instances {
		m[string(fi.Lifecycle)+"/"+string(fi.InstanceType)] += len(fi.InstanceIds)
	}
	return m
}

func TestCreateFleetWeightsOrderAndErrors(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{
		{InstanceType: "m5.large", Initial: 3},
		{InstanceType: "c5.xlarge", Initial: 100},
		{Market: MarketSpot, InstanceType: "m5.large", Initial: 100},
	}}))
	createTemplate(t, client, "fleet", &types.RequestLaunchTemplateData{ImageId: aws.String("ami-1")})

	// Lowest price per unit first: c5.xlarge at weight 4 costs 0.0425 a
	// unit, m5.large 0.096; 8 units are two c5.xlarge.
	out, err := client.CreateFleet(ctx, fleetInput("fleet", 8, 8, 0,
		override{InstanceType: "m5.large", WeightedCapacity: aws.Float64(1)},
		override{InstanceType: "c5.xlarge", WeightedCapacity: aws.Float64(4)}))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"on-demand/c5.xlarge": 2}, launchedByType(out))
	assert.Empty(t, out.Errors)

	// Prioritized: m5.large first; it has 3, the rest comes from c5.xlarge
	// (ceil(2/4) = 1), and m5.large's shortfall is reported.
	in := fleetInput("fleet", 5, 5, 0,
		override{InstanceType: "m5.large", Priority: aws.Float64(0)},
		override{InstanceType: "c5.xlarge", Priority: aws.Float64(1), WeightedCapacity: aws.Float64(4)})
	in.OnDemandOptions = &types.OnDemandOptionsRequest{AllocationStrategy: types.FleetOnDemandAllocationStrategyPrioritized}
	out, err = client.CreateFleet(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"on-demand/m5.large": 3, "on-demand/c5.xlarge": 1}, launchedByType(out))
	require.Len(t, out.Errors, 1)
	assert.Equal(t, "InsufficientInstanceCapacity", aws.ToString(out.Errors[0].ErrorCode))
	assert.Equal(t, types.InstanceLifecycleOnDemand, out.Errors[0].Lifecycle)
	assert.Equal(t, types.InstanceTypeM5Large, out.Errors[0].LaunchTemplateAndOverrides.Overrides.InstanceType)

	// Spot and on-demand split, each from its own pools; the fleet's
	// instances carry its id.
	out, err = client.CreateFleet(ctx, fleetInput("fleet", 6, 0, 4, override{InstanceType: "m5.large"}, override{InstanceType: "c5.xlarge"}))
	require.NoError(t, err)
	got := launchedByType(out)
	assert.Equal(t, 4, got["spot/m5.large"])
	assert.Equal(t, 2, got["on-demand/c5.xlarge"])
	insts := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("aws:ec2:fleet-id", aws.ToString(out.FleetId))}})
	assert.Len(t, insts, 6)
	fleets, err := client.DescribeFleets(ctx, &awsec2.DescribeFleetsInput{FleetIds: []string{aws.ToString(out.FleetId)}})
	require.NoError(t, err)
	require.Len(t, fleets.Fleets, 1)
	assert.Equal(t, types.FleetStateCodeActive, fleets.Fleets[0].FleetState)

	// MinTargetCapacity is all or nothing: 10 m5.large on-demand cannot be
	// had (none left), so nothing launches for that market.
	before := free(t, cloud, "c5.xlarge")
	in = fleetInput("fleet", 10, 10, 0, override{InstanceType: "m5.large"})
	in.OnDemandOptions = &types.OnDemandOptionsRequest{MinTargetCapacity: aws.Int32(10), SingleInstanceType: aws.Bool(true)}
	out, err = client.CreateFleet(ctx, in)
	require.NoError(t, err)
	assert.Empty(t, out.Instances)
	assert.NotEmpty(t, out.Errors)
	assert.Equal(t, before, free(t, cloud, "c5.xlarge"))

	_, err = client.CreateFleet(ctx, &awsec2.CreateFleetInput{Type: types.FleetTypeMaintain,
		LaunchTemplateConfigs: in.LaunchTemplateConfigs, TargetCapacitySpecification: in.TargetCapacitySpecification})
	assert.Equal(t, "Unsupported", errorCode(t, err))
}

func TestCreateFleetReservationsFirstAndIdempotency(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{Pools: []Pool{{InstanceType: "m5.large", Zone: "us-east-1a", Initial: 10}}}))
	createTemplate(t, client, "fleet", &types.RequestLaunchTemplateData{ImageId: aws.String("ami-1"), InstanceType: "m5.large"})
	cr, err := client.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{InstanceType: aws.String("m5.large"),
		InstancePlatform: types.CapacityReservationInstancePlatformLinuxUnix, InstanceCount: aws.Int32(2), AvailabilityZone: aws.String("us-east-1a")})
	require.NoError(t, err)

	in := fleetInput("fleet", 3, 3, 0)
	in.OnDemandOptions = &types.OnDemandOptionsRequest{CapacityReservationOptions: &types.CapacityReservationOptionsRequest{
		UsageStrategy: types.FleetCapacityReservationUsageStrategyUseCapacityReservationsFirst}}
	in.ClientToken = aws.String("tok-1")
	out, err := client.CreateFleet(ctx, in)
	require.NoError(t, err)
	insts := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("aws:ec2:fleet-id", aws.ToString(out.FleetId))}})
	require.Len(t, insts, 3)
	inReservation := 0
	for _, i := range insts {
		if aws.ToString(i.CapacityReservationId) == aws.ToString(cr.CapacityReservation.CapacityReservationId) {
			inReservation++
		}
	}
	assert.Equal(t, 2, inReservation, "the open reservation is used first")

	again, err := client.CreateFleet(ctx, in)
	require.NoError(t, err)
	assert.Equal(t, aws.ToString(out.FleetId), aws.ToString(again.FleetId))
	assert.Equal(t, launchedByType(out), launchedByType(again))
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{}), 3, "a replay launches nothing")

	in.TargetCapacitySpecification.TotalTargetCapacity = aws.Int32(4)
	in.TargetCapacitySpecification.OnDemandTargetCapacity = aws.Int32(4)
	_, err = client.CreateFleet(ctx, in)
	assert.Equal(t, "IdempotentParameterMismatch", errorCode(t, err))

	other := clientFor(endpointOf(t, client), "other")
	_, err = other.CreateFleet(ctx, fleetInput("fleet", 1, 1, 0))
	assert.Equal(t, "InvalidLaunchTemplateName.NotFoundException", errorCode(t, err))
}

func TestCreateFleetSpotStrategiesAndDelete(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{
		{Market: MarketSpot, InstanceType: "m5.large", Initial: 100, Price: 0.05},
		{Market: MarketSpot, InstanceType: "c5.xlarge", Initial: 100, Price: 0.04},
		{Market: MarketSpot, InstanceType: "t3.micro", Zone: "us-east-1c", Initial: 100, Price: 0.01},
	}}))
	createTemplate(t, client, "spot", &types.RequestLaunchTemplateData{ImageId: aws.String("ami-1")})
	spotFleet := func(strategy types.SpotAllocationStrategy, total int32, overrides ...override) *awsec2.CreateFleetInput {
		in := fleetInput("spot", total, 0, total, overrides...)
		in.SpotOptions = &types.SpotOptionsRequest{AllocationStrategy: strategy}
		return in
	}

	// Diversified spreads the target over every candidate.
	out, err := client.CreateFleet(ctx, spotFleet(types.SpotAllocationStrategyDiversified, 6,
		override{InstanceType: "m5.large"}, override{InstanceType: "c5.xlarge"}, override{InstanceType: "t3.micro"}))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"spot/m5.large": 2, "spot/c5.xlarge": 2, "spot/t3.micro": 2}, launchedByType(out))

	// Priority first; a max price under every pool's price is
	// SpotMaxPriceTooLow in errorSet and the next candidate fills.
	out, err = client.CreateFleet(ctx, spotFleet(types.SpotAllocationStrategyCapacityOptimizedPrioritized, 3,
		override{InstanceType: "m5.large", MaxPrice: aws.String("0.001"), Priority: aws.Float64(0)},
		override{InstanceType: "t3.micro", Priority: aws.Float64(2)},
		override{InstanceType: "c5.xlarge", Priority: aws.Float64(1)}))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"spot/c5.xlarge": 3}, launchedByType(out))
	require.Len(t, out.Errors, 1)
	assert.Equal(t, "SpotMaxPriceTooLow", aws.ToString(out.Errors[0].ErrorCode))

	// Capacity-optimized prefers the pool with the most free capacity.
	out, err = client.CreateFleet(ctx, spotFleet(types.SpotAllocationStrategyCapacityOptimized, 2,
		override{InstanceType: "m5.large"}, override{InstanceType: "c5.xlarge"}))
	require.NoError(t, err)
	assert.Equal(t, map[string]int{"spot/m5.large": 2}, launchedByType(out), "m5.large has 98 free, c5.xlarge 95")

	// SingleAvailabilityZone keeps the whole market in one zone.
	in := spotFleet(types.SpotAllocationStrategyLowestPrice, 4, override{InstanceType: "t3.micro"}, override{InstanceType: "c5.xlarge"})
	in.SpotOptions.SingleAvailabilityZone = aws.Bool(true)
	out, err = client.CreateFleet(ctx, in)
	require.NoError(t, err)
	zones := map[string]bool{}
	for _, i := range describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{tagFilter("aws:ec2:fleet-id", aws.ToString(out.FleetId))}}) {
		zones[aws.ToString(i.Placement.AvailabilityZone)] = true
	}
	assert.Len(t, zones, 1)

	before, err := cloud.MarketFree(ctx, MarketSpot, "t3.micro")
	require.NoError(t, err)
	del, err := client.DeleteFleets(ctx, &awsec2.DeleteFleetsInput{FleetIds: []string{aws.ToString(out.FleetId), "fleet-00000000000000000"}, TerminateInstances: aws.Bool(true)})
	require.NoError(t, err)
	require.Len(t, del.SuccessfulFleetDeletions, 1)
	require.Len(t, del.UnsuccessfulFleetDeletions, 1)
	after, err := cloud.MarketFree(ctx, MarketSpot, "t3.micro")
	require.NoError(t, err)
	assert.Equal(t, before+4, after, "the fleet's instances were terminated and their capacity returned")
}
