package ec2

import (
	"context"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/providers"
)

func fleetInput() providers.FleetLaunchInput {
	return providers.FleetLaunchInput{
		Overrides: []providers.FleetLaunchOverride{
			{InstanceType: "m5.large", Zone: "us-east-1a", SubnetID: "subnet-a", Weight: 1, Priority: 0},
			{InstanceType: "m5.large", Zone: "us-east-1b", SubnetID: "subnet-b", Weight: 1, Priority: 1},
			{InstanceType: "m5.xlarge", Zone: "us-east-1a", SubnetID: "subnet-a", Weight: 2, Priority: 2},
		},
		TotalUnits: 6, Market: providers.MarketSpot, Strategy: "capacity-optimized-prioritized", ClientToken: "f1-fill-3",
		Tags:   map[string]string{providers.FleetTagKey: "f1"},
		Params: providers.LaunchParams{KeyName: "k", UserData: []byte("hi"), LaunchTemplate: providers.LaunchTemplateRef{ID: "lt-1"}},
	}
}

func TestLaunchFleetBuildsTheRequestAndMapsTheAnswer(t *testing.T) {
	api := &fakeAPI{t: t, fleet: func(in *awsec2.CreateFleetInput) (*awsec2.CreateFleetOutput, error) {
		ov := func(typ, zone, subnet string) *types.LaunchTemplateAndOverridesResponse {
			return &types.LaunchTemplateAndOverridesResponse{Overrides: &types.FleetLaunchTemplateOverrides{
				InstanceType: types.InstanceType(typ), AvailabilityZone: aws.String(zone), SubnetId: aws.String(subnet)}}
		}
		return &awsec2.CreateFleetOutput{
			Instances: []types.CreateFleetInstance{
				{InstanceIds: []string{"i-1", "i-2"}, InstanceType: "m5.large", LaunchTemplateAndOverrides: ov("m5.large", "us-east-1b", "subnet-b"), Lifecycle: types.InstanceLifecycleSpot},
				{InstanceIds: []string{"i-3"}, InstanceType: "m5.xlarge", LaunchTemplateAndOverrides: ov("m5.xlarge", "us-east-1a", "subnet-a"), Lifecycle: types.InstanceLifecycleSpot},
			},
			Errors: []types.CreateFleetError{
				{ErrorCode: aws.String("InsufficientInstanceCapacity"), ErrorMessage: aws.String("none"), LaunchTemplateAndOverrides: ov("m5.large", "us-east-1a", "subnet-a")},
				{ErrorCode: aws.String("SomethingElse"), ErrorMessage: aws.String("odd")},
			},
		}, nil
	}}
	res, err := New(api).LaunchFleet(context.Background(), fleetInput())
	require.NoError(t, err)

	in := api.inputs[0].(*awsec2.CreateFleetInput)
	assert.Equal(t, types.FleetTypeInstant, in.Type)
	assert.Equal(t, "f1-fill-3", aws.ToString(in.ClientToken))
	require.Len(t, in.LaunchTemplateConfigs, 1)
	spec := in.LaunchTemplateConfigs[0].LaunchTemplateSpecification
	assert.Equal(t, "lt-1", aws.ToString(spec.LaunchTemplateId))
	assert.Equal(t, "$Default", aws.ToString(spec.Version), "CreateFleet needs a version")
	assert.Equal(t, base64.StdEncoding.EncodeToString([]byte("hi")), aws.ToString(spec.LaunchTemplateSpecificationUserData))
	ovs := in.LaunchTemplateConfigs[0].Overrides
	require.Len(t, ovs, 3)
	assert.Equal(t, types.InstanceType("m5.xlarge"), ovs[2].InstanceType)
	assert.Equal(t, "us-east-1a", aws.ToString(ovs[2].AvailabilityZone))
	assert.Equal(t, "subnet-a", aws.ToString(ovs[2].SubnetId))
	assert.Equal(t, 2.0, aws.ToFloat64(ovs[2].WeightedCapacity))
	assert.Equal(t, 2.0, aws.ToFloat64(ovs[2].Priority))
	assert.Equal(t, "k", aws.ToString(ovs[0].KeyName))
	tc := in.TargetCapacitySpecification
	assert.Equal(t, int32(6), aws.ToInt32(tc.TotalTargetCapacity))
	assert.Equal(t, int32(6), aws.ToInt32(tc.SpotTargetCapacity))
	assert.Nil(t, tc.OnDemandTargetCapacity)
	assert.Equal(t, types.DefaultTargetCapacityTypeSpot, tc.DefaultTargetCapacityType)
	assert.Equal(t, types.SpotAllocationStrategyCapacityOptimizedPrioritized, in.SpotOptions.AllocationStrategy)
	assert.Nil(t, in.SpotOptions.MinTargetCapacity)
	assert.Nil(t, in.OnDemandOptions)
	require.Len(t, in.TagSpecifications, 1)
	assert.Equal(t, types.ResourceTypeInstance, in.TagSpecifications[0].ResourceType)

	require.Len(t, res.Instances, 3)
	assert.Equal(t, 1, res.Instances[0].Override, "matched by type, zone and subnet")
	assert.Equal(t, "i-2", res.Instances[1].Instance.ID)
	assert.Equal(t, "us-east-1b", res.Instances[1].Instance.Zone)
	assert.Equal(t, providers.MarketSpot, res.Instances[1].Instance.Market)
	assert.Equal(t, "f1", res.Instances[1].Instance.Tags[providers.FleetTagKey])
	assert.Equal(t, 2, res.Instances[2].Override)
	assert.Equal(t, []providers.FleetLaunchError{
		{Override: 0, Code: "InsufficientInstanceCapacity", Message: "none", Type: providers.ErrTypeInsufficientCapacity},
		{Override: -1, Code: "SomethingElse", Message: "odd"},
	}, res.Errors)
}

