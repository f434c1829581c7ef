package sqsevents

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// The EventBridge detail types of EC2's instance events.
const (
	DetailTypeStateChange = "EC2 Instance State-change Notification"
	DetailTypeSpotWarning = "EC2 Spot Instance Interruption Warning"
	DetailTypeRebalance   = "EC2 Instance Rebalance Recommendation"
)

// Event is one instance event: a state change (State set), or a spot
// interruption warning (Interrupted; the instance still runs).
type Event struct {
	InstanceID  string
	State       string
	Interrupted bool
	// At is when the cloud says it happened (the event's time).
	At time.Time
}

// maxBody bounds the message bodies parsed; an EC2 event is well under
// a kilobyte, and SQS's own limit is 1 MiB.
const maxBody = 64 << 10

var instanceIDRe = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// states are EC2's instance states, the values detail.state may take.
var states = map[string]bool{
	"pending": true, "running": true, "shutting-down": true, "terminated": true, "stopping": true, "stopped": true,
}

// errIgnored marks a message that is well formed but not an event the
// fleets need: a rebalance recommendation, or a change to pending, the
// state every launch answers with, so that a fleet learns nothing from it
// (about half of a launching fleet's events: dropping them here saves the
// lookups and signals).
var errIgnored = errors.New("not an instance event")

// envelope is an EventBridge event, or an SNS notification carrying one
// in Message: a queue subscribed to an SNS topic that an EventBridge rule
// targets gets them that way.
type envelope struct {
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       string          `json:"time"`
	Detail     json.RawMessage `json:"detail"`

	Type    string `json:"Type"`
	Message string `json:"Message"`
}

type detail struct {
	InstanceID string `json:"instance-id"`
	State      string `json:"state"`
}

// parse reads one message body. It returns errIgnored for an EC2 event
// the fleets do not need, and another error for anything that is not an
// EC2 instance event; the queue deletes both, so a sender of garbage
// cannot wedge it. It trusts nothing in the body: the instance id and
// state must look like EC2's.
func parse(body string) (Event, error) {
	if len(body) > maxBody {
		return Event{}, fmt.Errorf("message body of %d bytes is too large for an event", len(body))
	}
	var env envelope
	if err := json.Unmarshal([]byte(body), &env); err != nil {
		return Event{}, fmt.Errorf("message body is not JSON, %w", err)
	}
	if env.DetailType == "" && env.Type == "Notification" && env.Message != "" {
		// One level of SNS wrapping only.
		msg := env.Message
		env = envelope{}
		if err := json.Unmarshal([]byte(msg), &env); err != nil {
			return Event{}, fmt.Errorf("sns message is not JSON, %w", err)
		}
	}
	if env.Source != "aws.ec2" {
		return Event{}, fmt.Errorf("event source %q is not aws.ec2", env.Source)
	}
	at, err := time.Parse(time.RFC3339, env.Time)
	if err != nil {
		return Event{}, fmt.Errorf("event time %q, %w", env.Time, err)
	}
	var d detail
	switch env.DetailType {
	case DetailTypeStateChange, DetailTypeSpotWarning:
		if err := json.Unmarshal(env.Detail, &d); err != nil {
			return Event{}, fmt.Errorf("%s detail, %w", env.DetailType, err)
		}
	case DetailTypeRebalance:
		return Event{}, errIgnored
	default:
		return Event{}, fmt.Errorf("detail type %q is not an instance event", env.DetailType)
	}
	if !instanceIDRe.MatchString(d.InstanceID) {
		return Event{}, fmt.Errorf("instance id %q is not one", d.InstanceID)
	}
	ev := Event{InstanceID: d.InstanceID, At: at.UTC()}
	if env.DetailType == DetailTypeSpotWarning {
		ev.Interrupted = true
		return ev, nil
	}
	if !states[d.State] {
		return Event{}, fmt.Errorf("instance state %q is not one", d.State)
	}
	if d.State == "pending" {
		return Event{}, errIgnored
	}
	ev.State = d.State
	return ev, nil
}
