package integration

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/integration/itest"
)

// tenantKey is the fixed JSON of `gust tenant create --output json`.
type tenantKey struct {
	Tenant          string `json:"tenant"`
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
	AccountID       string `json:"account_id"`
}

// createTenant runs `gust tenant create NAME --output json` and checks the
// fixed contract: exactly the four fields, a key id like AWS's.
func createTenant(t *testing.T, state, name string) tenantKey {
	t.Helper()
	stdout, stderr, code := gust(t, "tenant", "create", name, "--state-dir", state, "--output", "json")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	var fields map[string]any
	require.NoError(t, json.Unmarshal([]byte(strings.TrimSpace(stdout)), &fields), "stdout must be one JSON object: %q", stdout)
	require.Len(t, fields, 4, "exactly tenant, access_key_id, secret_access_key, account_id: %v", keysOf(fields))
	var k tenantKey
	require.NoError(t, json.Unmarshal([]byte(stdout), &k))
	require.Equal(t, name, k.Tenant)
	require.Regexp(t, `^AKIA[A-Z2-7]{16}$`, k.AccessKeyID)
	require.Len(t, k.SecretAccessKey, 40)
	require.Regexp(t, `^[0-9]{12}$`, k.AccountID)
	return k
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tenantEC2(endpoint, akid, secret string) *ec2.Client {
	return ec2.NewFromConfig(itest.TenantAWSConfig(akid, secret), func(o *ec2.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// listFunctions lists the signer's functions, or returns the AWS error
// code the cloud answered with.
func listFunctions(ctx context.Context, endpoint, akid, secret string) ([]string, string, error) {
	out, err := itest.TenantLambda(endpoint, akid, secret).ListFunctions(ctx, &lambda.ListFunctionsInput{})
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return nil, apiErr.ErrorCode(), nil
	}
	if err != nil {
		return nil, "", err
	}
	var names []string
	for _, f := range out.Functions {
		names = append(names, aws.ToString(f.FunctionName))
	}
	return names, "", nil
}

// bootstrapZip is a function package whose bootstrap is a shell script:
// enough for CreateFunction; these tests never invoke it.
func bootstrapZip(t *testing.T) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	require.NoError(t, err)
	_, err = w.Write([]byte("#!/bin/sh\nexit 0\n"))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

// TestCLITenantUsageErrors: bad names, bad durations, duplicates and
// unknown tenants exit 2 with one line; commands other than create on a
// directory without a registry say so, exit 1 and create nothing.
func TestCLITenantUsageErrors(t *testing.T) {
	state := t.TempDir()
	empty := filepath.Join(t.TempDir(), "nothing-here")

	for _, args := range [][]string{
		{"tenant"},
		{"tenant", "bogus"},
		{"tenant", "create"},
		{"tenant", "create", "a", "b"},
		{"tenant", "create", "a/b"},
		{"tenant", "create", "-leading-dash"},
		{"tenant", "create", "_x"},
		{"tenant", "create", strings.Repeat("x", 65)},
		{"tenant", "create", "000000000000"}, // the platform's own account
		{"tenant", "create", "ok", "--output", "yaml"},
		{"tenant", "list", "extra"},
		{"tenant", "rotate-key", "acme", "--grace", "-1s"},
		{"tenant", "rotate-key", "acme", "--grace", "soon"},
		{"tenant", "token", "acme"},                                           // no --subtenant
		{"tenant", "token", "acme", "--subtenant", "c1", "--ttl", "25h"},      // over 24h
		{"tenant", "token", "acme", "--subtenant", "c1", "--ttl", "0s"},       // nothing
		{"tenant", "token", "acme", "--subtenant", "c1", "--function", "a/b"}, // bad function
		{"tenant", "delete", "acme", "--endpoint", "ftp://x"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := gust(t, append(args, "--state-dir", empty)...)
			require.Equal(t, 2, code, "stdout=%q stderr=%q", stdout, stderr)
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			require.True(t, strings.HasPrefix(lines[len(lines)-1], "gust: "), "stderr=%q", stderr)
			require.NotContains(t, stdout, "secret")
		})
	}
	// Nothing above may have created the state directory or a registry.
	_, err := os.Stat(empty)
	require.True(t, os.IsNotExist(err), "usage errors must not create %s", empty)

	for _, args := range [][]string{
		{"tenant", "list"},
		{"tenant", "rotate-key", "acme"},
		{"tenant", "rotate-signing-key", "acme"},
		{"tenant", "delete", "acme", "--force"},
		{"tenant", "token", "acme", "--subtenant", "c1"},
	} {
		t.Run("no registry "+strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := gust(t, append(args, "--state-dir", empty)...)
			require.Equal(t, 1, code, "stdout=%q stderr=%q", stdout, stderr)
			require.Equal(t, "gust: no tenant registry at "+filepath.Join(empty, "tenants.db")+": run gust dev or gust tenant create\n", stderr)
			_, err := os.Stat(empty)
			require.True(t, os.IsNotExist(err), "%v must not create %s", args, empty)
		})
	}

	// Duplicates and unknown tenants, on a real registry.
	createTenant(t, state, "acme")
	for _, args := range [][]string{
		{"tenant", "create", "acme"},
		{"tenant", "rotate-key", "nobody"},
		{"tenant", "rotate-signing-key", "nobody"},
		{"tenant", "token", "nobody", "--subtenant", "c1"},
		{"tenant", "delete", "nobody"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, code := gust(t, append(args, "--state-dir", state)...)
			require.Equal(t, 2, code, "stdout=%q stderr=%q", stdout, stderr)
			require.Len(t, strings.Split(strings.TrimSpace(stderr), "\n"), 1, "one line: %q", stderr)
			require.Empty(t, stdout)
		})
	}
	fi, err := os.Stat(filepath.Join(state, "tenants.db"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), "the registry holds secrets")
}

