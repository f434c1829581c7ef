package sqsevents

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go"

	"github.com/gust-dev/gust/providers"
)

func ids(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.InstanceID)
	}
	return out
}

// TestPollDeletesOnlyAfterTheHandlerSucceeds: a failed handler leaves the
// events' messages to come again, but the garbage is deleted at once and
// never handed to the handler.
func TestPollDeletesOnlyAfterTheHandlerSucceeds(t *testing.T) {
	ctx := context.Background()
	f := newFakeSQS(sampleRunning, "garbage", sampleSpotWarning, sampleRebalance)
	q := New(f, "gust-ec2-events")

	var handled [][]string
	fail := errors.New("signal failed")
	res, err := q.Poll(ctx, func(_ context.Context, evs []Event) error {
		handled = append(handled, ids(evs))
		return fail
	})
	if !errors.Is(err, fail) {
		t.Fatalf("got %v, want the handler's error", err)
	}
	if res != (Result{Messages: 4, Events: 2, Ignored: 2}) {
		t.Fatalf("result %+v", res)
	}
	if w, in, del := f.counts(); w != 0 || in != 2 || del != 2 {
		t.Fatalf("after a failed handler: %d waiting, %d in flight, %d deleted; want the 2 events in flight, the 2 others deleted", w, in, del)
	}

	f.redeliver()
	res, err = q.Poll(ctx, func(_ context.Context, evs []Event) error {
		handled = append(handled, ids(evs))
		return nil
	})
	if err != nil || res != (Result{Messages: 2, Events: 2}) {
		t.Fatalf("redelivery: %+v, %v", res, err)
	}
	if w, in, del := f.counts(); w != 0 || in != 0 || del != 4 {
		t.Fatalf("after success: %d waiting, %d in flight, %d deleted; want all deleted", w, in, del)
	}
	// SQS does not keep order, and a redelivery need not either: compare
	// each batch's ids as a set.
	for _, h := range handled {
		slices.Sort(h)
	}
	want := [][]string{{"i-0a1b2c3d4e5f60718", "i-0fedcba9876543210"}, {"i-0a1b2c3d4e5f60718", "i-0fedcba9876543210"}}
	if len(handled) != 2 || !slices.Equal(handled[0], want[0]) || !slices.Equal(handled[1], want[1]) {
		t.Fatalf("handled %v, want %v", handled, want)
	}
}

func TestPollWithoutEventsDoesNotCallTheHandler(t *testing.T) {
	f := newFakeSQS(`{"not":"an event"}`, sampleRebalance)
	res, err := New(f, "gust-ec2-events").Poll(context.Background(), func(context.Context, []Event) error {
		t.Fatal("handler called without events")
		return nil
	})
	if err != nil || res != (Result{Messages: 2, Ignored: 2}) {
		t.Fatalf("%+v, %v", res, err)
	}
	if _, in, del := f.counts(); in != 0 || del != 2 {
		t.Fatalf("%d in flight, %d deleted; want the ignored deleted", in, del)
	}
	// An empty queue: nothing to do.
	res, err = New(f, "gust-ec2-events").Poll(context.Background(), nil)
	if err != nil || res != (Result{}) {
		t.Fatalf("empty queue: %+v, %v", res, err)
	}
}

