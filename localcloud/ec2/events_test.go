package ec2

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/tenants"
)

// serveWithQueue serves cloud's EC2 and events queue APIs, routed as the
// local cloud's server routes them, trusting the key id as the tenant.
func serveWithQueue(t *testing.T, cloud *Cloud) string {
	t.Helper()
	srv := httptest.NewServer(trustKeyID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Target"), "AmazonSQS.") {
			cloud.ServeSQS(w, r)
			return
		}
		cloud.ServeHTTP(w, r)
	})))
	t.Cleanup(srv.Close)
	return srv.URL
}

func sqsClientFor(endpoint, tenant string) *sqs.Client {
	return sqs.New(sqs.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(tenant, "test", ""),
		Retryer:      transportRetryer(),
	})
}

// queueEnv is one account's EC2 and queue clients of one cloud.
type queueEnv struct {
	ec2   *awsec2.Client
	sqs   *sqs.Client
	url   string
	cloud *Cloud
}

func startWithQueue(t *testing.T, cfg Config, tenant string) queueEnv {
	t.Helper()
	cloud, err := Open(unthrottled(cfg))
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	endpoint := serveWithQueue(t, cloud)
	return envFor(t, cloud, endpoint, tenant)
}

func envFor(t *testing.T, cloud *Cloud, endpoint, tenant string) queueEnv {
	t.Helper()
	q := sqsClientFor(endpoint, tenant)
	out, err := q.GetQueueUrl(context.Background(), &sqs.GetQueueUrlInput{QueueName: aws.String(EventsQueueName)})
	require.NoError(t, err)
	return queueEnv{ec2: clientFor(endpoint, tenant), sqs: q, url: aws.ToString(out.QueueUrl), cloud: cloud}
}

// testEvent is an EventBridge event as a consumer decodes it.
type testEvent struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     struct {
		InstanceID     string `json:"instance-id"`
		State          string `json:"state"`
		InstanceAction string `json:"instance-action"`
	} `json:"detail"`
}

// receive takes what one ReceiveMessage call returns.
func (e queueEnv) receive(t *testing.T, in sqs.ReceiveMessageInput) []sqstypes.Message {
	t.Helper()
	in.QueueUrl = aws.String(e.url)
	if in.MaxNumberOfMessages == 0 {
		in.MaxNumberOfMessages = 10
	}
	out, err := e.sqs.ReceiveMessage(context.Background(), &in)
	require.NoError(t, err)
	return out.Messages
}

// drain receives and deletes every visible message, and returns their
// events as "instance-id state" strings (state "warning" for a spot
// interruption warning), sorted.
func (e queueEnv) drain(t *testing.T) []string {
	t.Helper()
	var got []string
	for {
		msgs := e.receive(t, sqs.ReceiveMessageInput{})
		if len(msgs) == 0 {
			sort.Strings(got)
			return got
		}
		for _, m := range msgs {
			got = append(got, summary(t, m))
			_, err := e.sqs.DeleteMessage(context.Background(), &sqs.DeleteMessageInput{QueueUrl: aws.String(e.url), ReceiptHandle: m.ReceiptHandle})
			require.NoError(t, err)
		}
	}
}

func decodeEvent(t *testing.T, m sqstypes.Message) testEvent {
	t.Helper()
	var ev testEvent
	require.NoError(t, json.Unmarshal([]byte(aws.ToString(m.Body)), &ev))
	return ev
}

func summary(t *testing.T, m sqstypes.Message) string {
	ev := decodeEvent(t, m)
	switch ev.DetailType {
	case DetailTypeStateChange:
		return ev.Detail.InstanceID + " " + ev.Detail.State
	case DetailTypeSpotWarning:
		return ev.Detail.InstanceID + " warning"
	}
	t.Fatalf("unexpected detail type %q", ev.DetailType)
	return ""
}

func expect(ids []string, states ...string) []string {
	var out []string
	for _, id := range ids {
		for _, s := range states {
			out = append(out, id+" "+s)
		}
	}
	sort.Strings(out)
	return out
}

