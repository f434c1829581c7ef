package localcloud_test

import (
	"context"
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/gust-dev/gust/tenants"
)

// TestAccountsThroughEveryAPI: tenant A cannot see or touch tenant B's
// instances, capacity reservations or functions through any API; B's ids
// and names answer exactly as ones that do not exist.
func TestAccountsThroughEveryAPI(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, "acme", "globex")
	acmeEC2, globexEC2 := ec2Client(srv, static(creds["acme"])), ec2Client(srv, static(creds["globex"]))
	acmeFn, globexFn := lambdaClient(srv, static(creds["acme"])), lambdaClient(srv, static(creds["globex"]))

	// acme's resources.
	run, err := acmeEC2.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: "m5.large",
		MinCount: aws.Int32(2), MaxCount: aws.Int32(2), ClientToken: aws.String("tok")})
	require.NoError(t, err)
	var ids []string
	for _, in := range run.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}
	cr, err := acmeEC2.CreateCapacityReservation(ctx, &awsec2.CreateCapacityReservationInput{InstanceType: aws.String("m5.large"),
		InstancePlatform: ec2types.CapacityReservationInstancePlatformLinuxUnix, AvailabilityZone: aws.String("us-east-1a"),
		InstanceCount: aws.Int32(2)})
	require.NoError(t, err)
	crID := aws.ToString(cr.CapacityReservation.CapacityReservationId)
	fn, err := acmeFn.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("secret"),
		Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Code:        &lambdatypes.FunctionCode{ZipFile: shellZip(t)},
		Environment: &lambdatypes.Environment{Variables: map[string]string{"API_KEY": "acme-secret"}}})
	require.NoError(t, err)
	assert.Contains(t, aws.ToString(fn.FunctionArn), ":"+tenants.AccountID("acme")+":function:secret")

	// EC2: nothing of acme's is globex's.
	desc, err := globexEC2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	require.NoError(t, err)
	assert.Empty(t, desc.Reservations)
	_, err = globexEC2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: ids})
	assert.Equal(t, "InvalidInstanceID.NotFound", code(t, err))
	_, err = globexEC2.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: ids})
	assert.Equal(t, "InvalidInstanceID.NotFound", code(t, err))
	crs, err := globexEC2.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{})
	require.NoError(t, err)
	assert.Empty(t, crs.CapacityReservations)
	_, err = globexEC2.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{CapacityReservationIds: []string{crID}})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", code(t, err))
	_, err = globexEC2.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID)})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", code(t, err))
	_, err = globexEC2.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-1"), InstanceType: "m5.large",
		MinCount: aws.Int32(1), MaxCount: aws.Int32(1), CapacityReservationSpecification: &ec2types.CapacityReservationSpecification{
			CapacityReservationTarget: &ec2types.CapacityReservationTarget{CapacityReservationId: aws.String(crID)}}})
	assert.Equal(t, "InvalidCapacityReservationId.NotFound", code(t, err))

	// Lambda: by name, by ARN, every operation.
	assert.Empty(t, mustList(t, globexFn))
	for _, name := range []string{"secret", aws.ToString(fn.FunctionArn), tenants.AccountID("acme") + ":function:secret"} {
		_, err = globexFn.GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String(name)})
		assert.Equal(t, "ResourceNotFoundException", code(t, err), name)
		_, err = globexFn.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String(name)})
		assert.Equal(t, "ResourceNotFoundException", code(t, err), name)
		_, err = globexFn.Invoke(ctx, &awslambda.InvokeInput{FunctionName: aws.String(name), Payload: []byte(`{}`)})
		assert.Equal(t, "ResourceNotFoundException", code(t, err), name)
		_, err = globexFn.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String(name),
			Environment: &lambdatypes.Environment{Variables: map[string]string{"API_KEY": "stolen"}}})
		assert.Equal(t, "ResourceNotFoundException", code(t, err), name)
		_, err = globexFn.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String(name), ZipFile: shellZip(t)})
		assert.Equal(t, "ResourceNotFoundException", code(t, err), name)
		_, err = globexFn.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String(name)})
		assert.Equal(t, "ResourceNotFoundException", code(t, err), name)
	}

	// acme's resources are untouched.
	got, err := acmeFn.GetFunctionConfiguration(ctx, &awslambda.GetFunctionConfigurationInput{FunctionName: aws.String("secret")})
	require.NoError(t, err)
	assert.Equal(t, "acme-secret", got.Environment.Variables["API_KEY"])
	desc, err = acmeEC2.DescribeInstances(ctx, &awsec2.DescribeInstancesInput{InstanceIds: ids})
	require.NoError(t, err)
	for _, r := range desc.Reservations {
		assert.Equal(t, tenants.AccountID("acme"), aws.ToString(r.OwnerId))
		for _, in := range r.Instances {
			assert.NotEqual(t, ec2types.InstanceStateNameTerminated, in.State.Name)
		}
	}
	_, err = acmeEC2.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(crID)})
	require.NoError(t, err)
}

