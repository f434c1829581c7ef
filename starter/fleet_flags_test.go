package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// launchInput runs `gust fleet launch ARGS` with an action that only
// builds the input, so no server is needed.
func launchInput(t *testing.T, args ...string) (workflows.LaunchFleetInput, error) {
	t.Helper()
	app := newApp()
	app.Writer, app.ErrWriter = io.Discard, io.Discard
	launch := findCommand(findCommand(app.Commands, "fleet").Subcommands, "launch")
	require.NotNil(t, launch)
	var in workflows.LaunchFleetInput
	ran := false
	launch.Action = func(c *cli.Context) error {
		ran = true
		var err error
		in, err = fleetInput(c)
		return err
	}
	err := app.Run(interspersed(app, append([]string{"gust", "fleet", "launch"}, args...)))
	if err == nil {
		require.True(t, ran, "the launch action ran")
	}
	return in, err
}

func TestFleetLaunchMixedFleetFlags(t *testing.T) {
	ud := filepath.Join(t.TempDir(), "boot.sh")
	require.NoError(t, os.WriteFile(ud, []byte("#!/bin/sh\necho hi\n"), 0o600))
	in, err := launchInput(t, "--min", "20", "--target", "40",
		"-t", "m5.large", "--instance-type", "m5.xlarge:2",
		"--zone", "us-east-1a", "--zone", "us-east-1b",
		"--on-demand-base", "10", "--spot-share", "50",
		"--allocation-strategy", "lowest-price", "--on-lost", "fail",
		"--image", "ami-0abc", // the old name still works
		"--subnet-id", "subnet-0123456789abcdef0",
		"--security-group-id", "sg-0123456789abcdef0", "--security-group-id", "sg-0123456789abcdef1",
		"--key-name", "ops", "--user-data", "@"+ud,
		"--iam-instance-profile", "arn:aws:iam::123456789012:instance-profile/web",
		"--launch-template", "lt-0123456789abcdef0:$Latest",
		"--fleet-id", "web")
	require.NoError(t, err)

	assert.Equal(t, "m5.large", in.InstanceType, "the first type is the one listings show")
	assert.Empty(t, in.Zones, "zones go into the offerings")
	assert.Equal(t, []workflows.Offering{
		{InstanceType: "m5.large", Zone: "us-east-1a", Priority: 0},
		{InstanceType: "m5.large", Zone: "us-east-1b", Priority: 0},
		{InstanceType: "m5.xlarge", Zone: "us-east-1a", Weight: 2, Priority: 1},
		{InstanceType: "m5.xlarge", Zone: "us-east-1b", Weight: 2, Priority: 1},
	}, in.Offerings)
	assert.Equal(t, 20, in.Min)
	assert.Equal(t, 40, in.Target)
	assert.Equal(t, 10, in.OnDemandBase)
	assert.Equal(t, 50, in.SpotShare)
	assert.Equal(t, workflows.AllocationLowestPrice, in.AllocationStrategy)
	assert.Equal(t, workflows.OnLostFail, in.OnLost)
	assert.Equal(t, "ami-0abc", in.ImageID)
	assert.Equal(t, []string{"subnet-0123456789abcdef0"}, in.SubnetIDs)
	assert.Equal(t, providers.LaunchParams{
		SecurityGroupIDs:   []string{"sg-0123456789abcdef0", "sg-0123456789abcdef1"},
		KeyName:            "ops",
		IAMInstanceProfile: "arn:aws:iam::123456789012:instance-profile/web",
		UserData:           []byte("#!/bin/sh\necho hi\n"),
		LaunchTemplate:     providers.LaunchTemplateRef{ID: "lt-0123456789abcdef0", Version: "$Latest"},
	}, in.Launch)
	assert.Equal(t, "web", in.FleetID)
	assert.Equal(t, "m5.large, m5.xlarge:2", fleetTypesSummary(in))
	assert.Equal(t, []string{"m5.large", "m5.xlarge"}, fleetTypes(in))
}

