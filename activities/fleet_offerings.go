package activities

import (
	"context"

	"github.com/gust-dev/gust/providers"
)

// Fleet activities for fleets of several offerings (instance type, zone and
// market). LaunchFleetWorkflow uses them for fleets started after offerings
// existed; older runs keep CheckInstanceType, ReserveCapacity, LaunchFill
// and CountRunning.

// OfferingSpec is one offering as the user asked for it.
type OfferingSpec struct {
	InstanceType string `json:"instance_type"`
	// Zone is empty for any zone (or each subnet's zone).
	Zone string `json:"zone,omitempty"`
	// Weight is the capacity units one instance counts for (>= 1).
	Weight int `json:"weight"`
}

// PrepareFleetInput asks the cloud to check a fleet's request and to price
// its offerings.
type PrepareFleetInput struct {
	Tenant    string         `json:"tenant,omitempty"`
	Offerings []OfferingSpec `json:"offerings"`
	// SubnetIDs, when set, place the fleet's instances in these subnets:
	// an offering without a zone becomes one offering per subnet (in the
	// subnet's zone), and an offering with a zone uses the subnet in it.
	SubnetIDs []string `json:"subnet_ids,omitempty"`
	// Markets are the markets the fleet may launch in.
	Markets []string               `json:"markets"`
	Params  providers.LaunchParams `json:"params,omitzero"`
}

// PreparedOffering is one offering the fleet may launch, with what the
// cloud said of it.
type PreparedOffering struct {
	InstanceType string `json:"instance_type"`
	Zone         string `json:"zone,omitempty"`
	SubnetID     string `json:"subnet_id,omitempty"`
	Weight       int    `json:"weight"`
	// Source is the index of the OfferingSpec it came from.
	Source int `json:"source"`
	// Prices (USD per instance-hour) and capacity scores (1..10, 0 unknown)
	// per market.
	OnDemandPrice float64 `json:"on_demand_price,omitempty"`
	SpotPrice     float64 `json:"spot_price,omitempty"`
	OnDemandScore int     `json:"on_demand_score,omitempty"`
	SpotScore     int     `json:"spot_score,omitempty"`
}

// PrepareFleetResult lists the fleet's offerings, expanded by subnet, in
// the order of the input, or the problems that make the request invalid.
type PrepareFleetResult struct {
	Offerings []PreparedOffering `json:"offerings"`
	// Problems are one-line, user-facing reasons the cloud would reject the
	// fleet's launches (an unknown instance type, subnet, security group,
	// key, template or image). The workflow fails the fleet as an invalid
	// request when there are any, before anything is reserved.
	Problems []string `json:"problems,omitempty"`
	// EventsActive says this worker receives the tenant's instance events
	// (as ReconcileFleetResult's), so the fleet need not count at once.
	// Only set when there are no Problems.
	EventsActive bool `json:"events_active,omitempty"`
}

// PrepareFleet checks the fleet's request against the cloud: the instance
// types are offered, the subnets exist (and give the zones), and a dry-run
// launch of each instance type in each market with the launch parameters
// passes. It prices the offerings. Errors are transient cloud errors only;
// a bad request is a PrepareFleetResult with Problems.
func (a *Fleet) PrepareFleet(ctx context.Context, in PrepareFleetInput) (PrepareFleetResult, error) {
	return a.prepareFleet(ctx, in)
}

// ReserveOffering is one offering a reservation may hold.
type ReserveOffering struct {
	// Offering is the offering's index in the fleet's list.
	Offering     int    `json:"offering"`
	InstanceType string `json:"instance_type"`
	Zone         string `json:"zone,omitempty"`
	Weight       int    `json:"weight"`
}

// ReserveOfferingsInput asks for capacity reservations that together hold
// Units capacity units, trying Offerings in order.
type ReserveOfferingsInput struct {
	Tenant    string            `json:"tenant,omitempty"`
	FleetID   string            `json:"fleet_id"`
	Offerings []ReserveOffering `json:"offerings"`
	Units     int               `json:"units"`
	// ClientToken is the prefix of each reservation's client token, so a
	// retried activity gets the same reservations back.
	ClientToken string            `json:"client_token"`
	Tags        map[string]string `json:"tags"`
}

// HeldReservation is one reservation of a ReserveOfferingsResult.
type HeldReservation struct {
	Offering      int    `json:"offering"`
	ReservationID string `json:"reservation_id"`
	Zone          string `json:"zone"`
	Count         int    `json:"count"`
}

// ReserveOfferingsResult is the reservations that hold the units, in the
// order they were made.
type ReserveOfferingsResult struct {
	Reservations []HeldReservation `json:"reservations"`
	// Unavailable are the offerings that had no capacity for what was asked
	// of them.
	Unavailable []int `json:"unavailable,omitempty"`
}

