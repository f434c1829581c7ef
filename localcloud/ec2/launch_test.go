package ec2

import (
	"context"
	"database/sql"
	"encoding/base64"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseCapacityMarkets(t *testing.T) {
	got, err := ParseCapacity("spot:m5.large@us-east-1a=500+10/s,price=0.03")
	require.NoError(t, err)
	assert.Equal(t, Pool{Market: MarketSpot, InstanceType: "m5.large", Zone: "us-east-1a", Initial: 500, RatePerSec: 10, Price: 0.03}, got)
	got, err = ParseCapacity("m5.large=5")
	require.NoError(t, err)
	assert.Equal(t, Pool{InstanceType: "m5.large", Initial: 5}, got)
	for _, in := range []string{"spot:m5.large@=5", "m5.large=5,price=-1", "m5.large=5,cost=1"} {
		_, err := ParseCapacity(in)
		assert.Error(t, err, in)
	}
}

func spotMarket(maxPrice string) runOpt {
	return func(in *awsec2.RunInstancesInput) {
		in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
		if maxPrice != "" {
			in.InstanceMarketOptions.SpotOptions = &types.SpotMarketOptions{MaxPrice: aws.String(maxPrice)}
		}
	}
}

func TestSpotLaunchPriceAndLifecycle(t *testing.T) {
	ctx := context.Background()
	client, cloud := start(t, unthrottled(Config{Pools: []Pool{
		{InstanceType: "m5.large", Initial: 10},
		{Market: MarketSpot, InstanceType: "m5.large", Initial: 3, Price: 0.03},
	}}))
	out, err := run(ctx, client, "m5.large", 3, 3, spotMarket(""))
	require.NoError(t, err)
	assert.Equal(t, types.InstanceLifecycleTypeSpot, out.Instances[0].InstanceLifecycle)
	onDemand, err := cloud.MarketFree(ctx, MarketOnDemand, "m5.large")
	require.NoError(t, err)
	assert.Equal(t, 10, onDemand, "spot launches do not take on-demand capacity")
	spotFree, err := cloud.MarketFree(ctx, MarketSpot, "m5.large")
	require.NoError(t, err)
	assert.Zero(t, spotFree)

	_, err = run(ctx, client, "m5.large", 1, 1, spotMarket(""))
	assert.Equal(t, "InsufficientInstanceCapacity", errorCode(t, err), "the spot pool is empty")

	od, err := run(ctx, client, "m5.large", 1, 1)
	require.NoError(t, err)
	got := describe(t, client, &awsec2.DescribeInstancesInput{InstanceIds: ids(od)})
	assert.Empty(t, got[0].InstanceLifecycle)

	spot := describe(t, client, &awsec2.DescribeInstancesInput{Filters: []types.Filter{{Name: aws.String("instance-lifecycle"), Values: []string{"spot"}}}})
	assert.Len(t, spot, 3)

	// A max price under the pool's price is refused with EC2's code.
	_, err = run(ctx, client, "m5.large", 1, 1, spotMarket("0.01"))
	assert.Equal(t, "SpotMaxPriceTooLow", errorCode(t, err))

	hist, err := client.DescribeSpotPriceHistory(ctx, &awsec2.DescribeSpotPriceHistoryInput{
		InstanceTypes: []types.InstanceType{"m5.large"}, AvailabilityZone: aws.String("us-east-1b")})
	require.NoError(t, err)
	require.Len(t, hist.SpotPriceHistory, 1)
	assert.Equal(t, "0.03", aws.ToString(hist.SpotPriceHistory[0].SpotPrice))
	assert.Equal(t, "Linux/UNIX", string(hist.SpotPriceHistory[0].ProductDescription))
}

func TestSpotPlacementScores(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{Pools: []Pool{
		{Market: MarketSpot, InstanceType: "m5.large", Zone: "us-east-1a", Initial: 300},
		{Market: MarketSpot, InstanceType: "m5.large", Zone: "us-east-1b", Initial: 0},
	}}))
	out, err := client.GetSpotPlacementScores(ctx, &awsec2.GetSpotPlacementScoresInput{
		InstanceTypes: []string{"m5.large"}, TargetCapacity: aws.Int32(100), SingleAvailabilityZone: aws.Bool(true)})
	require.NoError(t, err)
	scores := map[string]int32{}
	for _, s := range out.SpotPlacementScores {
		scores[aws.ToString(s.AvailabilityZoneId)] = aws.ToInt32(s.Score)
	}
	assert.Equal(t, int32(10), scores["use1-az1"])
	assert.Equal(t, int32(1), scores["use1-az2"])
}

