package providers

import (
	"context"
	"time"
)

// FleetTagKey is the tag every instance a fleet launches carries; its value
// is the fleet id. DescribeInstances by this tag is how gust finds a fleet's
// instances after a crash.
const FleetTagKey = "gust:fleet-id"

// Instance states, as EC2 names them.
const (
	StatePending      = "pending"
	StateRunning      = "running"
	StateShuttingDown = "shutting-down"
	StateTerminated   = "terminated"
)

// Instance is one launched instance.
type Instance struct {
	ID           string
	InstanceType string
	Zone         string
	State        string
	Tags         map[string]string
	LaunchTime   time.Time
}

// ReserveInput asks for a capacity reservation of Count instances of
// InstanceType in one of Zones (any zone when empty).
type ReserveInput struct {
	InstanceType string
	Zones        []string
	Count        int
	// ClientToken makes the call idempotent: the same token returns the same
	// reservation.
	ClientToken string
	Tags        map[string]string
}

// Reservation is a capacity reservation that holds Count instances in Zone.
type Reservation struct {
	ID           string
	InstanceType string
	Zone         string
	Count        int
	Available    int
	State        string
}

// RunInput asks RunInstances for between MinCount and MaxCount instances.
// It is all-or-nothing for MinCount: either at least MinCount start or none.
type RunInput struct {
	InstanceType string
	ImageID      string
	Zone         string // empty lets the cloud choose
	MinCount     int
	MaxCount     int
	// ClientToken makes the call idempotent. The same token with the same
	// parameters returns the instances of the first call; with different
	// parameters it fails with IdempotencyMismatchError.
	ClientToken string
	// ReservationID targets a capacity reservation; empty means open capacity.
	ReservationID string
	Tags          map[string]string
}

// InstanceFilter selects instances. Empty fields match everything.
type InstanceFilter struct {
	IDs    []string
	Tags   map[string]string
	States []string
}

// Compute is the EC2-style contract the fleet activities use.
type Compute interface {
	// Reserve creates a capacity reservation. It returns
	// InsufficientCapacityError when no zone can hold Count, ThrottledError
	// when rate limited, and InvalidError for bad parameters (an unknown
	// instance type, a non-positive count).
	Reserve(ctx context.Context, in ReserveInput) (Reservation, error)
	// CancelReservation releases a reservation's unused capacity. It returns
	// NotFoundError if the reservation does not exist.
	CancelReservation(ctx context.Context, id string) error
	// Run launches instances. It returns InsufficientCapacityError when fewer
	// than MinCount can start (nothing is launched then), ThrottledError when
	// the request or resource rate limiter refused the call (nothing is
	// launched), IdempotencyMismatchError and InvalidError as documented on
	// RunInput.
	Run(ctx context.Context, in RunInput) ([]Instance, error)
	// Describe lists the instances that match f, following pagination.
	Describe(ctx context.Context, f InstanceFilter) ([]Instance, error)
	// Terminate terminates instances. Already terminated ids are not an
	// error; unknown ids return NotFoundError.
	Terminate(ctx context.Context, ids []string) error
	// InstanceTypes lists the instance types offered, for input validation.
	InstanceTypes(ctx context.Context) ([]string, error)
}