// ReserveOfferings reserves Units capacity units across the offerings, all
// or nothing: it asks each offering in order for what is still missing,
// halving the request when the offering has not that much, until the units
// are held. If they cannot all be held it cancels every reservation it made
// and fails with an InsufficientCapacity ApplicationError.
func (a *Fleet) ReserveOfferings(ctx context.Context, in ReserveOfferingsInput) (ReserveOfferingsResult, error) {
	return a.reserveOfferings(ctx, in)
}

// LaunchCandidate is one offering a launch may use.
type LaunchCandidate struct {
	Offering     int    `json:"offering"`
	InstanceType string `json:"instance_type"`
	Zone         string `json:"zone,omitempty"`
	SubnetID     string `json:"subnet_id,omitempty"`
	Weight       int    `json:"weight"`
	Priority     int    `json:"priority"`
}

// LaunchOfferingsInput launches up to Units capacity units in one market,
// from Candidates in order: the fill path's round.
type LaunchOfferingsInput struct {
	Tenant     string            `json:"tenant,omitempty"`
	FleetID    string            `json:"fleet_id"`
	Candidates []LaunchCandidate `json:"candidates"`
	Units      int               `json:"units"`
	Market     string            `json:"market"`
	// Strategy is the fleet's allocation strategy, for CreateFleet.
	Strategy string `json:"strategy"`
	// ClientToken is the prefix of each call's client token.
	ClientToken string                 `json:"client_token"`
	Tags        map[string]string      `json:"tags"`
	Params      providers.LaunchParams `json:"params,omitzero"`
}

// LaunchedInstance is one instance and the offering it was launched from.
type LaunchedInstance struct {
	ID       string `json:"id"`
	Offering int    `json:"offering"`
}

// LaunchOfferingsResult is what a LaunchOfferings call launched.
type LaunchOfferingsResult struct {
	Instances []LaunchedInstance `json:"instances"`
	// Unavailable are the candidates that answered InsufficientInstanceCapacity.
	Unavailable []int `json:"unavailable,omitempty"`
}

// LaunchOfferings launches up to in.Units capacity units: with a launch
// template, no security groups (CreateFleet has no field for them; the
// template must carry them) and more than one candidate, in one
// CreateFleet (instant) call; otherwise with RunInstances on each candidate in turn until the units are
// launched. A candidate without capacity is not an error: it is listed in
// Unavailable and the next is tried at once. It fails only with errors no
// candidate can fix (invalid parameters, throttling past retries).
// Workflows schedule it on workflows.LaunchTaskQueue.
func (a *Fleet) LaunchOfferings(ctx context.Context, in LaunchOfferingsInput) (LaunchOfferingsResult, error) {
	return a.launchOfferings(ctx, in)
}

// ReconcileFleetInput selects one fleet launch's instances by its tags.
type ReconcileFleetInput struct {
	Tenant  string `json:"tenant,omitempty"`
	FleetID string `json:"fleet_id"`
	RunTag  string `json:"run_tag"`
}

// InstanceState is one instance's state as the cloud reports it.
type InstanceState struct {
	ID    string `json:"id"`
	State string `json:"state"`
	// Interrupted: the instance has its spot interruption notice.
	Interrupted bool `json:"interrupted,omitempty"`
}

// ReconcileFleetResult counts the fleet's instances and lists those that
// are not plainly running.
type ReconcileFleetResult struct {
	Running int `json:"running"`
	Pending int `json:"pending"`
	Total   int `json:"total"`
	// NotRunning are the instances pending, shutting down, terminated (as
	// long as the cloud still lists them), or running under an
	// interruption notice.
	NotRunning []InstanceState `json:"not_running,omitempty"`
	// EventsActive says this worker receives the tenant's instance events,
	// so the fleet need not poll.
	EventsActive bool `json:"events_active"`
}

// EventWatcher is what the fleet activities need of the worker's instance
// event router (package events): Watch makes sure the tenant's events are
// being received and says whether they are, and Learn tells it the fleet
// of instances a launch just reported, so their events need no lookup.
type EventWatcher interface {
	Watch(tenant string) (active bool)
	Learn(tenant, fleetID, runTag string, ids []string)
}

// ReconcileFleet counts the fleet's instances with one DescribeInstances
// (by tag) and lists those not plainly running. The workflow calls it at
// the start of each run and then rarely (every 30s or so) when events
// arrive, or every poll interval when they do not.
func (a *Fleet) ReconcileFleet(ctx context.Context, in ReconcileFleetInput) (ReconcileFleetResult, error) {
	return a.reconcileFleet(ctx, in)
}