func TestLaunchParametersValidated(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{}))
	subnets, err := client.DescribeSubnets(ctx, &awsec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("availability-zone"), Values: []string{"us-east-1b"}}}})
	require.NoError(t, err)
	require.Len(t, subnets.Subnets, 1)
	subnet := aws.ToString(subnets.Subnets[0].SubnetId)
	assert.Regexp(t, `^subnet-[0-9a-f]{17}$`, subnet)

	out, err := run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.SubnetId = aws.String(subnet) })
	require.NoError(t, err)
	assert.Equal(t, "us-east-1b", aws.ToString(out.Instances[0].Placement.AvailabilityZone))
	assert.Equal(t, subnet, aws.ToString(out.Instances[0].SubnetId))
	assert.Equal(t, aws.ToString(subnets.Subnets[0].VpcId), aws.ToString(out.Instances[0].VpcId))

	_, err = run(ctx, client, "t3.micro", 1, 1, withZone("us-east-1a"), func(in *awsec2.RunInstancesInput) { in.SubnetId = aws.String(subnet) })
	assert.Equal(t, "InvalidParameterCombination", errorCode(t, err))
	_, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.SubnetId = aws.String("subnet-00000000000000000") })
	assert.Equal(t, "InvalidSubnetID.NotFound", errorCode(t, err))
	_, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.SecurityGroupIds = []string{"sg-00000000000000000"} })
	assert.Equal(t, "InvalidGroup.NotFound", errorCode(t, err))
	_, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.KeyName = aws.String("nope") })
	assert.Equal(t, "InvalidKeyPair.NotFound", errorCode(t, err))
	_, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) {
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Arn: aws.String("arn:aws:iam::123456789012:instance-profile/x")}
	})
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err), "another account's instance profile")
	_, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) {
		in.UserData = aws.String(base64.StdEncoding.EncodeToString([]byte(strings.Repeat("x", 16<<10+1))))
	})
	assert.Equal(t, "InvalidParameterValue", errorCode(t, err), "user data over 16 KB")
	assert.Len(t, describe(t, client, &awsec2.DescribeInstancesInput{}), 1, "failed launches launch nothing")

	// Everything valid: a key, a group, a profile and user data, all shown.
	_, err = client.CreateKeyPair(ctx, &awsec2.CreateKeyPairInput{KeyName: aws.String("k1")})
	require.NoError(t, err)
	sg, err := client.CreateSecurityGroup(ctx, &awsec2.CreateSecurityGroupInput{GroupName: aws.String("web"), Description: aws.String("web")})
	require.NoError(t, err)
	ud := base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n"))
	out, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) {
		in.KeyName = aws.String("k1")
		in.SecurityGroupIds = []string{aws.ToString(sg.GroupId)}
		in.UserData = aws.String(ud)
		in.IamInstanceProfile = &types.IamInstanceProfileSpecification{Name: aws.String("worker")}
	})
	require.NoError(t, err)
	got := describe(t, client, &awsec2.DescribeInstancesInput{InstanceIds: ids(out)})[0]
	assert.Equal(t, "k1", aws.ToString(got.KeyName))
	require.Len(t, got.SecurityGroups, 1)
	assert.Equal(t, "web", aws.ToString(got.SecurityGroups[0].GroupName))
	assert.Regexp(t, `^arn:aws:iam::[0-9]{12}:instance-profile/worker$`, aws.ToString(got.IamInstanceProfile.Arn))
	attr, err := client.DescribeInstanceAttribute(ctx, &awsec2.DescribeInstanceAttributeInput{
		InstanceId: got.InstanceId, Attribute: types.InstanceAttributeNameUserData})
	require.NoError(t, err)
	assert.Equal(t, ud, aws.ToString(attr.UserData.Value))

	// Another account sees none of it.
	other := clientFor(endpointOf(t, client), "other")
	_, err = run(ctx, other, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.KeyName = aws.String("k1") })
	assert.Equal(t, "InvalidKeyPair.NotFound", errorCode(t, err))
	_, err = run(ctx, other, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.SubnetId = aws.String(subnet) })
	assert.Equal(t, "InvalidSubnetID.NotFound", errorCode(t, err))
	_, err = run(ctx, other, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.SecurityGroupIds = []string{aws.ToString(sg.GroupId)} })
	assert.Equal(t, "InvalidGroup.NotFound", errorCode(t, err))
}

// endpointOf is the base endpoint a test client was made with.
func endpointOf(t *testing.T, c *awsec2.Client) string {
	t.Helper()
	return aws.ToString(c.Options().BaseEndpoint)
}