func mustList(t *testing.T, c *awslambda.Client) []string {
	t.Helper()
	out, err := c.ListFunctions(context.Background(), &awslambda.ListFunctionsInput{})
	require.NoError(t, err)
	var names []string
	for _, f := range out.Functions {
		names = append(names, aws.ToString(f.FunctionName))
	}
	return names
}

// TestPlatformAssumesTenantRoles: the platform's principal acts for a
// tenant only through STS AssumeRole with aws-sdk-go-v2's stscreds; the
// temporary credentials act in that tenant's account alone; a tenant's
// key cannot assume; expired temporary credentials are refused.
func TestPlatformAssumesTenantRoles(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	srv, creds := startCloudAt(t, dir, "acme", "globex")
	platform, err := srv.Registry().PlatformCredentials(ctx)
	require.NoError(t, err)
	_, err = lambdaClient(srv, static(creds["acme"])).CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String("a-fn"),
		Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"), Role: aws.String("arn:aws:iam::000000000000:role/x"),
		Code: &lambdatypes.FunctionCode{ZipFile: shellZip(t)}})
	require.NoError(t, err)
	_, err = ec2Client(srv, static(creds["globex"])).RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-1"),
		InstanceType: "m5.large", MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)

	platformSTS := stsClient(srv, static(platform))
	id, err := platformSTS.GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, tenants.PlatformAccountID, aws.ToString(id.Account))

	// The platform itself acts for no account.
	_, err = lambdaClient(srv, static(platform)).ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	assert.Equal(t, "AccessDeniedException", code(t, err))
	_, err = ec2Client(srv, static(platform)).DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	assert.Equal(t, "UnauthorizedOperation", code(t, err))

	assume := func(tenant string) aws.CredentialsProvider {
		return aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(platformSTS, tenants.PlatformRoleARN(tenant),
			func(o *stscreds.AssumeRoleOptions) { o.RoleSessionName = "gust-worker" }))
	}
	asAcme, asGlobex := assume("acme"), assume("globex")

	// Temporary credentials of acme see acme's function, and nothing of
	// globex's; and the reverse.
	assert.Equal(t, []string{"a-fn"}, mustList(t, lambdaClient(srv, asAcme)))
	assert.Empty(t, mustList(t, lambdaClient(srv, asGlobex)))
	desc, err := ec2Client(srv, asAcme).DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	require.NoError(t, err)
	assert.Empty(t, desc.Reservations, "acme's session sees none of globex's instances")
	desc, err = ec2Client(srv, asGlobex).DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	require.NoError(t, err)
	assert.Len(t, desc.Reservations, 1)
	_, err = lambdaClient(srv, asGlobex).GetFunction(ctx, &awslambda.GetFunctionInput{FunctionName: aws.String("a-fn")})
	assert.Equal(t, "ResourceNotFoundException", code(t, err))

	sessionID, err := stsClient(srv, asAcme).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, tenants.AccountID("acme"), aws.ToString(sessionID.Account))
	assert.Equal(t, "arn:aws:sts::"+tenants.AccountID("acme")+":assumed-role/"+tenants.PlatformRoleName+"/gust-worker", aws.ToString(sessionID.Arn))
	assert.True(t, strings.HasPrefix(aws.ToString(sessionID.UserId), "AROA") && strings.HasSuffix(aws.ToString(sessionID.UserId), ":gust-worker"))

	// The raw response: Credentials and AssumedRoleUser as AWS shapes them.
	out, err := platformSTS.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String(tenants.PlatformRoleARN("acme")),
		RoleSessionName: aws.String("raw"), DurationSeconds: aws.Int32(900)})
	require.NoError(t, err)
	assert.True(t, strings.HasPrefix(aws.ToString(out.Credentials.AccessKeyId), "ASIA"))
	assert.NotEmpty(t, aws.ToString(out.Credentials.SessionToken))
	assert.WithinDuration(t, time.Now().Add(15*time.Minute), aws.ToTime(out.Credentials.Expiration), time.Minute)
	assert.Equal(t, "arn:aws:sts::"+tenants.AccountID("acme")+":assumed-role/"+tenants.PlatformRoleName+"/raw", aws.ToString(out.AssumedRoleUser.Arn))
	assert.True(t, strings.HasSuffix(aws.ToString(out.AssumedRoleUser.AssumedRoleId), ":raw"))
	raw := tenants.Credentials{AccessKeyID: aws.ToString(out.Credentials.AccessKeyId),
		SecretAccessKey: aws.ToString(out.Credentials.SecretAccessKey), SessionToken: aws.ToString(out.Credentials.SessionToken)}
	assert.Equal(t, []string{"a-fn"}, mustList(t, lambdaClient(srv, static(raw))))
	noToken := raw
	noToken.SessionToken = ""
	_, err = lambdaClient(srv, static(noToken)).ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	assert.Equal(t, "UnrecognizedClientException", code(t, err), "temporary credentials need their session token")
	wrongToken := raw
	flip := "x"
	if raw.SessionToken[0] == 'x' { // a changed token, whatever the first character
		flip = "y"
	}
	wrongToken.SessionToken = flip + raw.SessionToken[1:]
	_, err = stsClient(srv, static(wrongToken)).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	assert.Equal(t, "InvalidClientTokenId", code(t, err))

	// Who may not assume, and what.
	denied := []struct {
		name   string
		caller aws.CredentialsProvider
		role   string
	}{
		{"a tenant's key, its own role", static(creds["acme"]), tenants.PlatformRoleARN("acme")},
		{"a tenant's key, another's role", static(creds["acme"]), tenants.PlatformRoleARN("globex")},
		{"temporary credentials", static(raw), tenants.PlatformRoleARN("globex")},
		{"the platform, an unknown tenant", static(platform), tenants.PlatformRoleARN("nobody")},
		{"the platform, another role name", static(platform), "arn:aws:iam::" + tenants.AccountID("acme") + ":role/admin"},
	}
	for _, c := range denied {
		_, err := stsClient(srv, c.caller).AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String(c.role), RoleSessionName: aws.String("s1")})
		assert.Equal(t, "AccessDenied", code(t, err), c.name)
		if err != nil {
			assert.Contains(t, err.Error(), "is not authorized to perform: sts:AssumeRole on resource: "+c.role, c.name)
		}
	}
	for name, in := range map[string]*awssts.AssumeRoleInput{
		"duration too short": {RoleArn: aws.String(tenants.PlatformRoleARN("acme")), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(60)},
		"duration too long":  {RoleArn: aws.String(tenants.PlatformRoleARN("acme")), RoleSessionName: aws.String("s1"), DurationSeconds: aws.Int32(43201)},
		"bad session name":   {RoleArn: aws.String(tenants.PlatformRoleARN("acme")), RoleSessionName: aws.String("no spaces")},
	} {
		_, err := platformSTS.AssumeRole(ctx, in)
		assert.Equal(t, "ValidationError", code(t, err), name)
	}

	// Expired temporary credentials are refused. Sessions last 15 minutes
	// at least, so the test moves the session's expiry into the past in
	// the registry file, as time passing would.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "tenants.db")+"?_pragma=busy_timeout(10000)")
	require.NoError(t, err)
	defer db.Close()
	res, err := db.Exec(`UPDATE sessions SET expires = 1 WHERE access_key_id = ?`, raw.AccessKeyID)
	require.NoError(t, err)
	n, err := res.RowsAffected()
	require.NoError(t, err)
	require.Equal(t, int64(1), n)
	_, err = lambdaClient(srv, static(raw)).ListFunctions(ctx, &awslambda.ListFunctionsInput{})
	assert.Equal(t, "UnrecognizedClientException", code(t, err))
	_, err = ec2Client(srv, static(raw)).DescribeInstances(ctx, &awsec2.DescribeInstancesInput{})
	assert.Equal(t, "AuthFailure", code(t, err))
}

