package ec2

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// queueEnvs opens a cloud with cfg as is (its throttles included) and
// returns the queue clients of tenants on it.
func queueEnvs(t *testing.T, cfg Config, tenants ...string) (*Cloud, []queueEnv) {
	t.Helper()
	cloud, err := Open(cfg)
	require.NoError(t, err)
	t.Cleanup(func() { cloud.Close() })
	endpoint := serveWithQueue(t, cloud)
	var envs []queueEnv
	for _, tenant := range tenants {
		envs = append(envs, envFor(t, cloud, endpoint, tenant))
	}
	return cloud, envs
}

func (e queueEnv) attributes(ctx context.Context) error {
	_, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(e.url),
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages}})
	return err
}

// flood makes n concurrent queue calls and counts those that were
// throttled; any other error fails the test.
func (e queueEnv) flood(t *testing.T, n int) (ok, throttled int) {
	t.Helper()
	var okN, throttledN atomic.Int64
	var wg sync.WaitGroup
	calls := make(chan struct{}, n)
	for range n {
		calls <- struct{}{}
	}
	close(calls)
	for range 8 {
		wg.Go(func() {
			for range calls {
				err := e.attributes(context.Background())
				var rt *sqstypes.RequestThrottled
				switch {
				case err == nil:
					okN.Add(1)
				case assert.ErrorAs(t, err, &rt):
					throttledN.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(okN.Load()), int(throttledN.Load())
}

// TestQueueThrottleIsPerAccount: a flood of one account's queue calls gets
// the default burst and then RequestThrottled, an error the SDK's retryer
// retries as a throttle; another account's calls still succeed; the
// bucket refills at the default rate.
func TestQueueThrottleIsPerAccount(t *testing.T) {
	clk := newClock() // frozen: the bucket refills only when the test says so
	_, envs := queueEnvs(t, Config{Now: clk.Now}, "acme", "globex")
	acme, globex := envs[0], envs[1]

	// envFor's GetQueueUrl took acme's first token.
	ok, throttled := acme.flood(t, 2*DefaultQueueBucket)
	assert.Equal(t, DefaultQueueBucket-1, ok)
	assert.Equal(t, DefaultQueueBucket+1, throttled)
	require.NoError(t, globex.attributes(context.Background()), "globex has a bucket of its own")

	err := acme.attributes(context.Background())
	require.Error(t, err)
	assert.Equal(t, "RequestThrottled", errorCode(t, err))
	assert.Equal(t, http.StatusBadRequest, httpStatus(t, err))
	assert.True(t, retry.NewStandard().IsErrorRetryable(err), "the SDK retries it")
	assert.Equal(t, aws.TrueTernary, retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err), "as a throttle")

	// A token every 1/DefaultQueueRefill of a second.
	tick := time.Duration(float64(time.Second) / DefaultQueueRefill)
	clk.Advance(tick - tick/10)
	require.Error(t, acme.attributes(context.Background()), "not a whole token yet")
	clk.Advance(tick / 10)
	require.NoError(t, acme.attributes(context.Background()))
	require.Error(t, acme.attributes(context.Background()))
	clk.Advance(time.Second)
	ok, _ = acme.flood(t, 2*int(DefaultQueueRefill))
	assert.Equal(t, int(DefaultQueueRefill), ok)
}

// TestQueueThrottleAcrossProcesses: clouds sharing a database file share
// an account's bucket.
func TestQueueThrottleAcrossProcesses(t *testing.T) {
	clk := newClock()
	cfg := Config{DBPath: t.TempDir() + "/ec2.db", Now: clk.Now, QueueBucket: 5, QueueRefill: 1}
	_, first := queueEnvs(t, cfg, "acme")
	_, second := queueEnvs(t, cfg, "acme")
	ok, _ := first[0].flood(t, 10)
	assert.Equal(t, 3, ok, "both GetQueueUrl calls and these share five tokens")
	var rt *sqstypes.RequestThrottled
	require.ErrorAs(t, second[0].attributes(context.Background()), &rt)
}

// TestLongPollCap: beyond DefaultQueueLongPolls waiting receives of an
// account, a long poll returns at once; another account's long polls
// still wait, and the account's slots come back when its polls end.
func TestLongPollCap(t *testing.T) {
	cloud, envs := queueEnvs(t, unthrottled(Config{}), "acme", "globex")
	acme, globex := envs[0], envs[1]
	longPoll := func(ctx context.Context, e queueEnv, wait int32) ([]sqstypes.Message, error) {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.url), WaitTimeSeconds: wait})
		if err != nil {
			return nil, err
		}
		return out.Messages, nil
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range DefaultQueueLongPolls {
		wg.Go(func() { _, _ = longPoll(ctx, acme, 20) })
	}
	require.Eventually(t, func() bool { return cloud.queue.longPolls("acme") == DefaultQueueLongPolls },
		10*time.Second, 5*time.Millisecond)

	// Had it waited, its 20 seconds would outlast the context.
	short, stop := context.WithTimeout(context.Background(), 10*time.Second)
	defer stop()
	msgs, err := longPoll(short, acme, 20)
	require.NoError(t, err, "one beyond the cap looks once and returns")
	assert.Empty(t, msgs)
	assert.Equal(t, DefaultQueueLongPolls, cloud.queue.longPolls("acme"))

	start := time.Now()
	_, err = longPoll(context.Background(), globex, 1)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "globex's long poll waits")

	cancel()
	wg.Wait()
	require.Eventually(t, func() bool { return cloud.queue.longPolls("acme") == 0 }, 10*time.Second, 5*time.Millisecond)
	start = time.Now()
	_, err = longPoll(context.Background(), acme, 1)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, time.Since(start), time.Second, "acme's slots are back")
}