func createTemplate(t *testing.T, c *awsec2.Client, name string, data *types.RequestLaunchTemplateData) string {
	t.Helper()
	out, err := c.CreateLaunchTemplate(context.Background(), &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name), LaunchTemplateData: data})
	require.NoError(t, err)
	return aws.ToString(out.LaunchTemplate.LaunchTemplateId)
}

func TestLaunchTemplates(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{}))
	id := createTemplate(t, client, "web", &types.RequestLaunchTemplateData{ImageId: aws.String("ami-11111111"), InstanceType: "t3.micro"})
	_, err := client.CreateLaunchTemplate(ctx, &awsec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("web"),
		LaunchTemplateData: &types.RequestLaunchTemplateData{}})
	assert.Equal(t, "InvalidLaunchTemplateName.AlreadyExistsException", errorCode(t, err))

	v2, err := client.CreateLaunchTemplateVersion(ctx, &awsec2.CreateLaunchTemplateVersionInput{LaunchTemplateId: aws.String(id),
		SourceVersion: aws.String("1"), LaunchTemplateData: &types.RequestLaunchTemplateData{InstanceType: "m5.large"}})
	require.NoError(t, err)
	assert.Equal(t, int64(2), aws.ToInt64(v2.LaunchTemplateVersion.VersionNumber))
	assert.Equal(t, "ami-11111111", aws.ToString(v2.LaunchTemplateVersion.LaunchTemplateData.ImageId), "inherited from the source version")

	launch := func(version string, opts ...runOpt) (*awsec2.RunInstancesOutput, error) {
		return client.RunInstances(ctx, func() *awsec2.RunInstancesInput {
			in := &awsec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
				LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web"), Version: aws.String(version)}}
			for _, o := range opts {
				o(in)
			}
			return in
		}())
	}
	out, err := launch("$Default")
	require.NoError(t, err)
	assert.Equal(t, types.InstanceTypeT3Micro, out.Instances[0].InstanceType)
	out, err = launch("$Latest")
	require.NoError(t, err)
	assert.Equal(t, types.InstanceTypeM5Large, out.Instances[0].InstanceType)
	out, err = launch("$Latest", func(in *awsec2.RunInstancesInput) {
		in.InstanceType = "c5.xlarge"
		in.ImageId = aws.String("ami-22222222")
	})
	require.NoError(t, err)
	assert.Equal(t, types.InstanceTypeC5Xlarge, out.Instances[0].InstanceType, "explicit parameters override the template")
	assert.Equal(t, "ami-22222222", aws.ToString(out.Instances[0].ImageId))
	tags := map[string]string{}
	for _, tg := range out.Instances[0].Tags {
		tags[aws.ToString(tg.Key)] = aws.ToString(tg.Value)
	}
	assert.Equal(t, id, tags["aws:ec2launchtemplate:id"])
	assert.Equal(t, "2", tags["aws:ec2launchtemplate:version"])

	_, err = client.ModifyLaunchTemplate(ctx, &awsec2.ModifyLaunchTemplateInput{LaunchTemplateId: aws.String(id), DefaultVersion: aws.String("2")})
	require.NoError(t, err)
	out, err = launch("")
	require.NoError(t, err)
	assert.Equal(t, types.InstanceTypeM5Large, out.Instances[0].InstanceType)

	_, err = launch("9")
	assert.Equal(t, "InvalidLaunchTemplateId.VersionNotFound", errorCode(t, err))
	_, err = client.RunInstances(ctx, &awsec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateId: aws.String("lt-00000000000000000")}})
	assert.Equal(t, "InvalidLaunchTemplateId.NotFound", errorCode(t, err))

	// A template naming a missing key fails at launch, like a direct one.
	createTemplate(t, client, "badkey", &types.RequestLaunchTemplateData{ImageId: aws.String("ami-1"), InstanceType: "t3.micro", KeyName: aws.String("missing")})
	_, err = client.RunInstances(ctx, &awsec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("badkey")}})
	assert.Equal(t, "InvalidKeyPair.NotFound", errorCode(t, err))

	other := clientFor(endpointOf(t, client), "other")
	_, err = other.RunInstances(ctx, &awsec2.RunInstancesInput{MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String("web")}})
	assert.Equal(t, "InvalidLaunchTemplateName.NotFoundException", errorCode(t, err))

	_, err = client.DeleteLaunchTemplate(ctx, &awsec2.DeleteLaunchTemplateInput{LaunchTemplateId: aws.String(id)})
	require.NoError(t, err)
	_, err = launch("1")
	assert.Equal(t, "InvalidLaunchTemplateName.NotFoundException", errorCode(t, err))
}