// TestCLITenantCreateShowsSecretOnce: the text form shows the secret
// exactly once with the warning; list, in both forms, shows key ids and
// never a secret; token prints a token scoped as asked.
func TestCLITenantCreateShowsSecretOnce(t *testing.T) {
	state := t.TempDir()
	stdout, stderr, code := gust(t, "tenant", "create", "globex", "--state-dir", state)
	require.Equal(t, 0, code, "stderr=%s", stderr)
	require.Contains(t, stdout, "cannot be shown again")
	m := regexp.MustCompile(`secret access key\s+(\S{40})`).FindStringSubmatch(stdout)
	require.NotNil(t, m, "no secret in %q", stdout)
	secret := m[1]
	require.Equal(t, 1, strings.Count(stdout, secret))
	akid := regexp.MustCompile(`AKIA[A-Z2-7]{16}`).FindString(stdout)
	require.NotEmpty(t, akid)

	k := createTenant(t, state, "initech")
	for _, format := range []string{"text", "json"} {
		out, stderr, code := gust(t, "tenant", "list", "--state-dir", state, "--output", format)
		require.Equal(t, 0, code, "stderr=%s", stderr)
		for _, want := range []string{"globex", "initech", akid, k.AccessKeyID, k.AccountID} {
			require.Contains(t, out, want, format)
		}
		for _, s := range []string{secret, k.SecretAccessKey} {
			require.NotContains(t, out, s, "list must never show a secret")
			require.NotContains(t, stderr, s)
		}
	}
	out, _, _ := gust(t, "tenant", "list", "--state-dir", state, "--output", "json")
	var rows []map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rows))
	require.Len(t, rows, 2)
	require.Equal(t, "globex", rows[0]["tenant"])
	require.Nil(t, rows[0]["last_used"], "never used")

	out, stderr, code = gust(t, "tenant", "token", "initech", "--subtenant", "customer-1", "--function", "echo", "--ttl", "10m", "--state-dir", state)
	require.Equal(t, 0, code, "stderr=%s", stderr)
	tok := strings.TrimSpace(out)
	require.Regexp(t, `^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`, tok, "a JWT alone on stdout")
	require.Contains(t, stderr, `sub-tenant "customer-1"`)
	claims := jwtClaims(t, tok)
	require.Equal(t, "customer-1", claims["sub"])
	require.Equal(t, "echo", claims["fn"])
	require.Equal(t, "initech", claims["tenant"])
	require.InDelta(t, 600, claims["exp"].(float64)-claims["iat"].(float64), 1)

	// A rotated signing key keeps older tokens' kid out of new tokens.
	out, stderr, code = gust(t, "tenant", "rotate-signing-key", "initech", "--grace", "0s", "--state-dir", state, "--output", "json")
	require.Equal(t, 0, code, "stderr=%s", stderr)
	require.Contains(t, out, `"tenant":"initech"`)
	out, _, code = gust(t, "tenant", "token", "initech", "--subtenant", "customer-1", "--state-dir", state, "--output", "json")
	require.Equal(t, 0, code)
	var tj struct{ Token string }
	require.NoError(t, json.Unmarshal([]byte(out), &tj))
	require.NotEqual(t, jwtHeader(t, tok)["kid"], jwtHeader(t, tj.Token)["kid"])
}

