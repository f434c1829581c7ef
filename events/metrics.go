package events

// The router's metrics, each labelled tenant; their HELP texts are in
// worker.HelpTexts.
const (
	// MetricReceived counts instance events received, redeliveries
	// included.
	MetricReceived = "gust_fleet_events_received"
	// MetricDelivered counts instance events signalled to their fleet.
	MetricDelivered = "gust_fleet_events_delivered"
	// MetricIgnored counts events and messages dropped, labelled reason
	// (the reason constants).
	MetricIgnored = "gust_fleet_events_ignored"
	// MetricLookupMisses counts instances whose fleet the router did not
	// know and looked up with DescribeInstances.
	MetricLookupMisses = "gust_fleet_events_lookup_misses"
)

// Reasons of MetricIgnored.
const (
	reasonNotEvent    = "not_event"    // a message that is no instance event the fleets need
	reasonNoFleet     = "no_fleet"     // an instance that is no fleet's, or that the cloud did not find
	reasonFleetClosed = "fleet_closed" // the fleet's workflow is no longer running
)

func (r *Router) count(tenant, name string, n int) {
	if n > 0 {
		r.cfg.Metrics.WithTags(map[string]string{"tenant": tenant}).Counter(name).Inc(int64(n))
	}
}

func (r *Router) countIgnored(tenant, reason string, n int) {
	if n > 0 {
		r.cfg.Metrics.WithTags(map[string]string{"tenant": tenant, "reason": reason}).Counter(MetricIgnored).Inc(int64(n))
	}
}