// TestMigrationToMarkets: a database written before markets and launch
// parameters opens, its instances are on-demand ones in the default
// subnet-less shape, and spot launches work on it.
func TestMigrationToMarkets(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	require.NoError(t, err)
	for _, stmt := range []string{
		`CREATE TABLE pools (instance_type TEXT NOT NULL, zone TEXT NOT NULL, initial INTEGER NOT NULL, free INTEGER NOT NULL,
			rate REAL NOT NULL, carry REAL NOT NULL, accrued_ns INTEGER NOT NULL, PRIMARY KEY (instance_type, zone)) WITHOUT ROWID`,
		`CREATE TABLE instances (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT NOT NULL UNIQUE, reservation_id TEXT NOT NULL,
			instance_type TEXT NOT NULL, zone TEXT NOT NULL, pool_zone TEXT NOT NULL, image_id TEXT NOT NULL, launch_index INTEGER NOT NULL,
			launch_ns INTEGER NOT NULL, terminated_ns INTEGER, cr_id TEXT NOT NULL, client_token TEXT NOT NULL, account TEXT NOT NULL DEFAULT 'default')`,
		`INSERT INTO pools VALUES ('m5.large', '', 10, 9, 0, 0, 0)`,
		`INSERT INTO instances (id, reservation_id, instance_type, zone, pool_zone, image_id, launch_index, launch_ns, cr_id, client_token, account)
			VALUES ('i-0123456789abcdef0', 'r-0123456789abcdef0', 'm5.large', 'us-east-1a', '', 'ami-1', 0, 0, '', '', 'test')`,
	} {
		_, err := db.Exec(stmt)
		require.NoError(t, err, stmt)
	}
	require.NoError(t, db.Close())

	client, cloud := start(t, unthrottled(Config{DBPath: path, Pools: []Pool{
		{InstanceType: "m5.large", Initial: 10},
		{Market: MarketSpot, InstanceType: "m5.large", Initial: 2},
	}}))
	got := describe(t, client, &awsec2.DescribeInstancesInput{})
	require.Len(t, got, 1)
	assert.Empty(t, got[0].InstanceLifecycle, "old instances are on-demand")
	onDemand, err := cloud.MarketFree(ctx, MarketOnDemand, "m5.large")
	require.NoError(t, err)
	assert.Equal(t, 9, onDemand, "the on-demand pool keeps its state")
	out, err := run(ctx, client, "m5.large", 2, 2, spotMarket(""))
	require.NoError(t, err)
	assert.Equal(t, types.InstanceLifecycleTypeSpot, out.Instances[0].InstanceLifecycle)
}

func TestKeyPairs(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, unthrottled(Config{}))
	created, err := client.CreateKeyPair(ctx, &awsec2.CreateKeyPairInput{KeyName: aws.String("gen"), KeyType: types.KeyTypeEd25519})
	require.NoError(t, err)
	assert.Contains(t, aws.ToString(created.KeyMaterial), "BEGIN OPENSSH PRIVATE KEY")
	_, err = client.CreateKeyPair(ctx, &awsec2.CreateKeyPairInput{KeyName: aws.String("gen")})
	assert.Equal(t, "InvalidKeyPair.Duplicate", errorCode(t, err))

	// A real OpenSSH ed25519 public key line imports; garbage does not.
	line := "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHn0W3mJ2lDn6Qy3q0y0x2Yc5kX9bq8H3U7c1dJb2Gx7 user@host"
	_, err = client.ImportKeyPair(ctx, &awsec2.ImportKeyPairInput{KeyName: aws.String("imp"), PublicKeyMaterial: []byte(line)})
	require.NoError(t, err)
	_, err = client.ImportKeyPair(ctx, &awsec2.ImportKeyPairInput{KeyName: aws.String("bad"), PublicKeyMaterial: []byte("ssh-rsa not-a-key")})
	assert.Equal(t, "InvalidKey.Format", errorCode(t, err))

	keys, err := client.DescribeKeyPairs(ctx, &awsec2.DescribeKeyPairsInput{})
	require.NoError(t, err)
	assert.Len(t, keys.KeyPairs, 2)
	_, err = client.DescribeKeyPairs(ctx, &awsec2.DescribeKeyPairsInput{KeyNames: []string{"missing"}})
	assert.Equal(t, "InvalidKeyPair.NotFound", errorCode(t, err))
	_, err = client.DeleteKeyPair(ctx, &awsec2.DeleteKeyPairInput{KeyName: aws.String("imp")})
	require.NoError(t, err)
	_, err = run(ctx, client, "t3.micro", 1, 1, func(in *awsec2.RunInstancesInput) { in.KeyName = aws.String("imp") })
	assert.Equal(t, "InvalidKeyPair.NotFound", errorCode(t, err))
}
