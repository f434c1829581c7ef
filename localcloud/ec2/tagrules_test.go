package ec2

import (
	"context"
	"fmt"
	"testing"

	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunInstancesTagRules: RunInstances applies EC2's tag rules, as
// CreateTags does: at most 50 tags, no reserved aws: keys, no key twice.
// A refused call launches nothing.
func TestRunInstancesTagRules(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, Config{RequestBucket: -1, DescribeBucket: -1, ResourceBucket: -1,
		Pools: []Pool{{InstanceType: "m5.large", Initial: 10}}})
	many := func(n int) []string {
		kv := make([]string, 0, 2*n)
		for i := range n {
			kv = append(kv, fmt.Sprintf("k%02d", i), "v")
		}
		return kv
	}
	for _, c := range []struct {
		name, code string
		kv         []string
	}{
		{"60 tags", "TagLimitExceeded", many(60)},
		{"an aws: key", "InvalidParameterValue", []string{"aws:cloudformation:stack-name", "x"}},
		{"a key twice", "InvalidParameterValue", []string{"team", "a", "team", "b"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := run(ctx, client, "m5.large", 1, 1, withTags(c.kv...))
			assert.Equal(t, c.code, errorCode(t, err))
		})
	}
	assert.Empty(t, describe(t, client, &awsec2.DescribeInstancesInput{}), "a refused call launches nothing")

	out, err := run(ctx, client, "m5.large", 1, 1, withTags(many(50)...))
	require.NoError(t, err, "50 tags are allowed")
	require.Len(t, out.Instances[0].Tags, 50)
}

// TestRunInstancesNeedsAnImage: as on EC2, RunInstances without ImageId
// (and without a launch template, which this cloud does not have) is
// MissingParameter and launches nothing.
func TestRunInstancesNeedsAnImage(t *testing.T) {
	ctx := context.Background()
	client, _ := start(t, Config{RequestBucket: -1, DescribeBucket: -1, ResourceBucket: -1,
		Pools: []Pool{{InstanceType: "m5.large", Initial: 10}}})
	_, err := run(ctx, client, "m5.large", 1, 1, func(in *awsec2.RunInstancesInput) { in.ImageId = nil })
	assert.Equal(t, "MissingParameter", errorCode(t, err))
	assert.Empty(t, describe(t, client, &awsec2.DescribeInstancesInput{}))
}
