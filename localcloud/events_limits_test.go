package localcloud_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/ec2"
)

// TestEventsQueueThrottleOverTheCloudPort: on the cloud's port, the queue's
// request throttle counts each verified tenant's calls apart: a flood of
// one tenant's calls is answered RequestThrottled while another tenant's
// succeed.
func TestEventsQueueThrottleOverTheCloudPort(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, "acme", "globex")
	acme, globex := sqsClient(srv, static(creds["acme"])), sqsClient(srv, static(creds["globex"]))
	in := &sqs.GetQueueUrlInput{QueueName: aws.String(ec2.EventsQueueName)}

	// The bucket refills as the flood goes, so flood until the first
	// throttle; the bound only keeps a broken throttle from looping.
	const most = 20 * ec2.DefaultQueueBucket
	var calls atomic.Int64
	var throttled atomic.Bool
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for !throttled.Load() && calls.Add(1) <= most {
				_, err := acme.GetQueueUrl(ctx, in)
				if err != nil {
					assert.Equal(t, "RequestThrottled", code(t, err))
					throttled.Store(true)
				}
			}
		})
	}
	wg.Wait()
	require.True(t, throttled.Load(), "acme's flood was throttled")
	_, err := globex.GetQueueUrl(ctx, in)
	require.NoError(t, err, "globex's calls are not")
}
