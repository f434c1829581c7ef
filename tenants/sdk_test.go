package tenants

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/gust-dev/gust/tenants/sigv4"
)

type staticCreds Credentials

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Source: "test"}, nil
}

// TestSDKClients sends requests from unmodified SDK clients to a server
// that authenticates them against the registry: Lambda's REST API with a
// function ARN (escaped twice in the canonical path) and a tenant id,
// EC2's and STS's form-encoded query APIs; with a long-term key, with
// temporary credentials from AssumeRole, and with a wrong secret.
func TestSDKClients(t *testing.T) {
	ctx := context.Background()
	r, _, _ := newRegistry(t)
	r.now = time.Now // the SDK signs with the real clock
	acme, err := r.Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	plat, _ := r.PlatformCredentials(ctx)
	session, err := r.AssumeRole(ctx, Principal{AccessKeyID: plat.AccessKeyID, Platform: true}, PlatformRoleARN("acme"), "worker", 0)
	if err != nil {
		t.Fatal(err)
	}

	var last Principal
	var lastSigned sigv4.Signed
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		p, s, err := r.Authenticate(req, body)
		if err != nil {
			w.Header().Set("X-Amzn-ErrorType", "InvalidSignatureException")
			w.WriteHeader(403)
			w.Write([]byte(`{"message":"` + err.Error() + `"}`))
			return
		}
		last, lastSigned = p, s
		switch s.Service {
		case "lambda":
			w.Header().Set("X-Amz-Executed-Version", "$LATEST")
			w.Write([]byte(`"ok"`))
		case "ec2":
			w.Header().Set("Content-Type", "text/xml")
			w.Write([]byte(`<DescribeInstancesResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"><requestId>1</requestId><reservationSet/></DescribeInstancesResponse>`))
		case "sts":
			w.Header().Set("Content-Type", "text/xml")
			w.Write([]byte(`<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><GetCallerIdentityResult><Account>123456789012</Account><Arn>arn:aws:iam::123456789012:root</Arn><UserId>x</UserId></GetCallerIdentityResult><ResponseMetadata><RequestId>1</RequestId></ResponseMetadata></GetCallerIdentityResponse>`))
		}
	}))
	defer srv.Close()

	for _, c := range []struct {
		name  string
		creds Credentials
		want  Principal
	}{
		{"long-term", acme, Principal{Tenant: "acme", AccessKeyID: acme.AccessKeyID}},
		{"assumed role", session, Principal{Tenant: "acme", AccessKeyID: session.AccessKeyID, RoleARN: PlatformRoleARN("acme"), SessionName: "worker"}},
	} {
		cfg := aws.Config{Region: "us-east-1", Credentials: staticCreds(c.creds), BaseEndpoint: aws.String(srv.URL),
			RetryMaxAttempts: 1}
		out, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{
			FunctionName: aws.String("arn:aws:lambda:us-east-1:" + AccountID("acme") + ":function:my-fn"),
			Qualifier:    aws.String("$LATEST"),
			Payload:      []byte(`{"a":"b c"}`),
			TenantId:     aws.String("customer 7/x"),
		})
		if err != nil {
			t.Fatalf("%s: lambda Invoke: %v", c.name, err)
		}
		if string(out.Payload) != `"ok"` || last != c.want || lastSigned.Service != "lambda" {
			t.Fatalf("%s: lambda Invoke: %q, principal %+v", c.name, out.Payload, last)
		}
		if _, err := ec2.NewFromConfig(cfg).DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{"i-1", "i-2"}}); err != nil {
			t.Fatalf("%s: ec2 DescribeInstances: %v", c.name, err)
		}
		if last != c.want || lastSigned.Service != "ec2" {
			t.Fatalf("%s: ec2: principal %+v, %+v", c.name, last, lastSigned)
		}
		if _, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{}); err != nil {
			t.Fatalf("%s: sts GetCallerIdentity: %v", c.name, err)
		}
	}

	wrong := acme
	// Another first character: a secret that already began with the
	// replacement (one in 64) was no wrong secret at all.
	first := "x"
	if acme.SecretAccessKey[0] == 'x' {
		first = "y"
	}
	wrong.SecretAccessKey = first + acme.SecretAccessKey[1:]
	cfg := aws.Config{Region: "us-east-1", Credentials: staticCreds(wrong), BaseEndpoint: aws.String(srv.URL), RetryMaxAttempts: 1}
	if _, err := lambda.NewFromConfig(cfg).Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String("my-fn")}); err == nil {
		t.Fatal("wrong secret accepted")
	}
}