// TestEventsFollowInstanceStates: launch publishes pending, the boot
// delay's end running (without any Describe), termination shutting-down
// and terminated, each once.
func TestEventsFollowInstanceStates(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, BootDelay: 30 * time.Second}, "acme")
	out, err := run(ctx, e.ec2, "t3.micro", 2, 2)
	require.NoError(t, err)
	launched := ids(out)

	assert.Equal(t, expect(launched, "pending"), e.drain(t))
	clk.Advance(29 * time.Second)
	assert.Empty(t, e.drain(t), "still booting")
	clk.Advance(time.Second)
	assert.Equal(t, expect(launched, "running"), e.drain(t))
	assert.Empty(t, e.drain(t), "each event is published once")

	_, err = e.ec2.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: launched})
	require.NoError(t, err)
	assert.Equal(t, expect(launched, "shutting-down", "terminated"), e.drain(t))
	_, err = e.ec2.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: launched})
	require.NoError(t, err)
	assert.Empty(t, e.drain(t), "terminating again changes nothing")
}

// TestEventsOfInstancesEndedUnannounced: an instance terminated after
// booting but before anyone read the queue still gets its running event;
// one terminated while booting never runs.
func TestEventsOfInstancesEndedUnannounced(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, BootDelay: 30 * time.Second}, "acme")
	booted, err := run(ctx, e.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	clk.Advance(30 * time.Second)
	booting, err := run(ctx, e.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	_, err = e.ec2.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: append(ids(booted), ids(booting)...)})
	require.NoError(t, err)
	want := append(expect(ids(booted), "pending", "running", "shutting-down", "terminated"),
		expect(ids(booting), "pending", "shutting-down", "terminated")...)
	sort.Strings(want)
	assert.Equal(t, want, e.drain(t))
}

func TestEventsWithoutBootDelay(t *testing.T) {
	ctx := context.Background()
	e := startWithQueue(t, Config{}, "acme")
	out, err := run(ctx, e.ec2, "t3.micro", 3, 3)
	require.NoError(t, err)
	assert.Equal(t, expect(ids(out), "pending", "running"), e.drain(t))
}

// TestEventShape: the body is EventBridge's event, field for field.
func TestEventShape(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, BootDelay: time.Second, Region: "eu-west-1"}, "acme")
	out, err := run(ctx, e.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	id := ids(out)[0]
	msgs := e.receive(t, sqs.ReceiveMessageInput{})
	require.Len(t, msgs, 1)

	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal([]byte(aws.ToString(msgs[0].Body)), &raw))
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	assert.Equal(t, []string{"account", "detail", "detail-type", "id", "region", "resources", "source", "time", "version"}, keys)
	acct := tenants.AccountID("acme")
	assert.Regexp(t, `^\{"version":"0","id":"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"`+
		acct+`","time":"2026-01-02T03:04:05Z","region":"eu-west-1","resources":\["arn:aws:ec2:eu-west-1:`+acct+`:instance/`+id+
		`"\],"detail":\{"instance-id":"`+id+`","state":"pending"\}\}$`, aws.ToString(msgs[0].Body))
	assert.NotEqual(t, decodeEvent(t, msgs[0]).ID, aws.ToString(msgs[0].MessageId), "the message id is SQS's, not the event's")
	assert.Len(t, acct, 12)

	_, err = e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.url), ReceiptHandle: msgs[0].ReceiptHandle})
	require.NoError(t, err)

	// The running event's time is when the instance booted, even when it
	// is published later.
	clk.Advance(time.Minute)
	msgs = e.receive(t, sqs.ReceiveMessageInput{})
	require.Len(t, msgs, 1)
	ev := decodeEvent(t, msgs[0])
	assert.Equal(t, "running", ev.Detail.State)
	assert.Equal(t, "2026-01-02T03:04:06Z", ev.Time)
}