func TestFleetLaunchDefaults(t *testing.T) {
	// One type without a weight stays the plain fleet every worker knows.
	in, err := launchInput(t, "--min", "1", "--target", "2", "-t", "m5.large", "--zone", "us-east-1a")
	require.NoError(t, err)
	assert.Equal(t, "m5.large", in.InstanceType)
	assert.Equal(t, []string{"us-east-1a"}, in.Zones)
	assert.Empty(t, in.Offerings)
	assert.Equal(t, workflows.AllocationPrioritized, in.AllocationStrategy)
	assert.Equal(t, workflows.OnLostReplace, in.OnLost)
	assert.Zero(t, in.OnDemandBase)
	assert.Zero(t, in.SpotShare)
	assert.True(t, in.Launch.LaunchTemplate.IsZero())
	assert.Nil(t, in.Launch.UserData)
	assert.True(t, strings.HasPrefix(in.FleetID, "fleet-"))

	// Several types without zones: one offering each, in any zone.
	in, err = launchInput(t, "--min", "1", "--target", "2", "-t", "c5.large", "-t", "m5.large",
		"--image-id", "ami-1", "--user-data", "#cloud-config", "--launch-template", "web-nodes:3")
	require.NoError(t, err)
	assert.Equal(t, []workflows.Offering{{InstanceType: "c5.large"}, {InstanceType: "m5.large", Priority: 1}}, in.Offerings)
	assert.Equal(t, "ami-1", in.ImageID)
	assert.Equal(t, []byte("#cloud-config"), in.Launch.UserData)
	assert.Equal(t, providers.LaunchTemplateRef{Name: "web-nodes", Version: "3"}, in.Launch.LaunchTemplate)
}

// TestFleetLaunchTypeFlagForms: -t and --instance-type mix, in any form,
// though urfave/cli refuses two names of one flag.
func TestFleetLaunchTypeFlagForms(t *testing.T) {
	in, err := launchInput(t, "--min", "1", "--target", "2", "--instance-type=m5.large", "-t", "c5.large", "-t=r5.large:4", "--instance-type", "m6i.large")
	require.NoError(t, err)
	assert.Equal(t, []string{"m5.large", "c5.large", "r5.large", "m6i.large"}, fleetTypes(in))
	assert.Equal(t, 4, in.Offerings[2].Weight)
}

func TestFleetLaunchUserDataBound(t *testing.T) {
	dir := t.TempDir()
	full := filepath.Join(dir, "full")
	require.NoError(t, os.WriteFile(full, bytes.Repeat([]byte("a"), workflows.MaxUserData), 0o600))
	in, err := launchInput(t, "--min", "1", "--target", "1", "-t", "m5.large", "--user-data", "@"+full)
	require.NoError(t, err)
	assert.Len(t, in.Launch.UserData, workflows.MaxUserData)

	over := filepath.Join(dir, "over")
	require.NoError(t, os.WriteFile(over, bytes.Repeat([]byte("a"), workflows.MaxUserData+1), 0o600))
	_, err = launchInput(t, "--min", "1", "--target", "1", "-t", "m5.large", "--user-data", "@"+over)
	var ue *usageError
	require.True(t, errors.As(err, &ue), "%v", err)
	assert.Contains(t, ue.Error(), "larger than 16384 bytes")
}

// TestFleetLaunchUsageErrors: each bad value is one line, exit 2, before
// anything is dialled (run would otherwise fail to reach a server and exit
// 1).
func TestFleetLaunchUsageErrors(t *testing.T) {
	base := []string{"--min", "1", "--target", "2", "--address", "127.0.0.1:1"}
	manyZones := []string{"-t", "m5.large", "-t", "c5.large", "-t", "r5.large", "-t", "m6i.large", "-t", "c6i.large", "-t", "r6i.large"}
	for _, z := range []string{"a", "b", "c", "d", "e", "f", "g", "h", "i"} {
		manyZones = append(manyZones, "--zone", "us-east-1"+z)
	}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no type", nil, "--instance-type is required"},
		{"bad type", []string{"-t", "m5"}, "not of the form family.size"},
		{"zero weight", []string{"-t", "m5.large:0"}, "weight \"0\" of m5.large"},
		{"bad weight", []string{"-t", "m5.large:x"}, "weight \"x\" of m5.large"},
		{"type twice", []string{"-t", "m5.large", "-t", "m5.large:2"}, "--instance-type m5.large given twice"},
		{"zone twice", []string{"-t", "m5.large", "-t", "c5.large", "--zone", "us-east-1a", "--zone", "us-east-1a"}, "--zone us-east-1a given twice"},
		{"too many offerings", manyZones, "54 offerings: at most 50"},
		{"strategy", []string{"-t", "m5.large", "--allocation-strategy", "cheapest"}, `--allocation-strategy "cheapest"`},
		{"on-lost", []string{"-t", "m5.large", "--on-lost", "ignore"}, `--on-lost "ignore"`},
		{"spot share", []string{"-t", "m5.large", "--spot-share", "101"}, "--spot-share 101"},
		{"on-demand base", []string{"-t", "m5.large", "--on-demand-base", "-1"}, "--on-demand-base -1"},
		{"subnet", []string{"-t", "m5.large", "--subnet-id", "net-1"}, `subnet id "net-1"`},
		{"security group", []string{"-t", "m5.large", "--security-group-id", "default"}, `security group id "default"`},
		{"key name", []string{"-t", "m5.large", "--key-name", ""}, "--key-name must not be empty"},
		{"user data file", []string{"-t", "m5.large", "--user-data", "@/nonexistent/boot.sh"}, "--user-data:"},
		{"user data inline", []string{"-t", "m5.large", "--user-data", strings.Repeat("x", workflows.MaxUserData+1)}, "--user-data is 16385 bytes"},
		{"template version", []string{"-t", "m5.large", "--launch-template", "web:latest"}, `version "latest"`},
		{"template version 0", []string{"-t", "m5.large", "--launch-template", "lt-0123456789abcdef0:0"}, `version "0"`},
		{"template empty", []string{"-t", "m5.large", "--launch-template", ":3"}, "want ID_OR_NAME[:VERSION]"},
		{"template id", []string{"-t", "m5.large", "--launch-template", "lt-01"}, `launch template id "lt-01"`},
		{"timeout without wait", []string{"-t", "m5.large", "--timeout", "1m"}, "--timeout needs --wait"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append(append([]string{}, base...), tc.args...)
			_, err := launchInput(t, args...)
			var ue *usageError
			require.True(t, errors.As(err, &ue), "%v", err)
			assert.Contains(t, ue.Error(), tc.want)
			assert.NotContains(t, ue.Error(), "\n")
			assert.Equal(t, exitUsage, run(append([]string{"gust", "fleet", "launch"}, args...)))
		})
	}
}