// TestPurgeCooldown: a second PurgeQueue within the cooldown fails with
// PurgeQueueInProgress and purges nothing; another account's purge and a
// purge after the cooldown succeed.
func TestPurgeCooldown(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	_, envs := queueEnvs(t, unthrottled(Config{Now: clk.Now}), "acme", "globex")
	acme, globex := envs[0], envs[1]
	purge := func(e queueEnv) error {
		_, err := e.sqs.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: aws.String(e.url)})
		return err
	}

	require.NoError(t, purge(acme))
	_, err := run(ctx, acme.ec2, "t3.micro", 1, 1)
	require.NoError(t, err)
	err = purge(acme)
	var inProgress *sqstypes.PurgeQueueInProgress
	require.ErrorAs(t, err, &inProgress)
	assert.Equal(t, "AWS.SimpleQueueService.PurgeQueueInProgress", errorCode(t, err))
	assert.Equal(t, http.StatusBadRequest, httpStatus(t, err))
	assert.Equal(t, "2", acme.counts(t)["ApproximateNumberOfMessages"], "the refused purge deleted nothing")
	require.NoError(t, purge(globex), "globex's cooldown is its own")

	clk.Advance(DefaultPurgeCooldown - time.Second)
	require.ErrorAs(t, purge(acme), &inProgress)
	clk.Advance(time.Second)
	require.NoError(t, purge(acme))
	assert.Equal(t, "0", acme.counts(t)["ApproximateNumberOfMessages"])
}

func TestQueueLimitsConfig(t *testing.T) {
	_, err := Open(Config{QueueRefill: -1})
	assert.Error(t, err)
	cloud, err := Open(Config{})
	require.NoError(t, err)
	defer cloud.Close()
	assert.Equal(t, DefaultQueueBucket, cloud.cfg.QueueBucket)
	assert.Equal(t, DefaultQueueLongPolls, cloud.cfg.QueueLongPolls)
	assert.Equal(t, DefaultPurgeCooldown, cloud.cfg.PurgeCooldown)
}