func TestLaunchFleetMinTargetCapacity(t *testing.T) {
	api := &fakeAPI{t: t, fleet: func(*awsec2.CreateFleetInput) (*awsec2.CreateFleetOutput, error) {
		return &awsec2.CreateFleetOutput{}, nil
	}}
	p := New(api)
	last := func() *awsec2.CreateFleetInput { return api.inputs[len(api.inputs)-1].(*awsec2.CreateFleetInput) }

	// Two types in two zones: EC2 would refuse MinTargetCapacity without
	// restricting the fleet, so none is sent.
	in := fleetInput()
	in.MinUnits = 4
	_, err := p.LaunchFleet(context.Background(), in)
	require.NoError(t, err)
	assert.Nil(t, last().SpotOptions.MinTargetCapacity)
	assert.Nil(t, last().SpotOptions.SingleInstanceType)
	assert.Nil(t, last().SpotOptions.SingleAvailabilityZone)

	// One type: SingleInstanceType, which the overrides already satisfy.
	in.Overrides = in.Overrides[:2]
	in.Market, in.Strategy = providers.MarketOnDemand, "prioritized"
	_, err = p.LaunchFleet(context.Background(), in)
	require.NoError(t, err)
	od := last().OnDemandOptions
	assert.Equal(t, int32(4), aws.ToInt32(od.MinTargetCapacity))
	assert.True(t, aws.ToBool(od.SingleInstanceType))
	assert.Nil(t, od.SingleAvailabilityZone)
	assert.Equal(t, types.FleetOnDemandAllocationStrategyPrioritized, od.AllocationStrategy)
	assert.Equal(t, int32(6), aws.ToInt32(last().TargetCapacitySpecification.OnDemandTargetCapacity))
	assert.Nil(t, last().SpotOptions)

	// Two types in one zone: SingleAvailabilityZone.
	in = fleetInput()
	in.MinUnits = 4
	in.Overrides = []providers.FleetLaunchOverride{in.Overrides[0], in.Overrides[2]}
	_, err = p.LaunchFleet(context.Background(), in)
	require.NoError(t, err)
	assert.Equal(t, int32(4), aws.ToInt32(last().SpotOptions.MinTargetCapacity))
	assert.True(t, aws.ToBool(last().SpotOptions.SingleAvailabilityZone))

	// Above EC2's 1000: none.
	in.TotalUnits, in.MinUnits = 2000, 1001
	_, err = p.LaunchFleet(context.Background(), in)
	require.NoError(t, err)
	assert.Nil(t, last().SpotOptions.MinTargetCapacity)
}

func TestLaunchFleetRejectsAndTranslates(t *testing.T) {
	api := &fakeAPI{t: t, fleet: func(*awsec2.CreateFleetInput) (*awsec2.CreateFleetOutput, error) {
		return nil, apiErr("RequestLimitExceeded")
	}}
	p := New(api)
	bad := []func(*providers.FleetLaunchInput){
		func(in *providers.FleetLaunchInput) { in.Params.LaunchTemplate = providers.LaunchTemplateRef{} },
		func(in *providers.FleetLaunchInput) { in.Params.SecurityGroupIDs = []string{"sg-1"} },
		func(in *providers.FleetLaunchInput) { in.Overrides = nil },
		func(in *providers.FleetLaunchInput) { in.Overrides[1].Weight = 0 },
		func(in *providers.FleetLaunchInput) { in.TotalUnits = 0 },
		func(in *providers.FleetLaunchInput) { in.MinUnits = 7 },
		func(in *providers.FleetLaunchInput) { in.Market = "cheap" },
		func(in *providers.FleetLaunchInput) { in.Strategy = "random" },
	}
	for i, mutate := range bad {
		in := fleetInput()
		mutate(&in)
		_, err := p.LaunchFleet(context.Background(), in)
		assert.True(t, providers.IsInvalid(err), "case %d: %v", i, err)
	}
	assert.Empty(t, api.inputs, "invalid input never reaches EC2")
	_, err := p.LaunchFleet(context.Background(), fleetInput())
	assert.True(t, providers.IsThrottled(err), "%v", err)
}
