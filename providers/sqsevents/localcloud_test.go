package sqsevents_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/lambda"
	ec2provider "github.com/gust-dev/gust/providers/ec2"
	"github.com/gust-dev/gust/providers/sqsevents"
	"github.com/gust-dev/gust/tenants"
)

// TestLocalCloudEvents reads the local cloud's own queue as a worker does:
// with the platform's key, assuming each tenant's role. A tenant's launch
// shows as its running events (its pending ones are deleted unhandled:
// no fleet needs them), and in its queue only.
func TestLocalCloudEvents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a local cloud")
	}
	ctx := context.Background()
	srv, err := localcloud.Start(localcloud.Config{StateDir: t.TempDir(), BootDelay: 50 * time.Millisecond,
		Lambda: lambda.Config{WarmSandboxes: -1}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	acme, err := srv.Registry().Create(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.Registry().Create(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	platform, err := srv.Registry().PlatformCredentials(ctx)
	if err != nil {
		t.Fatal(err)
	}
	queues, err := sqsevents.NewAccountsFromConfig(ctx, sqsevents.Options{
		Endpoint:    srv.Endpoint(),
		Credentials: credentials.NewStaticCredentialsProvider(platform.AccessKeyID, platform.SecretAccessKey, ""),
		Roles:       func(t string) (string, bool) { return tenants.PlatformRoleARN(t), true },
		Queue:       sqsevents.LocalCloudQueue,
	})
	if err != nil {
		t.Fatal(err)
	}

	ec2 := awsec2.NewFromConfig(aws.Config{Region: "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(acme.AccessKeyID, acme.SecretAccessKey, acme.SessionToken)},
		func(o *awsec2.Options) { o.BaseEndpoint = aws.String(srv.Endpoint()) })
	out, err := ec2.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String(ec2provider.LocalCloudImageID),
		InstanceType: types.InstanceTypeM5Large, MinCount: aws.Int32(2), MaxCount: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, in := range out.Instances {
		ids = append(ids, aws.ToString(in.InstanceId))
	}

	seen := map[string][]string{} // instance → states
	ignored := 0
	deadline := time.Now().Add(10 * time.Second)
	for !(slices.Contains(seen[ids[0]], "running") && slices.Contains(seen[ids[1]], "running") && ignored == 2) {
		if time.Now().After(deadline) {
			t.Fatalf("events seen %v and %d ignored, want the running events of %v and their 2 pending ones ignored", seen, ignored, ids)
		}
		res, err := queues.Poll(ctx, "acme", time.Second, func(_ context.Context, evs []sqsevents.Event) error {
			for _, e := range evs {
				if e.Interrupted || e.At.IsZero() {
					t.Errorf("unexpected event %+v", e)
				}
				seen[e.InstanceID] = append(seen[e.InstanceID], e.State)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		// The pending events are the cloud's too, well formed, but no
		// fleet needs them: they are deleted unhandled.
		ignored += res.Ignored
		if ignored > 2 {
			t.Fatalf("more than the 2 pending events were ignored: %+v", res)
		}
	}
	for _, id := range ids {
		if !slices.Equal(seen[id], []string{"running"}) {
			t.Errorf("%s: states %v handled, want running only", id, seen[id])
		}
	}
	if len(seen) != 2 {
		t.Errorf("events of %d instances, want acme's 2", len(seen))
	}

	res, err := queues.Poll(ctx, "globex", 0, func(_ context.Context, evs []sqsevents.Event) error {
		t.Errorf("globex received %+v", evs)
		return nil
	})
	if err != nil || res.Messages != 0 {
		t.Fatalf("globex: %+v, %v; want an empty queue of its own", res, err)
	}
}