func TestFleetLaunchHelpShowsNewDefaultsOnce(t *testing.T) {
	var help bytes.Buffer
	app := newApp()
	app.Writer = &help
	require.NoError(t, app.Run([]string{"gust", "fleet", "launch", "--help"}))
	for _, want := range []string{`(default: "prioritized")`, `(default: "replace")`, "--image-id value, --image value"} {
		assert.Equal(t, 1, strings.Count(help.String(), want), want)
	}
}

func TestMaintainedWaitVerdict(t *testing.T) {
	for state, want := range map[string]waitVerdict{
		workflows.PhaseValidating:           waitOn,
		workflows.PhaseReserving:            waitOn,
		workflows.PhaseBursting:             waitOn,
		workflows.PhaseFilling:              waitOn,
		"":                                  waitOn,
		workflows.PhaseFulfilled:            waitFulfilled,
		workflows.PhaseInsufficientCapacity: waitForResult,
		workflows.PhaseCancelled:            waitForResult,
		workflows.PhaseFailed:               waitForResult,
	} {
		assert.Equal(t, want, maintainedVerdict(state), state)
	}
}

// TestStatusResultKeepsResultContract: a maintained fleet's --wait result
// is built from its status and must keep FleetResult's JSON names, with
// instance_ids an array, never null.
func TestStatusResultKeepsResultContract(t *testing.T) {
	res := statusResult(workflows.FleetStatus{
		FleetID: "web", Tenant: "acme", Phase: workflows.PhaseFulfilled, Min: 20, Target: 40,
		Running: 30, Launched: 30, Units: 40, Replaced: 2, TimeToMinMS: 1200, TimeToTargetMS: 5400, HistoryLength: 99,
	})
	b, err := json.Marshal(res)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	for k, v := range map[string]any{
		"fleet_id": "web", "state": "fulfilled", "min": 20.0, "target": 40.0, "running": 30.0,
		"instance_ids": []any{}, "time_to_min_ms": 1200.0, "time_to_target_ms": 5400.0,
		"units": 40.0, "replaced": 2.0, "tenant": "acme", "history_events": 99.0, "launched": 30.0,
	} {
		assert.Equal(t, v, m[k], k)
	}
}

func TestFleetStatusOfferingLines(t *testing.T) {
	assert.Equal(t, []string{
		"m5.large us-east-1a: 3 on-demand, 5 spot",
		"m5.xlarge any zone subnet-0123456789abcdef0 (weight 2): 0 on-demand, 1 spot",
	}, offeringLines([]workflows.OfferingStatus{
		{InstanceType: "m5.large", Zone: "us-east-1a", Weight: 1, OnDemand: 3, Spot: 5},
		{InstanceType: "m5.xlarge", SubnetID: "subnet-0123456789abcdef0", Weight: 2, Spot: 1},
	}))
	assert.Equal(t, []string{"m5.large us-east-1a on-demand: no capacity, retry in 2m41s"},
		unavailableLines([]workflows.UnavailableOffering{{InstanceType: "m5.large", Zone: "us-east-1a", Market: "on-demand", LeftMS: 161_200}}))
}
