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

// Markets an instance can be bought in.
const (
	MarketOnDemand = "on-demand"
	MarketSpot     = "spot"
)

// Instance is one launched instance.
type Instance struct {
	ID           string
	InstanceType string
	Zone         string
	State        string
	Tags         map[string]string
	LaunchTime   time.Time
	// Market is MarketSpot for a spot instance, else MarketOnDemand.
	Market string
	// Interrupted says the cloud has given the instance its spot
	// interruption notice: it still runs, and will be reclaimed.
	Interrupted bool
	// StateReason is the cloud's reason for the state, if any (EC2's
	// stateReason code, e.g. Server.SpotInstanceTermination).
	StateReason string
}

// LaunchTemplateRef names an EC2 launch template by id or name; Version is
// a number, "$Latest" or "$Default" (empty means the default version).
type LaunchTemplateRef struct {
	ID      string `json:"id,omitempty"`
	Name    string `json:"name,omitempty"`
	Version string `json:"version,omitempty"`
}

// IsZero reports whether no template is named.
func (r LaunchTemplateRef) IsZero() bool { return r.ID == "" && r.Name == "" }

// LaunchParams are the parameters every instance of a launch gets, passed
// through to RunInstances and CreateFleet as they are. A launch template,
// when named, supplies defaults that the other fields override.
type LaunchParams struct {
	ImageID            string            `json:"image_id,omitempty"`
	SecurityGroupIDs   []string          `json:"security_group_ids,omitempty"`
	KeyName            string            `json:"key_name,omitempty"`
	UserData           []byte            `json:"user_data,omitempty"`            // raw; the provider encodes it
	IAMInstanceProfile string            `json:"iam_instance_profile,omitempty"` // an ARN or a name
	LaunchTemplate     LaunchTemplateRef `json:"launch_template,omitzero"`
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
	// Market is MarketOnDemand (also when empty) or MarketSpot. A spot
	// launch never targets a reservation.
	Market string
	// SubnetID places the instances in a subnet, which implies its zone;
	// Zone, when also set, must be the subnet's.
	SubnetID string
	// Params go to every instance. Params.ImageID, when set, wins over
	// ImageID.
	Params LaunchParams
	// DryRun checks the request without launching: Run returns nil and no
	// instances when it would have launched, else the error it would have
	// returned (capacity aside: a dry run does not check capacity).
	DryRun bool
}

// Offering is one instance type in one zone (any zone when empty) and
// market that a fleet may launch.
type Offering struct {
	InstanceType string
	Zone         string
	Market       string
}

// OfferingInfo is what the cloud says of an offering.
type OfferingInfo struct {
	Offering
	// Price is the current price per instance-hour in USD; 0 if the cloud
	// does not say.
	Price float64
	// Score rates the odds that capacity is there, 1 (low) to 10 (high),
	// as EC2's spot placement score does; 0 if the cloud does not say
	// (EC2 scores spot offerings only).
	Score int
}

// Subnet is a subnet and the zone it is in.
type Subnet struct {
	ID   string
	Zone string
}

// FleetLaunchOverride is one offering of a FleetLaunchInput.
type FleetLaunchOverride struct {
	InstanceType string
	Zone         string
	SubnetID     string
	// Weight is the capacity units one instance counts for (>= 1).
	Weight int
	// Priority orders the overrides for the prioritized strategy: lower
	// first.
	Priority int
}

// FleetLaunchInput asks for TotalUnits capacity units of one market over
// several offerings in one call (EC2 CreateFleet of type instant).
type FleetLaunchInput struct {
	Overrides []FleetLaunchOverride
	// TotalUnits is the capacity to launch; MinUnits, when positive, is
	// all-or-nothing: fewer launch none.
	TotalUnits, MinUnits int
	Market               string
	// Strategy is "prioritized" or "lowest-price" (on-demand), or one of
	// EC2's spot allocation strategies.
	Strategy    string
	ClientToken string
	Tags        map[string]string
	Params      LaunchParams
}

// FleetLaunchResult says what one FleetLaunch launched, by override.
type FleetLaunchResult struct {
	// Instances are the launched instances, each with the index of its
	// override in FleetLaunchInput.Overrides.
	Instances []FleetLaunched
	// Errors are the overrides that could not launch, with EC2's error
	// code (InsufficientInstanceCapacity means no capacity there).
	Errors []FleetLaunchError
}

// FleetLaunched is one instance of a FleetLaunchResult.
type FleetLaunched struct {
	// Override is the index of the instance's override in
	// FleetLaunchInput.Overrides, or -1 when the cloud's answer matches none.
	Override int
	Instance Instance
}

// FleetLaunchError is one override's failure in a FleetLaunchResult.
type FleetLaunchError struct {
	// Override is the index of the failed override in
	// FleetLaunchInput.Overrides, or -1 when the cloud's error names none.
	Override int
	Code     string
	Message  string
	// Type is the providers error type (ErrType*) the provider gives Code,
	// such as ErrTypeInsufficientCapacity; "" for a code it does not know.
	// Callers branch on Type, never on Code, which is the cloud's own.
	Type string
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
	// ListReservations lists the active and pending capacity reservations
	// that carry every tag in tags (at least one), following pagination.
	// Like Describe it may lag a Reserve on a cloud that is eventually
	// consistent (EC2); it returns ThrottledError when rate limited.
	ListReservations(ctx context.Context, tags map[string]string) ([]Reservation, error)
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
	// LaunchFleet launches over several offerings in one call (EC2
	// CreateFleet, type instant). A request the cloud rejects returns
	// InvalidError, ThrottledError when rate limited (nothing launched);
	// offerings without capacity are not an error but FleetLaunchResult
	// Errors. It needs a launch template (Params.LaunchTemplate): EC2's
	// CreateFleet takes no launch parameters of its own; without one it
	// returns InvalidError. CreateFleet has no security groups either:
	// Params.SecurityGroupIDs is InvalidError (the template names them).
	LaunchFleet(ctx context.Context, in FleetLaunchInput) (FleetLaunchResult, error)
	// DescribeOfferings returns the price and capacity score of each
	// offering, in order. Unknown values are 0, never an error; a cloud
	// that cannot be asked returns the error.
	DescribeOfferings(ctx context.Context, offerings []Offering) ([]OfferingInfo, error)
	// Subnets resolves subnet ids to their zones, in order. An unknown id
	// returns NotFoundError.
	Subnets(ctx context.Context, ids []string) ([]Subnet, error)
}