func jwtPart(t *testing.T, tok string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	b, err := base64RawURL(parts[i])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m))
	return m
}

func base64RawURL(s string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(s) }

func jwtHeader(t *testing.T, tok string) map[string]any { return jwtPart(t, tok, 0) }
func jwtClaims(t *testing.T, tok string) map[string]any { return jwtPart(t, tok, 1) }

// TestCLITenantsAgainstDev is the tenant lifecycle against a real `gust
// dev`: its credentials files, the printed command, keys that work with
// the AWS SDK (and the AWS CLI when there is one) while a wrong secret
// fails, rotation with a grace period, delete refused while the tenant
// owns resources and --force removing them, and a restart keeping the
// default key.
func TestCLITenantsAgainstDev(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Minute)
	defer cancel()
	state := t.TempDir()
	d := itest.StartDev(t, "--state-dir", state, "--cloud-isolation", "none", "--cloud-boot", "100ms")

	// The credentials files: 0600, the fixed profile, loadable by the SDK.
	credFile := filepath.Join(state, "credentials")
	platFile := filepath.Join(state, "platform-credentials")
	for _, f := range []string{credFile, platFile} {
		fi, err := os.Stat(f)
		require.NoError(t, err)
		require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), f)
	}
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedCredentialsFiles([]string{credFile}),
		config.WithSharedConfigFiles([]string{filepath.Join(state, "no-config")}),
		config.WithSharedConfigProfile("gust"),
		config.WithRegion("us-east-1"))
	require.NoError(t, err)
	def, err := cfg.Credentials.Retrieve(ctx)
	require.NoError(t, err)
	require.Regexp(t, `^AKIA`, def.AccessKeyID)
	raw, err := os.ReadFile(credFile)
	require.NoError(t, err)
	require.Contains(t, string(raw), "[gust]\n")
	require.NotContains(t, d.Stdout(), def.SecretAccessKey, "gust dev must never print a secret")
	require.Contains(t, d.Stdout(), def.AccessKeyID)
	plat, err := os.ReadFile(platFile)
	require.NoError(t, err)
	require.Contains(t, string(plat), "[gust-platform]\n")

	// The printed command works: with the AWS CLI when there is one, else
	// the same credentials through the SDK.
	line := printedAWSCommand(t, d.Stdout())
	require.Contains(t, line, "AWS_SHARED_CREDENTIALS_FILE="+credFile)
	require.Contains(t, line, "AWS_PROFILE=gust")
	require.Contains(t, line, "--endpoint-url "+d.Cloud)
	if cli := awsCLI(); cli != "" {
		out, err := runAWSCLI(t, cli, line)
		require.NoError(t, err, "%s: %s", line, out)
		require.Contains(t, out, `"Functions"`)
	} else {
		t.Log("no AWS CLI (set GUST_AWS_CLI or put aws on PATH): checking the printed credentials with the SDK only")
	}
	_, code, err := listFunctions(ctx, d.Cloud, def.AccessKeyID, def.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code, "the default tenant's key must work")

	// A new tenant's key works; the same key with a wrong secret does not.
	acme := createTenant(t, state, "acme")
	fns, code, err := listFunctions(ctx, d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code)
	require.Empty(t, fns)
	wrong := acme.SecretAccessKey[:39] + flip(acme.SecretAccessKey[39])
	_, code, err = listFunctions(ctx, d.Cloud, acme.AccessKeyID, wrong)
	require.NoError(t, err)
	require.Equal(t, "InvalidSignatureException", code)
	_, err = tenantEC2(d.Cloud, acme.AccessKeyID, wrong).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
	requireAPIError(t, err, "SignatureDoesNotMatch")
	if cli := awsCLI(); cli != "" {
		bad := filepath.Join(t.TempDir(), "bad-credentials")
		require.NoError(t, os.WriteFile(bad, []byte("[gust]\naws_access_key_id = "+acme.AccessKeyID+"\naws_secret_access_key = "+wrong+"\n"), 0o600))
		out, err := runAWSCLI(t, cli, strings.Replace(line, "AWS_SHARED_CREDENTIALS_FILE="+credFile, "AWS_SHARED_CREDENTIALS_FILE="+bad, 1))
		require.Error(t, err, "a wrong secret must fail: %s", out)
		require.Contains(t, out, "InvalidSignatureException")
	}

	// Rotation: the new key works at once; the old one during the grace
	// period, then no more.
	const grace = 10 * time.Second
	rotated := time.Now()
	out, stderr, code2 := gust(t, "tenant", "rotate-key", "acme", "--grace", grace.String(), "--state-dir", state, "--output", "json")
	require.Equal(t, 0, code2, "stderr=%s", stderr)
	var nk tenantKey
	require.NoError(t, json.Unmarshal([]byte(out), &nk))
	require.NotEqual(t, acme.AccessKeyID, nk.AccessKeyID)
	_, code, err = listFunctions(ctx, d.Cloud, nk.AccessKeyID, nk.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code, "the new key works at once")
	_, code, err = listFunctions(ctx, d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
	require.NoError(t, err)
	if time.Since(rotated) < grace-time.Second {
		require.Empty(t, code, "the old key works during the grace period")
	} else {
		t.Log("the machine is too slow to check the old key inside its grace period")
	}
	list, _, _ := gust(t, "tenant", "list", "--state-dir", state)
	require.Contains(t, list, acme.AccessKeyID, "the old key is listed with its expiry during the grace period")
	itest.WaitFor(t, 2*time.Minute, "the old key kept working after its grace period", func() bool {
		_, code, err := listFunctions(ctx, d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
		return err == nil && code == "UnrecognizedClientException"
	})
	acme.AccessKeyID, acme.SecretAccessKey = nk.AccessKeyID, nk.SecretAccessKey

	// Delete is refused while the tenant owns a function or a live
	// instance, and when the cloud cannot be asked; --force removes them.
	lc := itest.TenantLambda(d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
	_, err = lc.CreateFunction(ctx, &lambda.CreateFunctionInput{
		FunctionName:  aws.String("doomed"),
		Role:          aws.String("arn:aws:iam::" + acme.AccountID + ":role/fn"),
		Runtime:       lambdatypes.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Code:          &lambdatypes.FunctionCode{ZipFile: bootstrapZip(t)},
		TenancyConfig: &lambdatypes.TenancyConfig{TenantIsolationMode: lambdatypes.TenantIsolationModePerTenant},
	})
	require.NoError(t, err)
	ec := tenantEC2(d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
	run, err := ec.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2), InstanceType: ec2types.InstanceTypeM5Large, ImageId: aws.String("ami-12345678"),
	})
	require.NoError(t, err)
	require.Len(t, run.Instances, 2)
	// Another tenant's instance, which acme's delete must never touch.
	other := createTenant(t, state, "bystander")
	otherRun, err := tenantEC2(d.Cloud, other.AccessKeyID, other.SecretAccessKey).RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), InstanceType: ec2types.InstanceTypeM5Large, ImageId: aws.String("ami-12345678"),
	})
	require.NoError(t, err)

	out, stderr, code2 = gust(t, "tenant", "delete", "acme", "--state-dir", state, "--endpoint", d.Cloud)
	require.Equal(t, 1, code2, "stdout=%s stderr=%s", out, stderr)
	require.Contains(t, stderr, "1 function (doomed)")
	require.Contains(t, stderr, "2 live instances")
	require.Contains(t, stderr, "--force")

	closed := "http://127.0.0.1:" + strconv.Itoa(itest.FreePort(t))
	out, stderr, code2 = gust(t, "tenant", "delete", "acme", "--state-dir", state, "--endpoint", closed)
	require.Equal(t, 1, code2, "stdout=%s stderr=%s", out, stderr)
	require.Contains(t, stderr, "cannot be reached")
	_, code, err = listFunctions(ctx, d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code, "a refused delete leaves the tenant working")

	out, stderr, code2 = gust(t, "tenant", "delete", "acme", "--force", "--state-dir", state, "--endpoint", d.Cloud, "--output", "json")
	require.Equal(t, 0, code2, "stdout=%s stderr=%s", out, stderr)
	var del struct {
		Deleted             bool     `json:"deleted"`
		CloudChecked        bool     `json:"cloud_checked"`
		FunctionsDeleted    []string `json:"functions_deleted"`
		InstancesTerminated []string `json:"instances_terminated"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &del))
	require.True(t, del.Deleted)
	require.True(t, del.CloudChecked)
	require.Equal(t, []string{"doomed"}, del.FunctionsDeleted)
	require.ElementsMatch(t, []string{aws.ToString(run.Instances[0].InstanceId), aws.ToString(run.Instances[1].InstanceId)}, del.InstancesTerminated)

	// The deleted tenant's key stops working at once.
	_, code, err = listFunctions(ctx, d.Cloud, acme.AccessKeyID, acme.SecretAccessKey)
	require.NoError(t, err)
	require.Equal(t, "UnrecognizedClientException", code)
	// The bystander's instance is untouched.
	desc, err := tenantEC2(d.Cloud, other.AccessKeyID, other.SecretAccessKey).DescribeInstances(ctx, &ec2.DescribeInstancesInput{
		InstanceIds: []string{aws.ToString(otherRun.Instances[0].InstanceId)},
	})
	require.NoError(t, err)
	require.Len(t, desc.Reservations, 1)
	require.NotEqual(t, ec2types.InstanceStateNameTerminated, desc.Reservations[0].Instances[0].State.Name)
	// A tenant of the same name again is the same account, and owns
	// nothing: the function went with --force.
	again := createTenant(t, state, "acme")
	require.Equal(t, acme.AccountID, again.AccountID)
	fns, code, err = listFunctions(ctx, d.Cloud, again.AccessKeyID, again.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code)
	require.Empty(t, fns)

	// --force with the cloud out of reach still deletes, and says so.
	out, stderr, code2 = gust(t, "tenant", "delete", "acme", "--force", "--state-dir", state, "--endpoint", closed)
	require.Equal(t, 0, code2, "stdout=%s stderr=%s", out, stderr)
	require.Contains(t, stderr, "without removing")
	require.Contains(t, out, "Deleted tenant acme")

	// A restart keeps the default tenant's key, and rewrites the file.
	d.Stop(t)
	require.NoError(t, os.WriteFile(credFile, []byte("stale"), 0o600))
	d = itest.StartDev(t, "--state-dir", state, "--cloud-isolation", "none")
	defer d.Stop(t)
	raw2, err := os.ReadFile(credFile)
	require.NoError(t, err)
	require.Equal(t, string(raw), string(raw2), "the same default key after a restart")
	_, code, err = listFunctions(ctx, d.Cloud, def.AccessKeyID, def.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code)
	list, _, _ = gust(t, "tenant", "list", "--state-dir", state)
	require.Contains(t, list, "bystander")
	require.NotContains(t, list, "acme")
}

// TestCLIDevEphemeralWritesCredentials: with --ephemeral the registry is
// temporary, but clients still find the credentials in --state-dir.
func TestCLIDevEphemeralWritesCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	state := filepath.Join(t.TempDir(), "fresh")
	d := itest.StartDev(t, "--ephemeral", "--ui-port", "0", "--state-dir", state)
	defer d.Stop(t)
	credFile := filepath.Join(state, "credentials")
	fi, err := os.Stat(credFile)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = os.Stat(filepath.Join(state, "tenants.db"))
	require.True(t, os.IsNotExist(err), "--ephemeral keeps the registry out of --state-dir")
	cfg, err := config.LoadDefaultConfig(ctx,
		config.WithSharedCredentialsFiles([]string{credFile}),
		config.WithSharedConfigFiles([]string{filepath.Join(state, "no-config")}),
		config.WithSharedConfigProfile("gust"), config.WithRegion("us-east-1"))
	require.NoError(t, err)
	cr, err := cfg.Credentials.Retrieve(ctx)
	require.NoError(t, err)
	_, code, err := listFunctions(ctx, d.Cloud, cr.AccessKeyID, cr.SecretAccessKey)
	require.NoError(t, err)
	require.Empty(t, code)
	require.Contains(t, d.Stdout(), "AWS_SHARED_CREDENTIALS_FILE="+credFile)
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}

func requireAPIError(t *testing.T, err error, code string) {
	t.Helper()
	var apiErr smithy.APIError
	require.True(t, errors.As(err, &apiErr), "want %s, got %v", code, err)
	require.Equal(t, code, apiErr.ErrorCode())
}

// printedAWSCommand finds the AWS CLI command gust dev printed.
func printedAWSCommand(t *testing.T, stdout string) string {
	t.Helper()
	for _, l := range strings.Split(stdout, "\n") {
		if strings.Contains(l, "aws --endpoint-url") {
			return strings.TrimSpace(l)
		}
	}
	t.Fatalf("gust dev printed no aws command:\n%s", stdout)
	return ""
}

// awsCLI is the AWS CLI to run: GUST_AWS_CLI, else aws on the PATH.
func awsCLI() string {
	if p := os.Getenv("GUST_AWS_CLI"); p != "" {
		return p
	}
	p, _ := exec.LookPath("aws")
	return p
}

// runAWSCLI runs a printed `VAR=... aws ...` line with sh, with the CLI at
// cli first on the PATH and none of the caller's AWS settings.
func runAWSCLI(t *testing.T, cli, line string) (string, error) {
	t.Helper()
	bin := t.TempDir()
	require.NoError(t, os.Symlink(cli, filepath.Join(bin, "aws")))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", line)
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "PATH=") {
			continue
		}
		env = append(env, kv)
	}
	cmd.Env = append(env, "PATH="+bin+string(os.PathListSeparator)+os.Getenv("PATH"), "AWS_CONFIG_FILE="+filepath.Join(bin, "no-config"))
	out, err := cmd.CombinedOutput()
	return string(out), err
}
