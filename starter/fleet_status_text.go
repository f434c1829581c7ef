package main

import (
	"fmt"
	"time"

	"github.com/gust-dev/gust/workflows"
)

// offeringLines are `fleet status`'s lines for a fleet's offerings, one
// each: "m5.xlarge us-east-1a subnet-… (weight 2): 3 on-demand, 5 spot".
func offeringLines(offerings []workflows.OfferingStatus) []string {
	lines := make([]string, 0, len(offerings))
	for _, o := range offerings {
		s := offeringName(o.InstanceType, o.Zone)
		if o.SubnetID != "" {
			s += " " + o.SubnetID
		}
		if o.Weight > 1 {
			s += fmt.Sprintf(" (weight %d)", o.Weight)
		}
		lines = append(lines, fmt.Sprintf("%s: %d on-demand, %d spot", s, o.OnDemand, o.Spot))
	}
	return lines
}

// unavailableLines are `fleet status`'s lines for the offerings a fleet
// skips for now: "m5.large us-east-1a on-demand: no capacity, retry in
// 2m41s".
func unavailableLines(unavailable []workflows.UnavailableOffering) []string {
	lines := make([]string, 0, len(unavailable))
	for _, u := range unavailable {
		left := (time.Duration(max(0, u.LeftMS)) * time.Millisecond).Round(time.Second)
		lines = append(lines, fmt.Sprintf("%s %s: no capacity, retry in %v", offeringName(u.InstanceType, u.Zone), u.Market, left))
	}
	return lines
}

// offeringName is "TYPE ZONE", or "TYPE any zone" for an offering in any
// zone.
func offeringName(typ, zone string) string {
	if zone == "" {
		zone = "any zone"
	}
	return typ + " " + zone
}

// firstOnly is label for a table's first row of a kind and "" for the
// rows that continue it.
func firstOnly(i int, label string) string {
	if i == 0 {
		return label
	}
	return ""
}
