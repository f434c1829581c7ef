package sqsevents

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

// Samples in the shape EventBridge delivers to an SQS target, one per
// detail type.
const (
	sampleRunning = `{
  "version": "0",
  "id": "3e6b1c0a-8f0e-4d8a-9c55-0c1f6a3b2d11",
  "detail-type": "EC2 Instance State-change Notification",
  "source": "aws.ec2",
  "account": "111122223333",
  "time": "2025-03-04T05:06:07Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-0a1b2c3d4e5f60718"],
  "detail": {"instance-id": "i-0a1b2c3d4e5f60718", "state": "running"}
}`
	sampleTerminated  = `{"version":"0","id":"9d2c4f1e-0b7a-4e33-8a21-5f6e7d8c9b0a","detail-type":"EC2 Instance State-change Notification","source":"aws.ec2","account":"111122223333","time":"2025-03-04T05:09:00Z","region":"eu-west-1","resources":["arn:aws:ec2:eu-west-1:111122223333:instance/i-00000000000000001"],"detail":{"instance-id":"i-00000000000000001","state":"terminated"}}`
	sampleSpotWarning = `{
  "version": "0",
  "id": "5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d",
  "detail-type": "EC2 Spot Instance Interruption Warning",
  "source": "aws.ec2",
  "account": "111122223333",
  "time": "2025-03-04T05:07:30Z",
  "region": "us-east-1",
  "resources": ["arn:aws:ec2:us-east-1:111122223333:instance/i-0fedcba9876543210"],
  "detail": {"instance-id": "i-0fedcba9876543210", "instance-action": "terminate"}
}`
	sampleRebalance = `{"version":"0","id":"1f2e3d4c-5b6a-4978-8695-a4b3c2d1e0f9","detail-type":"EC2 Instance Rebalance Recommendation","source":"aws.ec2","account":"111122223333","time":"2025-03-04T05:07:00Z","region":"us-east-1","resources":["arn:aws:ec2:us-east-1:111122223333:instance/i-0fedcba9876543210"],"detail":{"instance-id":"i-0fedcba9876543210"}}`
)

// snsWrap wraps an event as an SNS notification delivered raw-less to SQS.
func snsWrap(event string) string {
	b, _ := json.Marshal(map[string]string{
		"Type":             "Notification",
		"MessageId":        "b2c3d4e5-0000-4000-8000-000000000001",
		"TopicArn":         "arn:aws:sns:us-east-1:111122223333:ec2-events",
		"Message":          event,
		"Timestamp":        "2025-03-04T05:06:08.123Z",
		"SignatureVersion": "1",
	})
	return string(b)
}

func TestParseEventBridgeSamples(t *testing.T) {
	at := func(s string) time.Time { v, _ := time.Parse(time.RFC3339, s); return v }
	for name, c := range map[string]struct {
		body string
		want Event
	}{
		"running":     {sampleRunning, Event{InstanceID: "i-0a1b2c3d4e5f60718", State: "running", At: at("2025-03-04T05:06:07Z")}},
		"terminated":  {sampleTerminated, Event{InstanceID: "i-00000000000000001", State: "terminated", At: at("2025-03-04T05:09:00Z")}},
		"spot":        {sampleSpotWarning, Event{InstanceID: "i-0fedcba9876543210", Interrupted: true, At: at("2025-03-04T05:07:30Z")}},
		"sns running": {snsWrap(sampleRunning), Event{InstanceID: "i-0a1b2c3d4e5f60718", State: "running", At: at("2025-03-04T05:06:07Z")}},
	} {
		got, err := parse(c.body)
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s: got %+v, want %+v", name, got, c.want)
		}
	}
	if _, err := parse(sampleRebalance); !errors.Is(err, errIgnored) {
		t.Errorf("rebalance recommendation: got %v, want it ignored", err)
	}
	// Every launch answers with pending: its event tells a fleet nothing.
	pending := strings.Replace(sampleRunning, `"state": "running"`, `"state": "pending"`, 1)
	if pending == sampleRunning {
		t.Fatal("the sample has no running state to replace")
	}
	if _, err := parse(pending); !errors.Is(err, errIgnored) {
		t.Errorf("pending: got %v, want it ignored", err)
	}
}

func TestParseRejectsWhatIsNotAnInstanceEvent(t *testing.T) {
	replace := func(old, new string) string { return strings.Replace(sampleTerminated, old, new, 1) }
	for name, body := range map[string]string{
		"empty":              "",
		"not json":           "hello",
		"json array":         `[1,2]`,
		"s3 event":           `{"Records":[{"eventSource":"aws:s3"}]}`,
		"other source":       replace(`"source":"aws.ec2"`, `"source":"com.example"`),
		"no source":          replace(`"source":"aws.ec2",`, ``),
		"other detail type":  replace(`EC2 Instance State-change Notification`, `EC2 AMI State Change`),
		"unknown state":      replace(`"state":"terminated"`, `"state":"exploded"`),
		"no state":           replace(`,"state":"terminated"`, ``),
		"bad instance id":    replace(`"instance-id":"i-00000000000000001"`, `"instance-id":"i-../../etc"`),
		"not an instance":    replace(`"instance-id":"i-00000000000000001"`, `"instance-id":"vol-0123456789abcdef0"`),
		"detail not object":  replace(`{"instance-id":"i-00000000000000001","state":"terminated"}`, `"terminated"`),
		"bad time":           replace(`2025-03-04T05:09:00Z`, `yesterday`),
		"sns of garbage":     snsWrap("not json"),
		"sns twice":          snsWrap(snsWrap(sampleRunning)),
		"too large":          sampleTerminated + strings.Repeat(" ", maxBody),
		"instance id as num": replace(`"instance-id":"i-00000000000000001"`, `"instance-id":1`),
	} {
		if ev, err := parse(body); err == nil || errors.Is(err, errIgnored) {
			t.Errorf("%s: got %+v, %v; want an error", name, ev, err)
		}
	}
}
