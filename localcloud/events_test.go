package localcloud_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud"
	"github.com/gust-dev/gust/localcloud/ec2"
	"github.com/gust-dev/gust/tenants"
)

func sqsClient(srv *localcloud.Server, p aws.CredentialsProvider) *sqs.Client {
	return sqs.NewFromConfig(sdkConfig(p), func(o *sqs.Options) { o.BaseEndpoint = aws.String(srv.Endpoint()) })
}

// TestEventsQueueOverTheCloudPort: the events queue is served on the
// cloud's port to SigV4-verified callers, each reading only its own
// account's queue, with the instance events of its own launches.
func TestEventsQueueOverTheCloudPort(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, "acme", "globex")
	acmeEC2 := ec2Client(srv, static(creds["acme"]))
	acme, globex := sqsClient(srv, static(creds["acme"])), sqsClient(srv, static(creds["globex"]))

	got, err := acme.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(ec2.EventsQueueName)})
	require.NoError(t, err)
	acmeURL := aws.ToString(got.QueueUrl)
	assert.Equal(t, srv.Endpoint()+"/"+tenants.AccountID("acme")+"/"+ec2.EventsQueueName, acmeURL)
	got, err = globex.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(ec2.EventsQueueName)})
	require.NoError(t, err)
	globexURL := aws.ToString(got.QueueUrl)

	out, err := acmeEC2.RunInstances(ctx, &awsec2.RunInstancesInput{ImageId: aws.String("ami-12345678"),
		InstanceType: types.InstanceTypeT3Micro, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
	require.NoError(t, err)
	id := aws.ToString(out.Instances[0].InstanceId)

	// pending, then running once the boot delay (50 ms here) has passed,
	// which a long poll waits for.
	var states []string
	deadline := time.Now().Add(10 * time.Second)
	for len(states) < 2 && time.Now().Before(deadline) {
		r, err := acme.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(acmeURL), MaxNumberOfMessages: 10, WaitTimeSeconds: 5})
		require.NoError(t, err)
		for _, m := range r.Messages {
			var ev struct {
				Account string `json:"account"`
				Detail  struct {
					InstanceID string `json:"instance-id"`
					State      string `json:"state"`
				} `json:"detail"`
			}
			require.NoError(t, json.Unmarshal([]byte(aws.ToString(m.Body)), &ev))
			assert.Equal(t, tenants.AccountID("acme"), ev.Account)
			assert.Equal(t, id, ev.Detail.InstanceID)
			states = append(states, ev.Detail.State)
			_, err := acme.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(acmeURL), ReceiptHandle: m.ReceiptHandle})
			require.NoError(t, err)
		}
	}
	assert.Equal(t, []string{"pending", "running"}, states)

	// globex sees nothing of it, and acme's queue does not exist for it.
	r, err := globex.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(globexURL)})
	require.NoError(t, err)
	assert.Empty(t, r.Messages)
	_, err = globex.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(acmeURL)})
	var notExist *sqstypes.QueueDoesNotExist
	require.ErrorAs(t, err, &notExist)
}

// TestEventsQueueRefusesUnverifiedCallers: the queue answers only
// requests signed for the sqs service by a known key, in SQS's error
// shape.
func TestEventsQueueRefusesUnverifiedCallers(t *testing.T) {
	ctx := context.Background()
	srv, creds := startCloud(t, "acme")
	c := creds["acme"]

	bad := c
	bad.SecretAccessKey = strings.Repeat("x", len(c.SecretAccessKey))
	_, err := sqsClient(srv, static(bad)).ListQueues(ctx, &sqs.ListQueuesInput{})
	assert.Equal(t, "SignatureDoesNotMatch", code(t, err))

	unknown := c
	unknown.AccessKeyID = "AKIAUNKNOWNUNKNOWN00"
	_, err = sqsClient(srv, static(unknown)).ListQueues(ctx, &sqs.ListQueuesInput{})
	assert.Equal(t, "InvalidClientTokenId", code(t, err))

	body := []byte(`{"QueueName":"` + ec2.EventsQueueName + `"}`)
	header := http.Header{"X-Amz-Target": {"AmazonSQS.GetQueueUrl"}, "Content-Type": {"application/x-amz-json-1.0"}}
	req, err := http.NewRequest(http.MethodPost, srv.Endpoint()+"/", strings.NewReader(string(body)))
	require.NoError(t, err)
	req.Header = header.Clone()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "unsigned")
	assert.Equal(t, "MissingAuthenticationToken;Sender", resp.Header.Get("X-Amzn-Query-Error"))

	// Signed for EC2 with SQS's target: the scope must be sqs.
	req = signer{keyID: c.AccessKeyID, secret: c.SecretAccessKey, token: c.SessionToken, service: "ec2"}.
		sign(t, http.MethodPost, srv.Endpoint()+"/", body, header)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusForbidden, resp.StatusCode, "signed for ec2")

	req = signer{keyID: c.AccessKeyID, secret: c.SecretAccessKey, token: c.SessionToken, service: "sqs"}.
		sign(t, http.MethodPost, srv.Endpoint()+"/", body, header)
	resp, err = http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode, "signed for sqs")
}