// TestLongPollWakesAtBoot: a waiting receiver gets the running event when
// the boot delay ends, and a launch wakes it at once; neither needs
// another call.
func TestLongPollWakesAtBoot(t *testing.T) {
	ctx := context.Background()
	const boot = 300 * time.Millisecond
	e := startWithQueue(t, Config{BootDelay: boot}, "acme")

	type result struct {
		msgs []sqstypes.Message
		at   time.Time
	}
	poll := func() chan result {
		ch := make(chan result, 1)
		go func() {
			out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.url), MaxNumberOfMessages: 10, WaitTimeSeconds: 10})
			assert.NoError(t, err)
			ch <- result{out.Messages, time.Now()}
		}()
		return ch
	}
	waiting := poll()
	time.Sleep(100 * time.Millisecond) // let it wait
	out, err := run(ctx, e.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	launched := time.Now()
	got := <-waiting
	require.Len(t, got.msgs, 1)
	assert.Equal(t, "pending", decodeEvent(t, got.msgs[0]).Detail.State)
	assert.Less(t, got.at.Sub(launched), 5*time.Second, "the launch woke the poll, well before its 10 s")
	_, err = e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.url), ReceiptHandle: got.msgs[0].ReceiptHandle})
	require.NoError(t, err)

	got = <-poll()
	require.Len(t, got.msgs, 1)
	ev := decodeEvent(t, got.msgs[0])
	assert.Equal(t, ids(out)[0]+" running", ev.Detail.InstanceID+" "+ev.Detail.State)
	assert.GreaterOrEqual(t, got.at.Sub(launched), boot-10*time.Millisecond, "not before the boot delay")
	assert.Less(t, got.at.Sub(launched), 5*time.Second, "the boot woke the poll, well before its 10 s")
}

// TestAtLeastOnceDelivery: a received message not deleted comes back
// after its visibility timeout with a new receipt handle; only the latest
// handle deletes it; DeleteMessageBatch reports bad handles per entry.
func TestAtLeastOnceDelivery(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, BootDelay: time.Hour}, "acme")
	_, err := run(ctx, e.ec2, "t3.micro", 2, 2)
	require.NoError(t, err)

	attrs := []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount}
	first := e.receive(t, sqs.ReceiveMessageInput{VisibilityTimeout: 10, MessageSystemAttributeNames: attrs})
	require.Len(t, first, 2)
	assert.Equal(t, "1", first[0].Attributes["ApproximateReceiveCount"])
	assert.Empty(t, e.receive(t, sqs.ReceiveMessageInput{}), "in flight")
	assert.Equal(t, map[string]string{"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "2"}, e.counts(t))

	clk.Advance(10 * time.Second)
	again := e.receive(t, sqs.ReceiveMessageInput{VisibilityTimeout: 10, MessageSystemAttributeNames: attrs})
	require.Len(t, again, 2)
	assert.ElementsMatch(t, []string{aws.ToString(first[0].MessageId), aws.ToString(first[1].MessageId)},
		[]string{aws.ToString(again[0].MessageId), aws.ToString(again[1].MessageId)})
	assert.Equal(t, "2", again[0].Attributes["ApproximateReceiveCount"])
	assert.NotEqual(t, aws.ToString(first[0].ReceiptHandle), aws.ToString(again[0].ReceiptHandle))

	// A stale handle "succeeds" and deletes nothing, as on SQS.
	_, err = e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(e.url), ReceiptHandle: first[0].ReceiptHandle})
	require.NoError(t, err)
	assert.Equal(t, "2", e.counts(t)["ApproximateNumberOfMessagesNotVisible"])

	batch, err := e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(e.url), Entries: []sqstypes.DeleteMessageBatchRequestEntry{
		{Id: aws.String("a"), ReceiptHandle: again[0].ReceiptHandle},
		{Id: aws.String("b"), ReceiptHandle: again[1].ReceiptHandle},
		{Id: aws.String("c"), ReceiptHandle: aws.String("not-a-handle")},
	}})
	require.NoError(t, err)
	require.Len(t, batch.Successful, 2)
	require.Len(t, batch.Failed, 1)
	assert.Equal(t, "c", aws.ToString(batch.Failed[0].Id))
	assert.Equal(t, "ReceiptHandleIsInvalid", aws.ToString(batch.Failed[0].Code))
	assert.True(t, batch.Failed[0].SenderFault)
	clk.Advance(time.Minute)
	assert.Empty(t, e.receive(t, sqs.ReceiveMessageInput{}), "deleted for good")

	// ChangeMessageVisibility hides a message longer, or shows it at once.
	_, err = run(ctx, e.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	m := e.receive(t, sqs.ReceiveMessageInput{})
	require.Len(t, m, 1)
	_, err = e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(e.url), ReceiptHandle: m[0].ReceiptHandle, VisibilityTimeout: 0})
	require.NoError(t, err)
	assert.Len(t, e.receive(t, sqs.ReceiveMessageInput{}), 1)
}

