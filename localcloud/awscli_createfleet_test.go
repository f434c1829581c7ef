package localcloud_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestAWSCLICreateFleet drives launch templates and an instant fleet end
// to end with whichever AWS CLI is on the PATH (v1 and v2 both have
// ec2 create-fleet), and checks the fleet's instances with
// describe-instances.
func TestAWSCLICreateFleet(t *testing.T) {
	bin, version := awsCLI(t)
	t.Log("using", bin, version)
	srv, creds := startCloud(t, "acme")
	aws := func(args ...string) map[string]any {
		t.Helper()
		stdout, stderr, err := runAWS(t, bin, srv.Endpoint(), creds["acme"], args...)
		if err != nil && strings.Contains(stderr, "Invalid choice") {
			t.Skipf("skipping: %s has no %v (%s)", bin, args[:2], strings.TrimSpace(stderr))
		}
		require.NoError(t, err, "aws %v: %s", args, stderr)
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
		return out
	}

	lt := aws("ec2", "create-launch-template", "--launch-template-name", "cli-fleet",
		"--launch-template-data", `{"ImageId":"ami-12345678","InstanceType":"t3.micro"}`)["LaunchTemplate"].(map[string]any)
	ltID := lt["LaunchTemplateId"].(string)
	assert.Equal(t, "cli-fleet", lt["LaunchTemplateName"])

	fleet := aws("ec2", "create-fleet", "--type", "instant",
		"--launch-template-configs", `[{"LaunchTemplateSpecification":{"LaunchTemplateId":"`+ltID+`","Version":"$Latest"},
			"Overrides":[{"InstanceType":"t3.micro","WeightedCapacity":1},{"InstanceType":"m5.large","WeightedCapacity":2}]}]`,
		"--target-capacity-specification", `{"TotalTargetCapacity":6,"OnDemandTargetCapacity":4,"SpotTargetCapacity":2,"DefaultTargetCapacityType":"on-demand"}`,
		"--tag-specifications", `[{"ResourceType":"instance","Tags":[{"Key":"team","Value":"cli"}]}]`)
	fleetID := fleet["FleetId"].(string)
	require.True(t, strings.HasPrefix(fleetID, "fleet-"), fleetID)
	launched := 0
	for _, item := range fleet["Instances"].([]any) {
		launched += len(item.(map[string]any)["InstanceIds"].([]any))
	}
	assert.Positive(t, launched)
	assert.Empty(t, fleet["Errors"])

	desc := aws("ec2", "describe-instances", "--filters", "Name=tag:aws:ec2:fleet-id,Values="+fleetID)
	var found, spot int
	for _, r := range desc["Reservations"].([]any) {
		for _, in := range r.(map[string]any)["Instances"].([]any) {
			inst := in.(map[string]any)
			found++
			if inst["InstanceLifecycle"] == "spot" {
				spot++
			}
			tags := map[string]string{}
			for _, tg := range inst["Tags"].([]any) {
				tags[tg.(map[string]any)["Key"].(string)] = tg.(map[string]any)["Value"].(string)
			}
			assert.Equal(t, "cli", tags["team"])
			assert.Equal(t, ltID, tags["aws:ec2launchtemplate:id"])
			assert.NotEmpty(t, inst["SubnetId"])
		}
	}
	assert.Equal(t, launched, found)
	assert.Positive(t, spot, "the spot share is launched as spot instances")

	fleets := aws("ec2", "describe-fleets", "--fleet-ids", fleetID)["Fleets"].([]any)
	require.Len(t, fleets, 1)
	assert.Equal(t, "active", fleets[0].(map[string]any)["FleetState"])
}
