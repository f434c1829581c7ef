package localcloud_test

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
	"github.com/gust-dev/gust/tenants"
)

// awsCLIv2 finds the AWS CLI v2: $GUST_AWS_CLI, else `aws` on the PATH. The
// test skips without one; the CLI is not a dependency of gust, and what it
// checks (the wire protocols) is covered by the aws-sdk-go-v2 tests of
// localcloud/ec2, localcloud/lambda and the providers.
func awsCLIv2(t *testing.T) string {
	t.Helper()
	bin, version := awsCLI(t)
	if !strings.HasPrefix(version, "aws-cli/2.") {
		t.Skipf("skipping: %s is not the AWS CLI v2 (%q); set GUST_AWS_CLI to one", bin, version)
	}
	return bin
}

// awsCLI finds any AWS CLI, v1 or v2, as awsCLIv2 does, and returns it
// with its version line. A pyenv shim may put a v1 first on the PATH; v1
// signs requests as v2 does, which is all TestAWSCLIVerifiesSignatures
// needs.
func awsCLI(t *testing.T) (bin, version string) {
	t.Helper()
	bin = os.Getenv("GUST_AWS_CLI")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("aws"); err != nil {
			t.Skip("skipping: no AWS CLI on the PATH (set GUST_AWS_CLI to an AWS CLI to run this test)")
		}
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "aws-cli/") {
		t.Skipf("skipping: %s does not run as an AWS CLI (%q, %v); set GUST_AWS_CLI to one", bin, strings.TrimSpace(string(out)), err)
	}
	return bin, strings.TrimSpace(string(out))
}

// runAWS runs the AWS CLI bin against endpoint with creds and nothing of
// the developer's own AWS configuration.
func runAWS(t *testing.T, bin, endpoint string, creds tenants.Credentials, args ...string) (string, string, error) {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"--endpoint-url", endpoint, "--output", "json"}, args...)...)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(),
		"AWS_ACCESS_KEY_ID=" + creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + creds.SecretAccessKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_PAGER=", "AWS_MAX_ATTEMPTS=1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null",
	}
	if creds.SessionToken != "" {
		cmd.Env = append(cmd.Env, "AWS_SESSION_TOKEN="+creds.SessionToken)
	}
	if root := os.Getenv("PYENV_ROOT"); root != "" {
		cmd.Env = append(cmd.Env, "PYENV_ROOT="+root)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

// TestAWSCLIVerifiesSignatures: the real AWS CLI (v1 or v2) works with a
// tenant's key, and fails with AWS's code for each API with a wrong secret
// or an unknown key.
func TestAWSCLIVerifiesSignatures(t *testing.T) {
	bin, version := awsCLI(t)
	t.Log("using", bin, version)
	srv, creds := startCloud(t, "acme")
	acme := creds["acme"]
	wrong := acme
	wrong.SecretAccessKey = strings.Repeat("w", 40)
	unknown := acme
	unknown.AccessKeyID = "AKIAUNKNOWNUNKNOWN00"

	calls := []struct {
		args                []string
		wrongCode, unknCode string
	}{
		{[]string{"ec2", "describe-instances"}, "SignatureDoesNotMatch", "AuthFailure"},
		{[]string{"lambda", "list-functions"}, "InvalidSignatureException", "UnrecognizedClientException"},
		{[]string{"sts", "get-caller-identity"}, "SignatureDoesNotMatch", "InvalidClientTokenId"},
	}
	for _, c := range calls {
		stdout, stderr, err := runAWS(t, bin, srv.Endpoint(), acme, c.args...)
		require.NoError(t, err, "aws %v: %s", c.args, stderr)
		var out map[string]any
		require.NoError(t, json.Unmarshal([]byte(stdout), &out), stdout)

		_, stderr, err = runAWS(t, bin, srv.Endpoint(), wrong, c.args...)
		require.Error(t, err, "aws %v with a wrong secret", c.args)
		assert.Contains(t, stderr, "("+c.wrongCode+")", "aws %v with a wrong secret", c.args)
		assert.NotContains(t, stderr, acme.SecretAccessKey)

		_, stderr, err = runAWS(t, bin, srv.Endpoint(), unknown, c.args...)
		require.Error(t, err, "aws %v with an unknown key", c.args)
		assert.Contains(t, stderr, "("+c.unknCode+")", "aws %v with an unknown key", c.args)
	}
	stdout, stderr, err := runAWS(t, bin, srv.Endpoint(), acme, "sts", "get-caller-identity")
	require.NoError(t, err, stderr)
	assert.Contains(t, stdout, tenants.AccountID("acme"))
}

// TestAWSCLIv2 drives the local cloud with the real AWS CLI v2 through
// --endpoint-url, as the README promises users can.
func TestAWSCLIv2(t *testing.T) {
	bin := awsCLIv2(t)
	srv, creds := startCloud(t, "u", "acme", "globex")

	aws := func(tenant string, args ...string) (string, string, error) {
		t.Helper()
		return runAWS(t, bin, srv.Endpoint(), creds[tenant], args...)
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