func (e queueEnv) counts(t *testing.T) map[string]string {
	t.Helper()
	out, err := e.sqs.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
			sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
	require.NoError(t, err)
	return out.Attributes
}

// TestQueueIsPerAccount: an account's queue holds only its own events,
// another account's queue URL does not exist for it, and another
// account's receipt handle deletes nothing.
func TestQueueIsPerAccount(t *testing.T) {
	ctx := context.Background()
	cloud, err := Open(unthrottled(Config{BootDelay: time.Hour}))
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	endpoint := serveWithQueue(t, cloud)
	acme, globex := envFor(t, cloud, endpoint, "acme"), envFor(t, cloud, endpoint, "globex")
	assert.NotEqual(t, acme.url, globex.url)
	assert.Equal(t, endpoint+"/"+tenants.AccountID("acme")+"/"+EventsQueueName, acme.url)

	out, err := run(ctx, acme.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	assert.Empty(t, globex.receive(t, sqs.ReceiveMessageInput{}))
	_, err = globex.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(acme.url)})
	var notExist *sqstypes.QueueDoesNotExist
	require.ErrorAs(t, err, &notExist)
	assert.Equal(t, "AWS.SimpleQueueService.NonExistentQueue", errorCode(t, err))
	_, err = globex.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(acme.url)})
	require.ErrorAs(t, err, &notExist)
	_, err = globex.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(EventsQueueName), QueueOwnerAWSAccountId: aws.String(tenants.AccountID("acme"))})
	require.ErrorAs(t, err, &notExist)

	msgs := acme.receive(t, sqs.ReceiveMessageInput{})
	require.Len(t, msgs, 1)
	_, err = globex.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(globex.url), ReceiptHandle: msgs[0].ReceiptHandle})
	require.NoError(t, err, "a handle that is not the caller's is as stale as one")
	_, err = globex.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(globex.url), ReceiptHandle: msgs[0].ReceiptHandle})
	require.Error(t, err, "globex cannot change acme's message")
	_, err = acme.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(acme.url), ReceiptHandle: msgs[0].ReceiptHandle})
	require.NoError(t, err)
	msgs = acme.receive(t, sqs.ReceiveMessageInput{})
	require.Len(t, msgs, 1, "globex's delete did not touch acme's message")
	assert.Equal(t, ids(out)[0], decodeEvent(t, msgs[0]).Detail.InstanceID)

	list, err := globex.sqs.ListQueues(ctx, &sqs.ListQueuesInput{})
	require.NoError(t, err)
	assert.Equal(t, []string{globex.url}, list.QueueUrls)
}

