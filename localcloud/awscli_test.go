package localcloud_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
)

// awsCLIv2 finds the AWS CLI v2: $GUST_AWS_CLI, else `aws` on the PATH. The
// test skips without one; the CLI is not a dependency of gust, and what it
// checks (the wire protocols) is covered by the aws-sdk-go-v2 tests of
// localcloud/ec2, localcloud/lambda and the providers.
func awsCLIv2(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("GUST_AWS_CLI")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("aws"); err != nil {
			t.Skip("skipping: no AWS CLI on the PATH (set GUST_AWS_CLI to an AWS CLI v2 to run this test)")
		}
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "aws-cli/2.") {
		t.Skipf("skipping: %s is not the AWS CLI v2 (%q, %v); set GUST_AWS_CLI to one", bin, strings.TrimSpace(string(out)), err)
	}
	return bin
}

// TestAWSCLIv2 drives the local cloud with the real AWS CLI v2 through
// --endpoint-url, as the README promises users can.
func TestAWSCLIv2(t *testing.T) {
	bin := awsCLIv2(t)
	srv, err := localcloud.Start(localcloud.Config{StateDir: t.TempDir(), BootDelay: 50 * time.Millisecond})
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })

	aws := func(tenant string, args ...string) (string, string, error) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"--endpoint-url", srv.Endpoint(), "--output", "json"}, args...)...)
		cmd.Env = []string{
			"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
			"AWS_ACCESS_KEY_ID=" + tenant, "AWS_SECRET_ACCESS_KEY=gust",
			"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
		}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	ok := func(tenant string, args ...string) map[string]any {
		t.Helper()
		stdout, stderr, err := aws(tenant, args...)
		require.NoError(t, err, "aws %v: %s", args, stderr)
		var out map[string]any
		if strings.TrimSpace(stdout) != "" {
			require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)
		}
		return out
	}
	fails := func(code string, tenant string, args ...string) {
		t.Helper()
		_, stderr, err := aws(tenant, args...)
		require.Error(t, err, "aws %v should fail", args)
		assert.Contains(t, stderr, "("+code+")", "aws %v", args)
	}

	t.Run("ec2", func(t *testing.T) {
		zones := ok("u", "ec2", "describe-availability-zones")["AvailabilityZones"].([]any)
		assert.Len(t, zones, 3)

		run := []string{"ec2", "run-instances", "--image-id", "ami-1", "--instance-type", "m5.large", "--count", "2",
			"--client-token", "cli-1", "--tag-specifications", "ResourceType=instance,Tags=[{Key=gust:fleet-id,Value=cli}]"}
		first := ok("u", run...)["Instances"].([]any)
		require.Len(t, first, 2)
		again := ok("u", run...)["Instances"].([]any)
		assert.Equal(t, first[0].(map[string]any)["InstanceId"], again[0].(map[string]any)["InstanceId"], "the ClientToken replays")
		fails("IdempotentParameterMismatch", "u", "ec2", "run-instances", "--image-id", "ami-1", "--instance-type", "m5.large", "--count", "3", "--client-token", "cli-1")
		fails("InvalidParameterValue", "u", "ec2", "run-instances", "--image-id", "ami-1", "--instance-type", "m5.nope", "--count", "1")

		desc := ok("u", "ec2", "describe-instances", "--filters", "Name=tag:gust:fleet-id,Values=cli")
		var found int
		for _, r := range desc["Reservations"].([]any) {
			found += len(r.(map[string]any)["Instances"].([]any))
		}
		assert.Equal(t, 2, found)

		cr := ok("u", "ec2", "create-capacity-reservation", "--instance-type", "m5.large", "--instance-platform", "Linux/UNIX",
			"--availability-zone", "us-east-1a", "--instance-count", "5")["CapacityReservation"].(map[string]any)
		assert.Equal(t, "active", cr["State"])
		ok("u", "ec2", "cancel-capacity-reservation", "--capacity-reservation-id", cr["CapacityReservationId"].(string))

		id := first[0].(map[string]any)["InstanceId"].(string)
		term := ok("u", "ec2", "terminate-instances", "--instance-ids", id)["TerminatingInstances"].([]any)
		require.Len(t, term, 1)
		assert.Equal(t, id, term[0].(map[string]any)["InstanceId"])
	})

	t.Run("lambda", func(t *testing.T) {
		bootstrap, err := lambdatest.BuildEcho(t.TempDir())
		require.NoError(t, err)
		code, err := os.ReadFile(bootstrap)
		require.NoError(t, err)
		zipped, err := activities.BootstrapZip(code)
		require.NoError(t, err)
		zipPath := filepath.Join(t.TempDir(), "fn.zip")
		require.NoError(t, os.WriteFile(zipPath, zipped, 0o600))

		fn := ok("acme", "lambda", "create-function", "--function-name", "echo", "--runtime", "provided.al2023",
			"--handler", "bootstrap", "--role", "arn:aws:iam::000000000000:role/gust", "--zip-file", "fileb://"+zipPath)
		assert.Equal(t, "echo", fn["FunctionName"])

		out := filepath.Join(t.TempDir(), "out.json")
		ok("acme", "lambda", "invoke", "--function-name", "echo", "--cli-binary-format", "raw-in-base64-out",
			"--payload", `{"echo":{"n":1}}`, out)
		resp, err := os.ReadFile(out)
		require.NoError(t, err)
		var got struct {
			FunctionName string          `json:"function_name"`
			Echo         json.RawMessage `json:"echo"`
		}
		require.NoError(t, json.Unmarshal(resp, &got), string(resp))
		assert.Equal(t, "echo", got.FunctionName)
		assert.JSONEq(t, `{"n":1}`, string(got.Echo))

		names := ok("acme", "lambda", "list-functions")["Functions"].([]any)
		require.Len(t, names, 1)
		assert.Empty(t, ok("globex", "lambda", "list-functions")["Functions"], "another tenant sees nothing")
		fails("ResourceNotFoundException", "globex", "lambda", "get-function", "--function-name", "echo")
		fails("InvalidRequestContentException", "acme", "lambda", "invoke", "--function-name", "echo",
			"--cli-binary-format", "raw-in-base64-out", "--payload", `{"bad`, filepath.Join(t.TempDir(), "x"))
		ok("acme", "lambda", "delete-function", "--function-name", "echo")
		fails("ResourceNotFoundException", "acme", "lambda", "get-function", "--function-name", "echo")
	})
}
