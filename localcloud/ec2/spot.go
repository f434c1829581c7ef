package ec2

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"sort"
)

// spotZonePrice is the spot price of one type in one zone.
type spotZonePrice struct {
	instanceType, zone string
	price              float64
	free               int // free spot capacity that zone can draw on
	zonalFree          int // of which in the zone's own pool
}

// spotPrices lists the spot price and free capacity of every type in every
// zone it is offered in: a zone's own spot pool, else the type's regional
// spot pool. Free capacity counts both. It accrues the pools, so it needs
// a write transaction.
func (c *Cloud) spotPrices(ctx context.Context, tx *sql.Tx, now int64) ([]spotZonePrice, error) {
	rows, err := tx.QueryContext(ctx, `SELECT instance_type, zone FROM pools WHERE zone LIKE 'spot:%' ORDER BY instance_type, zone`)
	if err != nil {
		return nil, fmt.Errorf("listing spot pools, %w", err)
	}
	type key struct{ t, z string }
	var keys []key
	for rows.Next() {
		var k key
		if err := rows.Scan(&k.t, &k.z); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing spot pools, %w", err)
		}
		keys = append(keys, k)
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("listing spot pools, %w", err)
	}
	type pool struct {
		price float64
		free  int
	}
	pools := map[key]pool{}
	types := map[string]bool{}
	for _, k := range keys {
		free, _, err := accrue(ctx, tx, k.t, k.z, now)
		if err != nil {
			return nil, err
		}
		price, err := poolPrice(ctx, tx, k.t, k.z)
		if err != nil {
			return nil, err
		}
		_, zone := splitPoolKey(k.z)
		pools[key{k.t, zone}] = pool{price, max(free, 0)}
		types[k.t] = true
	}
	var out []spotZonePrice
	for t := range types {
		regional, hasRegional := pools[key{t, ""}]
		for _, z := range c.cfg.Zones {
			zonal, hasZonal := pools[key{t, z}]
			if !hasZonal && !hasRegional {
				continue
			}
			sp := spotZonePrice{instanceType: t, zone: z, price: regional.price, free: regional.free + zonal.free, zonalFree: zonal.free}
			if hasZonal {
				sp.price = zonal.price
			}
			out = append(out, sp)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].instanceType != out[j].instanceType {
			return out[i].instanceType < out[j].instanceType
		}
		return out[i].zone < out[j].zone
	})
	return out, nil
}

// describeSpotPriceHistory answers the current spot price of each type
// and zone; prices here do not move, so the history is one point, stamped
// now. Only Linux/UNIX is offered.
func (c *Cloud) describeSpotPriceHistory(ctx context.Context, _ string, p params, w *xmlWriter) error {
	types := p.list("InstanceType")
	zone := p.get("AvailabilityZone")
	if zone != "" && !c.zones[zone] {
		return apiErrorf(codeInvalidParameterValue, "Invalid availability zone: [%s]", zone)
	}
	products := p.list("ProductDescription")
	filters, err := p.filters()
	if err != nil {
		return err
	}
	const linux = "Linux/UNIX"
	for _, f := range filters {
		switch f.Name {
		case "instance-type", "availability-zone", "product-description", "spot-price", "timestamp":
		default:
			return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	var list []spotZonePrice
	now := c.cfg.Now()
	err = c.write(ctx, func(tx *sql.Tx) error {
		list, err = c.spotPrices(ctx, tx, now.UnixNano())
		return err
	})
	if err != nil {
		return err
	}
	offered := len(products) == 0 || contains(products, linux) || contains(products, linux+" (Amazon VPC)")
	w.open("spotPriceHistorySet")
	for _, sp := range list {
		price := formatPrice(sp.price)
		show := offered && (len(types) == 0 || contains(types, sp.instanceType)) && (zone == "" || zone == sp.zone)
		for _, f := range filters {
			switch f.Name {
			case "instance-type":
				show = show && contains(f.Values, sp.instanceType)
			case "availability-zone":
				show = show && contains(f.Values, sp.zone)
			case "product-description":
				show = show && contains(f.Values, linux)
			case "spot-price":
				show = show && contains(f.Values, price)
			}
		}
		if !show {
			continue
		}
		w.open("item")
		w.text("instanceType", sp.instanceType)
		w.text("productDescription", linux)
		w.text("spotPrice", price)
		w.time("timestamp", now)
		w.text("availabilityZone", sp.zone)
		w.text("availabilityZoneId", c.zoneID(sp.zone))
		w.close("item")
	}
	w.close("spotPriceHistorySet")
	return nil
}

// placementScore maps free spot capacity against a target to EC2's 1..10:
// 1 when there is none, 4 when it just covers the target, 10 at three
// times the target or more.
func placementScore(free, target int) int {
	ratio := float64(free) / float64(target)
	return int(math.Min(10, math.Max(1, 1+math.Floor(3*ratio))))
}

// getSpotPlacementScores scores the region, or each zone with
// SingleAvailabilityZone, by how easily it could launch TargetCapacity
// spot instances of the given types now (placementScore).
func (c *Cloud) getSpotPlacementScores(ctx context.Context, _ string, p params, w *xmlWriter) error {
	types := p.list("InstanceType")
	if len(types) == 0 {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter InstanceType (attribute-based InstanceRequirements are not supported here)")
	}
	if len(types) > 1000 {
		return apiErrorf(codeInvalidParameterValue, "At most 1000 instance types can be given")
	}
	if _, err := p.required("TargetCapacity"); err != nil {
		return err
	}
	target, err := p.integer("TargetCapacity", 0)
	if err != nil {
		return err
	}
	if target < 1 || target > 2000000000 {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for TargetCapacity. Must be between 1 and 2000000000", target)
	}
	if u := p.get("TargetCapacityUnitType"); u != "" && u != "units" {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for TargetCapacityUnitType: only units is supported here", u)
	}
	single := false
	switch v := p.get("SingleAvailabilityZone"); v {
	case "", "false":
	case "true":
		single = true
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for SingleAvailabilityZone", v)
	}
	for _, r := range p.list("RegionName") {
		if r != c.cfg.Region {
			return apiErrorf(codeInvalidParameterValue, "Invalid region: %s", r)
		}
	}
	var list []spotZonePrice
	err = c.write(ctx, func(tx *sql.Tx) error {
		list, err = c.spotPrices(ctx, tx, c.cfg.Now().UnixNano())
		return err
	})
	if err != nil {
		return err
	}
	// A zone can draw on its own pools and the regional ones; the region
	// has each pool once.
	byZone := map[string]int{}
	total := 0
	regionalCounted := map[string]bool{}
	for _, sp := range list {
		if !contains(types, sp.instanceType) {
			continue
		}
		byZone[sp.zone] += sp.free
		total += sp.zonalFree
		if !regionalCounted[sp.instanceType] {
			regionalCounted[sp.instanceType] = true
			total += sp.free - sp.zonalFree
		}
	}
	w.open("spotPlacementScoreSet")
	if single {
		for _, z := range c.cfg.Zones {
			w.open("item")
			w.text("region", c.cfg.Region)
			w.text("availabilityZoneId", c.zoneID(z))
			w.int("score", placementScore(byZone[z], target))
			w.close("item")
		}
	} else {
		w.open("item")
		w.text("region", c.cfg.Region)
		w.int("score", placementScore(total, target))
		w.close("item")
	}
	w.close("spotPlacementScoreSet")
	return nil
}