// TestSTSQueryForms: STS takes its parameters from a form-encoded POST or
// from a GET's query, and answers actions it does not implement, and
// missing parameters, with STS's codes.
func TestSTSQueryForms(t *testing.T) {
	srv, creds := startCloud(t, "acme")
	platform, err := srv.Registry().PlatformCredentials(context.Background())
	require.NoError(t, err)
	s := signer{keyID: platform.AccessKeyID, secret: platform.SecretAccessKey, service: "sts"}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}

	got := send(t, s.sign(t, http.MethodGet, srv.Endpoint()+"/?Action=GetCallerIdentity&Version=2011-06-15", nil, nil))
	assert.Equal(t, http.StatusOK, got.status, got.body)
	assert.Contains(t, got.body, "<Account>"+tenants.PlatformAccountID+"</Account>")
	assert.Contains(t, got.body, `<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">`)

	got = send(t, s.sign(t, http.MethodGet, srv.Endpoint()+"/?Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1&RoleArn="+
		url.QueryEscape(tenants.PlatformRoleARN("acme")), nil, nil))
	assert.Equal(t, http.StatusOK, got.status, got.body)
	assert.Contains(t, got.body, "<SessionToken>")

	for body, want := range map[string]response{
		"Action=GetSessionToken&Version=2011-06-15":                        {status: 400, code: "InvalidAction"},
		"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1":          {status: 400, code: "ValidationError"},
		"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::1:role": {status: 400, code: "ValidationError"},
		"Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1&DurationSeconds=x&RoleArn=" + url.QueryEscape(tenants.PlatformRoleARN("acme")): {
			status: 400, code: "ValidationError"},
	} {
		got := send(t, s.sign(t, http.MethodPost, srv.Endpoint()+"/", []byte(body), form))
		assert.Equal(t, want.status, got.status, body)
		assert.Equal(t, want.code, got.code, body)
		assert.Contains(t, got.body, "<ErrorResponse", body)
	}

	// A tenant's own key may call GetCallerIdentity, not AssumeRole.
	acme := signer{keyID: creds["acme"].AccessKeyID, secret: creds["acme"].SecretAccessKey, service: "sts"}
	got = send(t, acme.sign(t, http.MethodPost, srv.Endpoint()+"/", []byte("Action=AssumeRole&Version=2011-06-15&RoleSessionName=s1&RoleArn="+
		url.QueryEscape(tenants.PlatformRoleARN("acme"))), form))
	assert.Equal(t, http.StatusForbidden, got.status)
	assert.Equal(t, "AccessDenied", got.code)
	assert.Contains(t, got.body, "User: arn:aws:iam::"+tenants.AccountID("acme")+":root is not authorized to perform: sts:AssumeRole")
}