func TestQueueAPIErrors(t *testing.T) {
	ctx := context.Background()
	e := startWithQueue(t, Config{}, "acme")
	u := aws.String(e.url)
	for _, c := range []struct {
		name string
		call func() error
		code string
	}{
		{"too many messages", func() error {
			_, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u, MaxNumberOfMessages: 11})
			return err
		}, "InvalidParameterValue"},
		{"wait too long", func() error {
			_, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u, WaitTimeSeconds: 21})
			return err
		}, "InvalidParameterValue"},
		{"negative visibility", func() error {
			_, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u, VisibilityTimeout: -1})
			return err
		}, "InvalidParameterValue"},
		{"unknown attribute", func() error {
			_, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: u, MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{"Bogus"}})
			return err
		}, "InvalidAttributeName"},
		{"other queue name", func() error {
			_, err := e.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("other")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		{"other queue url", func() error {
			_, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(strings.TrimSuffix(e.url, EventsQueueName) + "other")})
			return err
		}, "AWS.SimpleQueueService.NonExistentQueue"},
		{"malformed receipt", func() error {
			_, err := e.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: u, ReceiptHandle: aws.String("garbage")})
			return err
		}, "ReceiptHandleIsInvalid"},
		{"empty batch", func() error {
			_, err := e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: u, Entries: []sqstypes.DeleteMessageBatchRequestEntry{}})
			return err
		}, "AWS.SimpleQueueService.EmptyBatchRequest"},
		{"repeated batch ids", func() error {
			_, err := e.sqs.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: u, Entries: []sqstypes.DeleteMessageBatchRequestEntry{
				{Id: aws.String("a"), ReceiptHandle: aws.String("x")}, {Id: aws.String("a"), ReceiptHandle: aws.String("y")}}})
			return err
		}, "AWS.SimpleQueueService.BatchEntryIdsNotDistinct"},
		{"send", func() error {
			_, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: u, MessageBody: aws.String("x")})
			return err
		}, "AWS.SimpleQueueService.UnsupportedOperation"},
		{"visibility of a message not in flight", func() error {
			_, err := e.sqs.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: u, ReceiptHandle: aws.String(encodeReceipt(1, strings.Repeat("0", 32)))})
			return err
		}, "InvalidParameterValue"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			require.Error(t, err)
			assert.Equal(t, c.code, errorCode(t, err))
			assert.Equal(t, http.StatusBadRequest, httpStatus(t, err))
		})
	}

	// PurgeQueue empties the queue.
	_, err := run(ctx, e.ec2, "t3.micro", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, "4", e.counts(t)["ApproximateNumberOfMessages"])
	_, err = e.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: u})
	require.NoError(t, err)
	assert.Empty(t, e.receive(t, sqs.ReceiveMessageInput{}))
}

// TestQueueBounds: a queue keeps its newest EventQueueLimit events, and
// none older than EventRetention.
func TestQueueBounds(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, EventQueueLimit: 5, EventRetention: time.Minute}, "acme")
	first, err := run(ctx, e.ec2, "t3.micro", 2, 2)
	require.NoError(t, err)
	clk.Advance(time.Second)
	second, err := run(ctx, e.ec2, "t3.micro", 2, 2)
	require.NoError(t, err)
	assert.Equal(t, "5", e.counts(t)["ApproximateNumberOfMessages"])
	got := e.drain(t)
	require.Len(t, got, 5)
	assert.Subset(t, got, expect(ids(second), "pending", "running"), "the newest stay")

	_, err = run(ctx, e.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	clk.Advance(time.Minute)
	assert.Empty(t, e.drain(t), "expired")
	_ = first
}

func spotRun(in *awsec2.RunInstancesInput) {
	in.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
}

// TestInterruptGivesNoticeThenTerminates: an interrupted spot instance
// gets its warning, keeps running with EC2's state reason through the
// notice, then is terminated by the service and its capacity returns.
func TestInterruptGivesNoticeThenTerminates(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, SpotNoticePeriod: 10 * time.Second,
		Pools: []Pool{{InstanceType: "m5.large", Initial: 5}, {Market: MarketSpot, InstanceType: "m5.large", Initial: 5}}}, "acme")
	spot, err := run(ctx, e.ec2, "m5.large", 2, 2, spotRun)
	require.NoError(t, err)
	onDemand, err := run(ctx, e.ec2, "m5.large", 1, 1)
	require.NoError(t, err)
	e.drain(t)
	assert.Equal(t, 7, free(t, e.cloud, "m5.large"))

	victim := ids(spot)[0]
	require.Error(t, e.cloud.Interrupt(ctx, "acme", ids(onDemand)), "on-demand instances are not interrupted")
	require.Error(t, e.cloud.Interrupt(ctx, "globex", []string{victim}), "nor another account's")
	require.NoError(t, e.cloud.Interrupt(ctx, "acme", []string{victim}))
	assert.Equal(t, []string{victim + " warning"}, e.drain(t))

	clk.Advance(9 * time.Second)
	got := describe(t, e.ec2, &awsec2.DescribeInstancesInput{InstanceIds: []string{victim}})
	require.Len(t, got, 1)
	assert.Equal(t, types.InstanceStateNameRunning, got[0].State.Name)
	require.NotNil(t, got[0].StateReason)
	assert.Equal(t, "Server.SpotInstanceTermination", aws.ToString(got[0].StateReason.Code))
	assert.Equal(t, 7, free(t, e.cloud, "m5.large"))
	assert.Empty(t, e.drain(t))

	clk.Advance(time.Second)
	got = describe(t, e.ec2, &awsec2.DescribeInstancesInput{InstanceIds: []string{victim}})
	require.Len(t, got, 1)
	assert.Equal(t, types.InstanceStateNameTerminated, got[0].State.Name)
	assert.Equal(t, "Server.SpotInstanceTermination", aws.ToString(got[0].StateReason.Code))
	assert.Equal(t, "Server.SpotInstanceTermination: Spot instance termination", aws.ToString(got[0].StateReason.Message))
	assert.Equal(t, "Service initiated (2026-01-02 03:04:15 GMT)", aws.ToString(got[0].StateTransitionReason))
	assert.Equal(t, 8, free(t, e.cloud, "m5.large"), "the capacity went back")
	assert.Equal(t, expect([]string{victim}, "shutting-down", "terminated"), e.drain(t))

	others := describe(t, e.ec2, &awsec2.DescribeInstancesInput{InstanceIds: []string{ids(spot)[1], ids(onDemand)[0]}})
	for _, in := range others {
		assert.Equal(t, types.InstanceStateNameRunning, in.State.Name)
		assert.Nil(t, in.StateReason)
	}
}

