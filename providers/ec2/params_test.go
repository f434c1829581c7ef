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

func runOK(in *awsec2.RunInstancesInput) (*awsec2.RunInstancesOutput, error) {
	return &awsec2.RunInstancesOutput{Instances: []types.Instance{{InstanceId: aws.String("i-1"), InstanceType: in.InstanceType,
		InstanceLifecycle: types.InstanceLifecycleTypeSpot, State: &types.InstanceState{Name: types.InstanceStateNamePending}}}}, nil
}

func TestRunPassesLaunchParams(t *testing.T) {
	api := &fakeAPI{t: t, run: runOK}
	p := New(api)
	p.defaultImage = LocalCloudImageID
	got, err := p.Run(context.Background(), providers.RunInput{
		InstanceType: "m5.large", ImageID: "ami-old", MinCount: 1, MaxCount: 1, Market: providers.MarketSpot, SubnetID: "subnet-1",
		Params: providers.LaunchParams{
			ImageID: "ami-new", SecurityGroupIDs: []string{"sg-1", "sg-2"}, KeyName: "k", UserData: []byte("#!/bin/sh\necho hi\n"),
			IAMInstanceProfile: "arn:aws:iam::123456789012:instance-profile/p",
			LaunchTemplate:     providers.LaunchTemplateRef{Name: "lt", Version: "$Latest"},
		},
	})
	require.NoError(t, err)
	assert.Equal(t, providers.MarketSpot, got[0].Market)
	in := api.inputs[0].(*awsec2.RunInstancesInput)
	assert.Equal(t, "ami-new", aws.ToString(in.ImageId), "Params.ImageID wins")
	assert.Equal(t, types.MarketTypeSpot, in.InstanceMarketOptions.MarketType)
	assert.Equal(t, "subnet-1", aws.ToString(in.SubnetId))
	assert.Equal(t, []string{"sg-1", "sg-2"}, in.SecurityGroupIds)
	assert.Equal(t, "k", aws.ToString(in.KeyName))
	raw, err := base64.StdEncoding.DecodeString(aws.ToString(in.UserData))
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/sh\necho hi\n", string(raw))
	assert.Equal(t, "arn:aws:iam::123456789012:instance-profile/p", aws.ToString(in.IamInstanceProfile.Arn))
	assert.Nil(t, in.IamInstanceProfile.Name)
	assert.Nil(t, in.LaunchTemplate.LaunchTemplateId)
	assert.Equal(t, "lt", aws.ToString(in.LaunchTemplate.LaunchTemplateName))
	assert.Equal(t, "$Latest", aws.ToString(in.LaunchTemplate.Version))
	assert.Nil(t, in.DryRun)

	// A named template and no image: the template's image, not the default.
	_, err = p.Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1,
		Params: providers.LaunchParams{IAMInstanceProfile: "prof", LaunchTemplate: providers.LaunchTemplateRef{ID: "lt-1"}}})
	require.NoError(t, err)
	in = api.inputs[1].(*awsec2.RunInstancesInput)
	assert.Nil(t, in.ImageId)
	assert.Nil(t, in.InstanceMarketOptions, "on-demand sends no market options")
	assert.Equal(t, "prof", aws.ToString(in.IamInstanceProfile.Name))
	assert.Equal(t, "lt-1", aws.ToString(in.LaunchTemplate.LaunchTemplateId))
	assert.Nil(t, in.LaunchTemplate.Version)

	_, err = p.Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Market: "reserved"})
	assert.True(t, providers.IsInvalid(err), "%v", err)
	_, err = p.Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, Market: providers.MarketSpot, ReservationID: "cr-1"})
	assert.True(t, providers.IsInvalid(err), "%v", err)
	assert.Len(t, api.inputs, 2, "invalid input never reaches EC2")
}

func TestRunDryRun(t *testing.T) {
	api := &fakeAPI{t: t, run: func(in *awsec2.RunInstancesInput) (*awsec2.RunInstancesOutput, error) {
		if !aws.ToBool(in.DryRun) {
			return nil, apiErr("DryRunOperation") // a confused cloud
		}
		if aws.ToString(in.KeyName) == "nope" {
			return nil, apiErr("InvalidKeyPair.NotFound")
		}
		return nil, apiErr("DryRunOperation")
	}}
	got, err := New(api).Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, DryRun: true})
	require.NoError(t, err)
	assert.Nil(t, got)
	_, err = New(api).Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1, DryRun: true,
		Params: providers.LaunchParams{KeyName: "nope"}})
	assert.True(t, providers.IsNotFound(err), "the error the launch would have had: %v", err)

	// Outside a dry run, DryRunOperation is no success.
	_, err = New(api).Run(context.Background(), providers.RunInput{InstanceType: "m5.large", MinCount: 1, MaxCount: 1})
	assert.Error(t, err)
}

func TestDescribeReadsMarketAndInterruption(t *testing.T) {
	reason := func(code string) *types.StateReason { return &types.StateReason{Code: aws.String(code)} }
	api := &fakeAPI{t: t, describe: func(*awsec2.DescribeInstancesInput) (*awsec2.DescribeInstancesOutput, error) {
		return &awsec2.DescribeInstancesOutput{Reservations: []types.Reservation{{Instances: []types.Instance{
			{InstanceId: aws.String("i-od"), State: &types.InstanceState{Name: types.InstanceStateNameRunning}},
			{InstanceId: aws.String("i-spot"), InstanceLifecycle: types.InstanceLifecycleTypeSpot,
				State: &types.InstanceState{Name: types.InstanceStateNameRunning}},
			{InstanceId: aws.String("i-notice"), InstanceLifecycle: types.InstanceLifecycleTypeSpot,
				State: &types.InstanceState{Name: types.InstanceStateNameRunning}, StateReason: reason(SpotInterruptionCode)},
			{InstanceId: aws.String("i-gone"), InstanceLifecycle: types.InstanceLifecycleTypeSpot,
				State: &types.InstanceState{Name: types.InstanceStateNameTerminated}, StateReason: reason(SpotInterruptionCode)},
			{InstanceId: aws.String("i-user"), State: &types.InstanceState{Name: types.InstanceStateNameTerminated},
				StateReason: reason("Client.UserInitiatedShutdown")},
		}}}}, nil
	}}
	got, err := New(api).Describe(context.Background(), providers.InstanceFilter{})
	require.NoError(t, err)
	require.Len(t, got, 5)
	type view struct {
		market, reason string
		interrupted    bool
	}
	var views []view
	for _, in := range got {
		views = append(views, view{in.Market, in.StateReason, in.Interrupted})
	}
	assert.Equal(t, []view{
		{providers.MarketOnDemand, "", false},
		{providers.MarketSpot, "", false},
		{providers.MarketSpot, SpotInterruptionCode, true},
		{providers.MarketSpot, SpotInterruptionCode, false},
		{providers.MarketOnDemand, "Client.UserInitiatedShutdown", false},
	}, views)
}