// TestPollAsksForALongPollOfTheQueueByName: one GetQueueUrl per queue,
// by the name also when a URL was given, and receives of up to 10
// messages with the wait asked for.
func TestPollAsksForALongPollOfTheQueueByName(t *testing.T) {
	ctx := context.Background()
	f := newFakeSQS()
	q := New(f, "https://sqs.eu-west-1.amazonaws.com/999999999999/gust-ec2-events")
	if _, err := q.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.PollWait(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := q.PollWait(ctx, time.Hour, nil); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(f.lookups, []string{"gust-ec2-events"}) {
		t.Fatalf("lookups %q, want one of the name in the caller's account", f.lookups)
	}
	var waits []int32
	for _, r := range f.receives {
		if r.MaxNumberOfMessages != 10 || aws.ToString(r.QueueUrl) != f.url {
			t.Fatalf("receive %+v", r)
		}
		waits = append(waits, r.WaitTimeSeconds)
	}
	if !slices.Equal(waits, []int32{20, 0, 20}) {
		t.Fatalf("waits %v, want 20, 0 and 20 (the most SQS allows)", waits)
	}
}

func TestPollTranslatesErrors(t *testing.T) {
	ctx := context.Background()
	api := func(code string) error {
		return &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage", Err: &smithy.GenericAPIError{Code: code, Message: "m"}}
	}
	for _, c := range []struct {
		err  error
		is   func(error) bool
		name string
	}{
		{api("AWS.SimpleQueueService.NonExistentQueue"), providers.IsNotFound, "not found"},
		{api("QueueDoesNotExist"), providers.IsNotFound, "not found"},
		{api("RequestThrottled"), providers.IsThrottled, "throttled"},
		{api("ThrottlingException"), providers.IsThrottled, "throttled"},
		{api("AccessDenied"), providers.IsInvalid, "invalid"},
		{api("InvalidAddress"), providers.IsInvalid, "invalid"},
		{&smithy.GenericAPIError{Code: "InternalError", Fault: smithy.FaultServer}, func(err error) bool {
			return !providers.IsInvalid(err) && !providers.IsNotFound(err)
		}, "transient"},
		{errors.New("dial tcp: connection refused"), func(err error) bool {
			return !providers.IsInvalid(err) && !providers.IsNotFound(err) && !providers.IsThrottled(err)
		}, "transient"},
	} {
		f := newFakeSQS(sampleRunning)
		f.receiveErr = c.err
		_, err := New(f, "gust-ec2-events").Poll(ctx, nil)
		if err == nil || !c.is(err) {
			t.Errorf("%v: got %v, want %s", c.err, err, c.name)
		}
	}

	// A queue that is gone is looked up again: it may come back.
	f := newFakeSQS()
	q := New(f, "gust-ec2-events")
	f.url = "https://sqs.us-east-1.amazonaws.com/123456789012/gust-ec2-events"
	if _, err := q.Poll(ctx, nil); err != nil {
		t.Fatal(err)
	}
	f.url += "-recreated"
	if _, err := q.Poll(ctx, nil); !providers.IsNotFound(err) {
		t.Fatalf("got %v, want NotFound", err)
	}
	if _, err := q.Poll(ctx, nil); err != nil {
		t.Fatalf("after the queue came back: %v", err)
	}
	if len(f.lookups) != 2 {
		t.Fatalf("%d lookups, want 2", len(f.lookups))
	}
	if _, err := New(f, "other").Poll(ctx, nil); !providers.IsNotFound(err) {
		t.Fatalf("unknown queue: got %v, want NotFound", err)
	}
}

func TestPollCountsRefusedDeletes(t *testing.T) {
	f := newFakeSQS(sampleRunning, sampleTerminated)
	f.refuse = map[string]bool{sampleTerminated: true}
	res, err := New(f, "gust-ec2-events").Poll(context.Background(), func(context.Context, []Event) error { return nil })
	if err != nil || res.NotDeleted != 1 || res.Events != 2 {
		t.Fatalf("%+v, %v", res, err)
	}
}

// TestAccountsServeOnlyTenantsWithCredentials: each tenant's queue is its
// own client, and a tenant the worker cannot act for is NotFound, before
// any call to the cloud.
func TestAccountsServeOnlyTenantsWithCredentials(t *testing.T) {
	ctx := context.Background()
	cfg := aws.Config{Region: "us-east-1", Credentials: credentials.NewStaticCredentialsProvider("AKID", "s", "")}
	a := NewAccounts(cfg, Options{Queue: "gust-ec2-events"})
	made := 0
	a.newAPI = func(aws.Config) API { made++; return newFakeSQS(sampleRunning) }
	q1, err := a.Queue(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	q2, err := a.Queue(ctx, providers.DefaultTenant)
	if err != nil || q1 != q2 || made != 1 {
		t.Fatalf("the default tenant's queue must be built once: %v, %d clients", err, made)
	}
	if _, err := a.Queue(ctx, "acme"); !providers.IsNotFound(err) {
		t.Fatalf("acme: got %v, want NotFound", err)
	}
	if _, err := a.Queue(ctx, "../x"); !providers.IsInvalid(err) {
		t.Fatalf("bad name: got %v, want Invalid", err)
	}
	var got []Event
	if _, err := a.Poll(ctx, "", 0, func(_ context.Context, evs []Event) error { got = evs; return nil }); err != nil || len(got) != 1 {
		t.Fatalf("poll: %v, %v", got, err)
	}
	for _, bad := range []string{"", "a b", "../x", strings.Repeat("q", 81)} {
		if _, err := NewAccountsFromConfig(ctx, Options{Queue: bad}); !providers.IsInvalid(err) {
			t.Errorf("queue %q: got %v, want Invalid", bad, err)
		}
	}
	for _, good := range []string{"gust-ec2-events", "events_1.fifo", "https://sqs.us-east-1.amazonaws.com/123456789012/gust-ec2-events"} {
		if !ValidQueueName(QueueName(good)) {
			t.Errorf("queue %q must be valid", good)
		}
	}
}
