// Package sqsevents reads EC2's instance events from an SQS queue that an
// EventBridge rule fills (source aws.ec2, the state-change notifications
// and the spot interruption warnings), as gust's local cloud does for
// every account in its gust-ec2-events queue.
//
// Delivery is at least once: a message is deleted only after its events
// were handled, so a worker that dies in between gets them again, and so
// may its successor. Handlers must be idempotent. Messages that are not
// instance events are deleted unhandled: a misconfigured rule or a hostile
// sender must not wedge the queue.
//
// SQS errors become the providers package's typed errors here and nowhere
// else.
package sqsevents

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// API is the part of the SQS client a Queue uses, so tests can substitute
// a fake.
type API interface {
	GetQueueUrl(ctx context.Context, in *sqs.GetQueueUrlInput, opts ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error)
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
}

var _ API = (*sqs.Client)(nil)

// What one receive asks of SQS: a long poll of its maximum, for as many
// messages as SQS hands out at once.
const (
	WaitSeconds = 20
	MaxMessages = 10
)

// Queue is one account's event queue.
type Queue struct {
	api  API
	name string

	mu  sync.Mutex
	url string // resolved from name; "" until then, and after the queue vanished
}

// New returns the queue named name in api's account: a queue name, or a
// queue URL, whose last path element names the queue. The URL is looked up
// with GetQueueUrl in api's account either way, so a queue is always the
// caller's own account's, never another's that a URL would point at.
func New(api API, name string) *Queue {
	return &Queue{api: api, name: QueueName(name)}
}

// QueueName is the queue name nameOrURL gives: itself, or a URL's last
// path element.
func QueueName(nameOrURL string) string {
	if strings.Contains(nameOrURL, "://") {
		nameOrURL = strings.TrimRight(nameOrURL, "/")
		return nameOrURL[strings.LastIndex(nameOrURL, "/")+1:]
	}
	return nameOrURL
}

// ValidQueueName reports whether s is an SQS queue name: 1 to 80 letters,
// digits, '-' or '_', with a ".fifo" suffix for a FIFO queue.
func ValidQueueName(s string) bool {
	if len(s) > 80 {
		return false
	}
	s = strings.TrimSuffix(s, ".fifo")
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// Handler handles the instance events of one receive, in the order the
// queue gave them. It returns nil once they are handled; only then are
// their messages deleted. It may be called with the same events again
// (at-least-once delivery).
type Handler func(ctx context.Context, events []Event) error

// Result counts what one Poll received.
type Result struct {
	// Messages is how many messages the receive returned.
	Messages int
	// Events is how many instance events went to the handler.
	Events int
	// Ignored counts the messages deleted unhandled: not instance events,
	// or instance events the fleets do not need (rebalance
	// recommendations).
	Ignored int
	// NotDeleted counts the messages SQS refused to delete (their receipt
	// expired): they come again.
	NotDeleted int
}

// Poll receives once (a long poll of WaitSeconds for up to MaxMessages),
// hands the instance events to handle and deletes the messages it handled
// and those it ignored. When handle fails, the instance events' messages
// stay, to be received again after the queue's visibility timeout, and
// Poll returns handle's error as is. Queue errors are typed: NotFoundError
// when the queue does not exist in the account, ThrottledError, and
// InvalidError for requests no retry fixes (access denied, for one);
// others are transient. A Poll that received nothing returns a zero
// Result and no error.
func (q *Queue) Poll(ctx context.Context, handle Handler) (Result, error) {
	return q.PollWait(ctx, WaitSeconds*time.Second, handle)
}

// PollWait is Poll with a long poll of wait (whole seconds, at most
// WaitSeconds); 0 returns at once, which tells a caller quickly whether
// the queue is there.
func (q *Queue) PollWait(ctx context.Context, wait time.Duration, handle Handler) (Result, error) {
	url, err := q.queueURL(ctx)
	if err != nil {
		return Result{}, err
	}
	out, err := q.api.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(url),
		MaxNumberOfMessages: MaxMessages,
		WaitTimeSeconds:     int32(min(max(wait/time.Second, 0), WaitSeconds)),
	})
	if err != nil {
		return Result{}, q.fail(url, "receiving from", err)
	}
	msgs := out.Messages
	if len(msgs) > MaxMessages {
		msgs = msgs[:MaxMessages] // a cloud that hands out more is not trusted with memory
	}
	res := Result{Messages: len(msgs)}
	var events []Event
	var handled, ignored []string
	for _, m := range msgs {
		receipt := aws.ToString(m.ReceiptHandle)
		ev, err := parse(aws.ToString(m.Body))
		if err != nil {
			res.Ignored++
			if receipt != "" {
				ignored = append(ignored, receipt)
			}
			continue
		}
		events = append(events, ev)
		if receipt != "" {
			handled = append(handled, receipt)
		}
	}
	res.Events = len(events)
	if len(events) > 0 {
		if err := handle(ctx, events); err != nil {
			// The ignored are deleted all the same, as no retry makes
			// them events; the handler's error is the one to report.
			n, _ := q.delete(ctx, url, ignored)
			res.NotDeleted += n
			return res, err
		}
	}
	n, err := q.delete(ctx, url, append(ignored, handled...))
	res.NotDeleted += n
	return res, err
}

// queueURL resolves the queue's name in the account, once.
func (q *Queue) queueURL(ctx context.Context) (string, error) {
	q.mu.Lock()
	url := q.url
	q.mu.Unlock()
	if url != "" {
		return url, nil
	}
	if q.name == "" {
		return "", invalidf("no queue name")
	}
	out, err := q.api.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(q.name)})
	if err != nil {
		return "", fmt.Errorf("looking up queue %s, %w", q.name, translate(err))
	}
	url = aws.ToString(out.QueueUrl)
	if url == "" {
		return "", fmt.Errorf("looking up queue %s: the cloud returned no url", q.name)
	}
	q.mu.Lock()
	q.url = url
	q.mu.Unlock()
	return url, nil
}

// fail translates err; a queue that no longer exists is looked up again
// next time, as it may be created again under the same name.
func (q *Queue) fail(url, doing string, err error) error {
	err = translate(err)
	if isQueueGone(err) {
		q.mu.Lock()
		if q.url == url {
			q.url = ""
		}
		q.mu.Unlock()
	}
	return fmt.Errorf("%s queue %s, %w", doing, q.name, err)
}

// delete deletes the messages of receipts, in batches of MaxMessages, and
// returns how many SQS refused.
func (q *Queue) delete(ctx context.Context, url string, receipts []string) (refused int, err error) {
	for start := 0; start < len(receipts); start += MaxMessages {
		batch := receipts[start:min(start+MaxMessages, len(receipts))]
		entries := make([]types.DeleteMessageBatchRequestEntry, len(batch))
		for i, r := range batch {
			entries[i] = types.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(r)}
		}
		out, err := q.api.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(url), Entries: entries})
		if err != nil {
			return refused + len(receipts) - start, q.fail(url, "deleting from", err)
		}
		refused += len(out.Failed)
	}
	return refused, nil
}
