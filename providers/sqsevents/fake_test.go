package sqsevents

import (
	"context"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// fakeSQS is one queue: receive hands out every waiting message (up to
// the request's maximum) and keeps it in flight until deleted or
// redelivered.
type fakeSQS struct {
	mu       sync.Mutex
	url      string
	waiting  []types.Message
	inflight map[string]types.Message // by receipt
	next     int

	lookups    []string // GetQueueUrl's QueueName, per call
	receives   []*sqs.ReceiveMessageInput
	deleted    []string // bodies
	receiveErr error
	refuse     map[string]bool // bodies whose delete entries fail
}

func newFakeSQS(bodies ...string) *fakeSQS {
	f := &fakeSQS{url: "https://sqs.us-east-1.amazonaws.com/123456789012/gust-ec2-events", inflight: map[string]types.Message{}}
	f.send(bodies...)
	return f
}

func (f *fakeSQS) send(bodies ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range bodies {
		f.waiting = append(f.waiting, types.Message{Body: aws.String(b)})
	}
}

// redeliver makes the in-flight messages visible again, as the visibility
// timeout's end does.
func (f *fakeSQS) redeliver() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, m := range f.inflight {
		m.ReceiptHandle = nil
		f.waiting = append(f.waiting, m)
	}
	clear(f.inflight)
}

func (f *fakeSQS) GetQueueUrl(_ context.Context, in *sqs.GetQueueUrlInput, _ ...func(*sqs.Options)) (*sqs.GetQueueUrlOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lookups = append(f.lookups, aws.ToString(in.QueueName))
	if aws.ToString(in.QueueName) != "gust-ec2-events" {
		return nil, &types.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}
	}
	return &sqs.GetQueueUrlOutput{QueueUrl: aws.String(f.url)}, nil
}

func (f *fakeSQS) ReceiveMessage(_ context.Context, in *sqs.ReceiveMessageInput, _ ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.receives = append(f.receives, in)
	if f.receiveErr != nil {
		return nil, f.receiveErr
	}
	if aws.ToString(in.QueueUrl) != f.url {
		return nil, &types.QueueDoesNotExist{Message: aws.String("The specified queue does not exist.")}
	}
	n := min(len(f.waiting), int(in.MaxNumberOfMessages))
	out := &sqs.ReceiveMessageOutput{}
	for _, m := range f.waiting[:n] {
		f.next++
		m.ReceiptHandle = aws.String("receipt-" + strconv.Itoa(f.next))
		m.MessageId = aws.String("msg-" + strconv.Itoa(f.next))
		f.inflight[*m.ReceiptHandle] = m
		out.Messages = append(out.Messages, m)
	}
	f.waiting = f.waiting[n:]
	return out, nil
}

func (f *fakeSQS) DeleteMessageBatch(_ context.Context, in *sqs.DeleteMessageBatchInput, _ ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := &sqs.DeleteMessageBatchOutput{}
	for _, e := range in.Entries {
		m, ok := f.inflight[aws.ToString(e.ReceiptHandle)]
		if !ok || f.refuse[aws.ToString(m.Body)] {
			out.Failed = append(out.Failed, types.BatchResultErrorEntry{Id: e.Id, Code: aws.String("ReceiptHandleIsInvalid"), SenderFault: true})
			continue
		}
		delete(f.inflight, aws.ToString(e.ReceiptHandle))
		f.deleted = append(f.deleted, aws.ToString(m.Body))
		out.Successful = append(out.Successful, types.DeleteMessageBatchResultEntry{Id: e.Id})
	}
	return out, nil
}

// counts returns how many messages wait, are in flight and were deleted.
func (f *fakeSQS) counts() (waiting, inflight, deleted int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.waiting), len(f.inflight), len(f.deleted)
}
