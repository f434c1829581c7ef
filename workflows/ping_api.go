package workflows

import "time"

// PingInput asks PingWorkflow to wait Wait (a durable timer, so the wait
// survives worker and server restarts) and then have a worker answer.
type PingInput struct {
	Message string        `json:"message"`
	Wait    time.Duration `json:"wait_ns"`
}

// PingResult is the worker's answer.
type PingResult struct {
	Message string    `json:"message"`
	Worker  string    `json:"worker"`
	Started time.Time `json:"started"`
	Ended   time.Time `json:"ended"`
}