// TestSpotReclaimRate: the cloud interrupts running spot instances at the
// configured rate, and only spot ones; a long poll sees the notices end.
func TestSpotReclaimRate(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	e := startWithQueue(t, Config{Now: clk.Now, SpotReclaimPerMinute: 60, SpotNoticePeriod: time.Minute,
		Pools: []Pool{{InstanceType: "m5.large", Initial: 10}, {Market: MarketSpot, InstanceType: "m5.large", Initial: 10}}}, "acme")
	_, err := run(ctx, e.ec2, "m5.large", 10, 10, spotRun)
	require.NoError(t, err)
	_, err = run(ctx, e.ec2, "m5.large", 10, 10)
	require.NoError(t, err)
	e.drain(t)

	clk.Advance(2500 * time.Millisecond) // 2.5 interruptions due
	warned := e.drain(t)
	require.Len(t, warned, 2)
	var victims []string
	for _, w := range warned {
		id, kind, _ := strings.Cut(w, " ")
		assert.Equal(t, "warning", kind)
		victims = append(victims, id)
	}
	spotOf := describe(t, e.ec2, &awsec2.DescribeInstancesInput{InstanceIds: victims})
	for _, in := range spotOf {
		assert.Equal(t, types.InstanceLifecycleTypeSpot, in.InstanceLifecycle)
	}
	clk.Advance(500 * time.Millisecond) // the carried half and another half
	assert.Len(t, e.drain(t), 1)

	clk.Advance(time.Minute)
	var ended int
	for _, s := range e.drain(t) {
		if strings.HasSuffix(s, " terminated") {
			ended++
		}
	}
	assert.GreaterOrEqual(t, ended, 3, "every notice that passed ended in termination")
	running := describe(t, e.ec2, &awsec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("instance-state-name"), Values: []string{"running"}}}})
	var spotLeft, onDemandLeft int
	for _, in := range running {
		if in.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
			spotLeft++
		} else {
			onDemandLeft++
		}
	}
	assert.Equal(t, 10, onDemandLeft, "on-demand instances are never reclaimed")
	assert.Less(t, spotLeft, 10-2)
}

// TestEventsOnceAcrossProcesses: two clouds on one database file publish
// each running event once, whichever reads first.
func TestEventsOnceAcrossProcesses(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	cfg := unthrottled(Config{DBPath: t.TempDir() + "/ec2.db", Now: clk.Now, BootDelay: time.Second})
	var envs []queueEnv
	for range 2 {
		cloud, err := Open(cfg)
		require.NoError(t, err)
		t.Cleanup(func() { cloud.Close() })
		envs = append(envs, envFor(t, cloud, serveWithQueue(t, cloud), "acme"))
	}
	out, err := run(ctx, envs[0].ec2, "t3.micro", 3, 3)
	require.NoError(t, err)
	clk.Advance(time.Second)
	var got []string
	for i := range 4 {
		got = append(got, envs[i%2].drain(t)...)
	}
	sort.Strings(got)
	assert.Equal(t, expect(ids(out), "pending", "running"), got)
}
