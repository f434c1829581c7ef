package ec2

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"time"
)

// CreateFleet of type instant: one synchronous attempt to launch a target
// capacity, in weighted units, from a list of launch template configs and
// their overrides, split between on-demand and spot. The whole call is one
// transaction; what could not be launched is reported in errorSet beside
// what was, in fleetInstanceSet, as EC2 answers an instant fleet.
//
// Simplifications: maintain and request fleets are Unsupported; a
// template's InstanceMarketOptions are ignored (the fleet decides the
// market, as on EC2); price-capacity-optimized orders pools by price per
// unit and then free capacity; a draw from a regional pool without a zone
// lands in the first zone.

const (
	maxFleetCandidates = 300 // launch template configs x overrides
	maxFleetTarget     = maxRunCount
	maxFleetsKept      = 10000 // per account, for DescribeFleets and client tokens
)

// fleetCandidate is one launch template config with one of its overrides.
type fleetCandidate struct {
	ref      templateRef
	over     launchSpec // the override's InstanceType, Zone, SubnetID, MaxPrice
	weight   float64
	priority float64 // +Inf when unset
	hasPrio  bool
	prioText string
	weightTx string
	spec     launchSpec // template data under the override
	tv       *templateVersion
}

type marketOptions struct {
	strategy      string
	minTarget     int
	singleType    bool
	singleZone    bool
	maxTotalPrice float64
	reservations  bool // on-demand: use-capacity-reservations-first
}

// fleetTarget is TargetCapacitySpecification, kept for DescribeFleets.
type fleetTarget struct {
	Total, OnDemand, Spot int
	Default               string
	FulfilledOnDemand     float64
	Fulfilled             float64
}

func boolParam(p params, name string) (bool, error) {
	switch v := p.get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for %s: expecting true or false", v, name)
	}
}

func readMarketOptions(p params, prefix, market string) (marketOptions, error) {
	o := marketOptions{strategy: p.get(prefix + "AllocationStrategy")}
	valid := []string{"lowest-price", "prioritized"}
	if market == MarketSpot {
		valid = []string{"lowest-price", "capacity-optimized", "capacity-optimized-prioritized", "price-capacity-optimized", "diversified"}
	}
	if o.strategy == "" {
		o.strategy = "lowest-price"
	}
	if !contains(valid, o.strategy) {
		return o, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for %sAllocationStrategy", o.strategy, prefix)
	}
	var err error
	if o.minTarget, err = p.integer(prefix+"MinTargetCapacity", 0); err != nil {
		return o, err
	}
	if o.singleType, err = boolParam(p, prefix+"SingleInstanceType"); err != nil {
		return o, err
	}
	if o.singleZone, err = boolParam(p, prefix+"SingleAvailabilityZone"); err != nil {
		return o, err
	}
	if o.minTarget < 0 || o.minTarget > maxFleetTarget {
		return o, apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for %sMinTargetCapacity", o.minTarget, prefix)
	}
	if o.minTarget > 0 && !o.singleType && !o.singleZone {
		return o, apiErrorf(codeInvalidParameterValue, "%sMinTargetCapacity requires SingleInstanceType or SingleAvailabilityZone", prefix)
	}
	if v := p.get(prefix + "MaxTotalPrice"); v != "" {
		if o.maxTotalPrice, err = parsePrice(prefix+"MaxTotalPrice", v); err != nil {
			return o, err
		}
	}
	if u := p.get(prefix + "CapacityReservationOptions.UsageStrategy"); u != "" {
		if market != MarketOnDemand || u != "use-capacity-reservations-first" {
			return o, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for CapacityReservationOptions.UsageStrategy", u)
		}
		o.reservations = true
	}
	return o, nil
}

func readCandidates(p params) ([]*fleetCandidate, error) {
	configs := p.indexes("LaunchTemplateConfigs")
	if len(configs) == 0 {
		return nil, apiErrorf(codeMissingParameter, "The request must contain the parameter LaunchTemplateConfigs")
	}
	var out []*fleetCandidate
	for _, n := range configs {
		pre := "LaunchTemplateConfigs." + strconv.Itoa(n) + "."
		ref, err := readTemplateRef(p, pre+"LaunchTemplateSpecification.")
		if err != nil {
			return nil, err
		}
		if ref == nil {
			return nil, apiErrorf(codeMissingParameter, "The request must contain the parameter %sLaunchTemplateSpecification.LaunchTemplateId or LaunchTemplateName", pre)
		}
		overrides := p.indexes(pre + "Overrides")
		if len(overrides) == 0 {
			overrides = []int{0} // the template alone
		}
		for _, m := range overrides {
			o := pre + "Overrides." + strconv.Itoa(m) + "."
			c := &fleetCandidate{ref: *ref, weight: 1, priority: math.Inf(1)}
			if m > 0 {
				c.over = launchSpec{InstanceType: p.get(o + "InstanceType"), Zone: p.get(o + "AvailabilityZone"),
					SubnetID: p.get(o + "SubnetId"), MaxPrice: p.get(o + "MaxPrice")}
				if err := c.over.check(); err != nil {
					return nil, err
				}
				if v := p.get(o + "WeightedCapacity"); v != "" {
					w, err := strconv.ParseFloat(v, 64)
					if err != nil || !(w > 0) || w > maxFleetTarget {
						return nil, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for WeightedCapacity", v)
					}
					c.weight, c.weightTx = w, v
				}
				if v := p.get(o + "Priority"); v != "" {
					pr, err := strconv.ParseFloat(v, 64)
					if err != nil || pr < 0 || math.IsInf(pr, 0) {
						return nil, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for Priority", v)
					}
					c.priority, c.hasPrio, c.prioText = pr, true, v
				}
			}
			out = append(out, c)
			if len(out) > maxFleetCandidates {
				return nil, apiErrorf(codeInvalidParameterValue, "A fleet can have at most %d launch template overrides", maxFleetCandidates)
			}
		}
	}
	return out, nil
}

// fleetDraw is one planned launch: n instances of a candidate from one
// pool or capacity reservation.
type fleetDraw struct {
	cand   *fleetCandidate
	l      *launch
	market string
	src    source
	crID   string
	n      int
}

type fleetError struct {
	cand         *fleetCandidate
	market, code string
	message      string
}

// fleetPlanner plans draws against the pools' and reservations' free
// capacity as this call has left it.
type fleetPlanner struct {
	c    *Cloud
	ctx  context.Context
	tx   *sql.Tx
	acct string
	now  int64
	free map[string]int // "type|poolkey" or "cr|id"
}

func (fp *fleetPlanner) poolFree(typ, key string) (int, bool, error) {
	k := typ + "|" + key
	if n, ok := fp.free[k]; ok {
		return n, true, nil
	}
	n, ok, err := accrue(fp.ctx, fp.tx, typ, key, fp.now)
	if err != nil || !ok {
		return 0, false, err
	}
	fp.free[k] = max(n, 0)
	return fp.free[k], true, nil
}

// sources lists where l can draw from in market: reservations first when
// asked, then the zonal pools, then the regional pool, each with its free
// count and price, skipping pools above the max price.
func (fp *fleetPlanner) sources(l *launch, market, zone string, reservations bool) ([]fleetDraw, error) {
	var out []fleetDraw
	zones := fp.c.cfg.Zones
	if zone != "" {
		zones = []string{zone}
	}
	if reservations && market == MarketOnDemand {
		rows, err := fp.tx.QueryContext(fp.ctx, `SELECT id, zone, pool_zone, available FROM capacity_reservations
			WHERE account = ? AND state = 'active' AND match_criteria = 'open' AND instance_type = ? ORDER BY seq`, fp.acct, l.instanceType)
		if err != nil {
			return nil, fmt.Errorf("listing capacity reservations, %w", err)
		}
		for rows.Next() {
			var d fleetDraw
			var avail int
			if err := rows.Scan(&d.crID, &d.src.zone, &d.src.poolZone, &avail); err != nil {
				rows.Close()
				return nil, fmt.Errorf("listing capacity reservations, %w", err)
			}
			if !contains(zones, d.src.zone) {
				continue
			}
			if _, ok := fp.free["cr|"+d.crID]; !ok {
				fp.free["cr|"+d.crID] = avail
			}
			out = append(out, d)
		}
		if err := rows.Close(); err != nil {
			return nil, fmt.Errorf("listing capacity reservations, %w", err)
		}
		for i := range out {
			// A reservation's instances cost what its pool's do.
			if out[i].src.price, err = poolPrice(fp.ctx, fp.tx, l.instanceType, out[i].src.poolZone); err != nil {
				return nil, err
			}
		}
	}
	add := func(z, key string) error {
		if _, ok, err := fp.poolFree(l.instanceType, key); err != nil || !ok {
			return err
		}
		price, err := poolPrice(fp.ctx, fp.tx, l.instanceType, key)
		if err != nil {
			return err
		}
		if l.maxPrice > 0 && price > l.maxPrice {
			return nil
		}
		out = append(out, fleetDraw{src: source{zone: z, poolZone: key, price: price}})
		return nil
	}
	for _, z := range zones {
		if err := add(z, poolKey(market, z)); err != nil {
			return nil, err
		}
	}
	rz := zone
	if rz == "" {
		rz = fp.c.cfg.Zones[0]
	}
	if err := add(rz, poolKey(market, "")); err != nil {
		return nil, err
	}
	return out, nil
}

func (fp *fleetPlanner) avail(d fleetDraw, typ string) int {
	if d.crID != "" {
		return fp.free["cr|"+d.crID]
	}
	return fp.free[typ+"|"+d.src.poolZone]
}

func (fp *fleetPlanner) take(d fleetDraw, typ string, n int) {
	if d.crID != "" {
		fp.free["cr|"+d.crID] -= n
	} else {
		fp.free[typ+"|"+d.src.poolZone] -= n
	}
}

func (fp *fleetPlanner) snapshot() map[string]int {
	m := make(map[string]int, len(fp.free))
	for k, v := range fp.free {
		m[k] = v
	}
	return m
}

// plannedCand is a candidate resolved for one market.
type plannedCand struct {
	cand    *fleetCandidate
	l       *launch
	srcs    []fleetDraw
	price   float64 // per unit, of its cheapest source
	freeSum int
}

// planMarket fills target units of market from cands in the strategy's
// order, within zone if given, and returns the draws, the units they
// fulfil and the errors of candidates that could not give what was asked.
func (fp *fleetPlanner) planMarket(cands []*plannedCand, market string, target int, o marketOptions, zone string) ([]fleetDraw, float64, []fleetError, error) {
	var list []*plannedCand
	for _, pc := range cands {
		z := zone
		if pc.l.zone != "" {
			if zone != "" && pc.l.zone != zone {
				continue
			}
			z = pc.l.zone
		}
		srcs, err := fp.sources(pc.l, market, z, o.reservations)
		if err != nil {
			return nil, 0, nil, err
		}
		c := &plannedCand{cand: pc.cand, l: pc.l, srcs: srcs, price: math.Inf(1)}
		for _, s := range srcs {
			c.price = math.Min(c.price, s.src.price/pc.cand.weight)
			c.freeSum += fp.avail(s, pc.l.instanceType)
		}
		list = append(list, c)
	}
	byPrice := func(i, j int) bool { return list[i].price < list[j].price }
	switch o.strategy {
	case "prioritized", "capacity-optimized-prioritized":
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].cand.priority != list[j].cand.priority {
				return list[i].cand.priority < list[j].cand.priority
			}
			return byPrice(i, j)
		})
	case "capacity-optimized":
		sort.SliceStable(list, func(i, j int) bool { return list[i].freeSum > list[j].freeSum })
	case "price-capacity-optimized":
		sort.SliceStable(list, func(i, j int) bool {
			if list[i].price != list[j].price {
				return byPrice(i, j)
			}
			return list[i].freeSum > list[j].freeSum
		})
	default:
		sort.SliceStable(list, byPrice)
	}
	var draws []fleetDraw
	var errs []fleetError
	fulfilled, cost := 0.0, 0.0
	// drawFrom takes up to want instances of c; it returns how many.
	drawFrom := func(c *plannedCand, want int) int {
		got := 0
		for _, s := range c.srcs {
			if got >= want {
				break
			}
			n := min(want-got, fp.avail(s, c.l.instanceType))
			if o.maxTotalPrice > 0 && s.src.price > 0 {
				n = min(n, int(math.Floor((o.maxTotalPrice-cost)/s.src.price+1e-9)))
			}
			if n <= 0 {
				continue
			}
			fp.take(s, c.l.instanceType, n)
			d := s
			d.cand, d.l, d.market, d.n = c.cand, c.l, market, n
			draws = append(draws, d)
			got += n
			cost += float64(n) * s.src.price
		}
		return got
	}
	short := map[*plannedCand]bool{}
	if o.strategy == "diversified" {
		// One instance from each candidate in turn.
		for progress := true; progress && fulfilled < float64(target); {
			progress = false
			for _, c := range list {
				if fulfilled >= float64(target) {
					break
				}
				if drawFrom(c, 1) == 1 {
					fulfilled += c.cand.weight
					progress = true
				} else {
					short[c] = true
				}
			}
		}
	} else {
		for _, c := range list {
			if fulfilled >= float64(target) {
				break
			}
			want := int(math.Ceil((float64(target) - fulfilled) / c.cand.weight))
			got := drawFrom(c, want)
			fulfilled += float64(got) * c.cand.weight
			if got < want {
				short[c] = true
			}
		}
	}
	for _, c := range list {
		if !short[c] {
			continue
		}
		code, msg := codeInsufficientCapacity, "There is no "+marketWord(market)+" capacity available that matches your request."
		if len(c.srcs) == 0 && c.l.maxPrice > 0 {
			code, msg = codeSpotMaxPriceTooLow, "Your Spot request price is lower than the minimum required Spot request fulfillment price."
		}
		errs = append(errs, fleetError{cand: c.cand, market: market, code: code, message: msg})
	}
	return draws, fulfilled, errs, nil
}

func marketWord(m string) string {
	if m == MarketSpot {
		return "Spot"
	}
	return "On-Demand"
}

// planWithOptions applies SingleInstanceType and SingleAvailabilityZone:
// every group (one type, one zone, or both) is planned on its own; of the
// groups that meet the target the cheapest wins under a price strategy,
// the first otherwise; when none does, the one that fulfils most.
func (fp *fleetPlanner) planWithOptions(cands []*plannedCand, market string, target int, o marketOptions) ([]fleetDraw, float64, []fleetError, error) {
	if !o.singleType && !o.singleZone {
		return fp.planMarket(cands, market, target, o, "")
	}
	type group struct {
		typ, zone string
	}
	var groups []group
	seen := map[group]bool{}
	for _, pc := range cands {
		zones := []string{""}
		if o.singleZone {
			zones = fp.c.cfg.Zones
			if pc.l.zone != "" {
				zones = []string{pc.l.zone}
			}
		}
		for _, z := range zones {
			g := group{zone: z}
			if o.singleType {
				g.typ = pc.l.instanceType
			}
			if !seen[g] {
				seen[g] = true
				groups = append(groups, g)
			}
		}
	}
	start := fp.snapshot()
	var best struct {
		draws     []fleetDraw
		fulfilled float64
		errs      []fleetError
		free      map[string]int
		cost      float64
		met       bool
	}
	best.fulfilled = -1
	// Price strategies take the cheapest group that meets the target; the
	// others the first, in candidate order.
	byPrice := o.strategy == "lowest-price" || o.strategy == "price-capacity-optimized" || o.strategy == "diversified"
	for _, g := range groups {
		fp.free = make(map[string]int, len(start))
		for k, v := range start {
			fp.free[k] = v
		}
		var sub []*plannedCand
		for _, pc := range cands {
			if g.typ == "" || pc.l.instanceType == g.typ {
				sub = append(sub, pc)
			}
		}
		draws, fulfilled, errs, err := fp.planMarket(sub, market, target, o, g.zone)
		if err != nil {
			return nil, 0, nil, err
		}
		cost := 0.0
		for _, d := range draws {
			cost += float64(d.n) * d.src.price
		}
		met := fulfilled >= float64(target)
		switch {
		case met && best.met && byPrice && cost < best.cost,
			met && !best.met,
			!met && !best.met && fulfilled > best.fulfilled:
			best.draws, best.fulfilled, best.errs, best.free, best.cost, best.met = draws, fulfilled, errs, fp.free, cost, met
		}
		if met && !byPrice {
			break
		}
	}
	if best.free != nil {
		fp.free = best.free
	} else {
		fp.free = start
		best.fulfilled = 0
	}
	return best.draws, best.fulfilled, best.errs, nil
}

func (c *Cloud) createFleet(ctx context.Context, acct string, p params, w *xmlWriter) error {
	if t := p.get("Type"); t != "instant" {
		if t == "" {
			t = "maintain"
		}
		return apiErrorf(codeUnsupported, "The fleet type '%s' is not supported by the local cloud: only instant fleets are", t)
	}
	cands, err := readCandidates(p)
	if err != nil {
		return err
	}
	const ts = "TargetCapacitySpecification."
	if _, err := p.required(ts + "TotalTargetCapacity"); err != nil {
		return err
	}
	var tgt fleetTarget
	if tgt.Total, err = p.integer(ts+"TotalTargetCapacity", 0); err != nil {
		return err
	}
	if tgt.OnDemand, err = p.integer(ts+"OnDemandTargetCapacity", 0); err != nil {
		return err
	}
	if tgt.Spot, err = p.integer(ts+"SpotTargetCapacity", 0); err != nil {
		return err
	}
	tgt.Default = p.get(ts + "DefaultTargetCapacityType")
	switch {
	case tgt.Total < 1 || tgt.Total > maxFleetTarget:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for TotalTargetCapacity. Must be between 1 and %d", tgt.Total, maxFleetTarget)
	case tgt.OnDemand < 0 || tgt.Spot < 0 || tgt.OnDemand+tgt.Spot > tgt.Total:
		return apiErrorf(codeInvalidParameterValue, "OnDemandTargetCapacity plus SpotTargetCapacity must not exceed TotalTargetCapacity")
	}
	switch tgt.Default {
	case "":
		tgt.Default = MarketOnDemand
	case MarketOnDemand, MarketSpot:
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for DefaultTargetCapacityType", tgt.Default)
	}
	if u := p.get(ts + "TargetCapacityUnitType"); u != "" && u != "units" {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for TargetCapacityUnitType: only units is supported here", u)
	}
	targets := map[string]int{MarketOnDemand: tgt.OnDemand, MarketSpot: tgt.Spot}
	targets[tgt.Default] += tgt.Total - tgt.OnDemand - tgt.Spot
	opts := map[string]marketOptions{}
	for market, prefix := range map[string]string{MarketOnDemand: "OnDemandOptions.", MarketSpot: "SpotOptions."} {
		o, err := readMarketOptions(p, prefix, market)
		if err != nil {
			return err
		}
		if o.minTarget > targets[market] {
			return apiErrorf(codeInvalidParameterValue, "%sMinTargetCapacity (%d) exceeds the %s target capacity (%d)", prefix, o.minTarget, market, targets[market])
		}
		opts[market] = o
	}
	instanceTags, err := p.tags("TagSpecification", "instance")
	if err != nil {
		return err
	}
	fleetTags, err := p.tags("TagSpecification", "fleet")
	if err != nil {
		return err
	}
	token := p.get("ClientToken")
	if len(token) > 64 {
		return apiErrorf(codeInvalidParameterValue, "ClientToken must be at most 64 characters")
	}
	digest := p.digest()

	return c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		earlier, seen, err := replayedToken(ctx, tx, `SELECT id, digest FROM fleets WHERE account = ? AND client_token = ?`, acct, token, digest)
		if err != nil {
			return err
		}
		if seen {
			var result string
			if err := tx.QueryRowContext(ctx, `SELECT result FROM fleets WHERE account = ? AND id = ?`, acct, earlier).Scan(&result); err != nil {
				return fmt.Errorf("reading fleet, %w", err)
			}
			w.text("fleetId", earlier)
			w.b.WriteString(result)
			return nil
		}
		// Resolve every candidate for each market it serves before
		// anything launches: a bad template, key or subnet fails the call.
		versions := map[templateRef]*templateVersion{}
		planned := map[string][]*plannedCand{}
		for _, cand := range cands {
			tv, ok := versions[cand.ref]
			if !ok {
				if tv, err = loadTemplateVersion(ctx, tx, acct, cand.ref); err != nil {
					return err
				}
				versions[cand.ref] = tv
			}
			cand.tv = tv
			base := tv.data
			base.MarketType = ""
			cand.spec = base.over(cand.over)
			for _, market := range []string{MarketOnDemand, MarketSpot} {
				if targets[market] == 0 {
					continue
				}
				spec := cand.spec
				if market == MarketSpot {
					spec.MarketType = MarketSpot
				} else {
					spec.MaxPrice = ""
				}
				l, err := c.resolveLaunch(ctx, tx, acct, spec)
				if err != nil {
					return err
				}
				l.templateID, l.templateVersion = tv.templateID, tv.version
				planned[market] = append(planned[market], &plannedCand{cand: cand, l: l})
			}
		}
		fp := &fleetPlanner{c: c, ctx: ctx, tx: tx, acct: acct, now: now, free: map[string]int{}}
		var draws []fleetDraw
		var errs []fleetError
		for _, market := range []string{MarketOnDemand, MarketSpot} {
			if targets[market] == 0 {
				continue
			}
			o := opts[market]
			before := fp.snapshot()
			d, fulfilled, e, err := fp.planWithOptions(planned[market], market, targets[market], o)
			if err != nil {
				return err
			}
			errs = append(errs, e...)
			if fulfilled < float64(o.minTarget) {
				// All or nothing: this market launches nothing.
				fp.free = before
				errs = append(errs, fleetError{cand: planned[market][0].cand, market: market, code: codeInsufficientCapacity,
					message: fmt.Sprintf("Could not launch the minimum target capacity of %d %s units (only %g available).", o.minTarget, marketWord(market), fulfilled)})
				continue
			}
			draws = append(draws, d...)
			tgt.Fulfilled += fulfilled
			if market == MarketOnDemand {
				tgt.FulfilledOnDemand = fulfilled
			}
		}
		total := 0
		for _, d := range draws {
			total += d.n
		}
		if c.cfg.ResourceBucket >= 0 && total > 0 {
			ok, err := takeTokens(ctx, tx, "resource:"+acct+":RunInstances", float64(c.cfg.ResourceBucket), c.cfg.ResourceRefill, now, float64(total))
			if err != nil {
				return err
			}
			if !ok {
				return apiErrorf(codeRequestLimitExceeded, "Request limit exceeded.")
			}
		}
		fleetID := newID("fleet-")
		tags := make(map[string]string, len(instanceTags)+1)
		for k, v := range instanceTags {
			tags[k] = v
		}
		tags["aws:ec2:fleet-id"] = fleetID
		type group struct {
			cand   *fleetCandidate
			market string
			typ    string
		}
		launched := map[group][]string{}
		var order []group
		var allIDs []string
		for _, d := range draws {
			if d.crID != "" {
				if _, err := tx.ExecContext(ctx, `UPDATE capacity_reservations SET available = available - ? WHERE id = ? AND account = ?`, d.n, d.crID, acct); err != nil {
					return fmt.Errorf("drawing from capacity reservation, %w", err)
				}
			} else if err := addFree(ctx, tx, d.l.instanceType, d.src.poolZone, -d.n); err != nil {
				return err
			}
			ids, err := insertInstances(ctx, tx, acct, d.n, newID("r-"), d.l, d.src, now, d.crID, "", tags)
			if err != nil {
				return err
			}
			g := group{d.cand, d.market, d.l.instanceType}
			if _, ok := launched[g]; !ok {
				order = append(order, g)
			}
			launched[g] = append(launched[g], ids...)
			allIDs = append(allIDs, ids...)
		}
		if err := c.noteLaunched(ctx, tx, acct, allIDs, now); err != nil {
			return err
		}
		var res xmlWriter
		res.open("errorSet")
		for _, e := range errs {
			res.open("item")
			writeTemplateAndOverrides(&res, e.cand)
			res.text("lifecycle", e.market)
			res.text("errorCode", e.code)
			res.text("errorMessage", e.message)
			res.close("item")
		}
		res.close("errorSet")
		res.open("fleetInstanceSet")
		for _, g := range order {
			res.open("item")
			writeTemplateAndOverrides(&res, g.cand)
			res.text("lifecycle", g.market)
			res.open("instanceIds")
			for _, id := range launched[g] {
				res.text("item", id)
			}
			res.close("instanceIds")
			res.text("instanceType", g.typ)
			res.text("platform", "")
			res.close("item")
		}
		res.close("fleetInstanceSet")
		tgtJSON, _ := json.Marshal(tgt)
		tagJSON, _ := json.Marshal(fleetTags)
		if _, err := tx.ExecContext(ctx, `INSERT INTO fleets (account, id, type, state, client_token, digest, target, result, tags, created_ns)
			VALUES (?, ?, 'instant', 'active', ?, ?, ?, ?, ?, ?)`, acct, fleetID, token, digest, string(tgtJSON), res.b.String(), string(tagJSON), now); err != nil {
			return fmt.Errorf("storing fleet, %w", err)
		}
		// An account keeps its newest maxFleetsKept fleets (and their
		// client tokens); older ones are forgotten.
		if _, err := tx.ExecContext(ctx, `DELETE FROM fleets WHERE account = ?1 AND seq <= (
			SELECT seq FROM fleets WHERE account = ?1 ORDER BY seq DESC LIMIT 1 OFFSET ?2)`, acct, maxFleetsKept); err != nil {
			return fmt.Errorf("forgetting old fleets, %w", err)
		}
		w.text("fleetId", fleetID)
		w.b.Write(res.b.Bytes())
		return nil
	})
}

func writeTemplateAndOverrides(w *xmlWriter, c *fleetCandidate) {
	w.open("launchTemplateAndOverrides")
	w.open("launchTemplateSpecification")
	if c.tv != nil {
		w.text("launchTemplateId", c.tv.templateID)
		w.text("launchTemplateName", c.tv.templateName)
	}
	version := c.ref.version
	if version == "" && c.tv != nil {
		version = strconv.Itoa(c.tv.version)
	}
	w.text("version", version)
	w.close("launchTemplateSpecification")
	w.open("overrides")
	if c.spec.InstanceType != "" {
		w.text("instanceType", c.spec.InstanceType)
	}
	if c.over.Zone != "" {
		w.text("availabilityZone", c.over.Zone)
	}
	if c.over.SubnetID != "" {
		w.text("subnetId", c.over.SubnetID)
	}
	if c.over.MaxPrice != "" {
		w.text("maxPrice", c.over.MaxPrice)
	}
	if c.weightTx != "" {
		w.text("weightedCapacity", c.weightTx)
	}
	if c.hasPrio {
		w.text("priority", c.prioText)
	}
	w.close("overrides")
	w.close("launchTemplateAndOverrides")
}

type fleetRow struct {
	id, typ, state, token, result string
	target                        fleetTarget
	tags                          map[string]string
	createdNs                     int64
}

func (c *Cloud) describeFleets(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("FleetId")
	if len(ids) > 1000 {
		return apiErrorf(codeInvalidParameterValue, "At most 1000 fleet IDs can be given")
	}
	var list []fleetRow
	err := c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT id, type, state, client_token, result, target, tags, created_ns FROM fleets WHERE account = ? ORDER BY seq`, acct)
		if err != nil {
			return fmt.Errorf("listing fleets, %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var f fleetRow
			var target, tags string
			if err := rows.Scan(&f.id, &f.typ, &f.state, &f.token, &f.result, &target, &tags, &f.createdNs); err != nil {
				return fmt.Errorf("listing fleets, %w", err)
			}
			_ = json.Unmarshal([]byte(target), &f.target)
			_ = json.Unmarshal([]byte(tags), &f.tags)
			list = append(list, f)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	if id, ok := missingID(ids, list, func(f fleetRow) string { return f.id }); ok {
		return apiErrorf(codeFleetNotFound, "The fleet ID '%s' does not exist", id)
	}
	w.open("fleetSet")
	for _, f := range list {
		if len(ids) > 0 && !contains(ids, f.id) {
			continue
		}
		w.open("item")
		w.text("fleetId", f.id)
		w.text("fleetState", f.state)
		w.text("type", f.typ)
		w.text("activityStatus", "fulfilled")
		w.time("createTime", time.Unix(0, f.createdNs))
		if f.token != "" {
			w.text("clientToken", f.token)
		}
		w.open("targetCapacitySpecification")
		w.int("totalTargetCapacity", f.target.Total)
		w.int("onDemandTargetCapacity", f.target.OnDemand)
		w.int("spotTargetCapacity", f.target.Spot)
		w.text("defaultTargetCapacityType", f.target.Default)
		w.close("targetCapacitySpecification")
		w.text("fulfilledCapacity", strconv.FormatFloat(f.target.Fulfilled, 'f', -1, 64))
		w.text("fulfilledOnDemandCapacity", strconv.FormatFloat(f.target.FulfilledOnDemand, 'f', -1, 64))
		w.tagSet(f.tags)
		w.b.WriteString(f.result)
		w.close("item")
	}
	w.close("fleetSet")
	return nil
}

// deleteFleets deletes instant fleets. EC2 requires TerminateInstances;
// with true the fleets' running instances are terminated after the
// fleets are marked deleted (a second transaction).
func (c *Cloud) deleteFleets(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("FleetId")
	if len(ids) == 0 {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter FleetId")
	}
	if len(ids) > 100 {
		return apiErrorf(codeInvalidParameterValue, "At most 100 fleet IDs can be deleted in one call")
	}
	if _, err := p.required("TerminateInstances"); err != nil {
		return err
	}
	terminate, err := boolParam(p, "TerminateInstances")
	if err != nil {
		return err
	}
	type outcome struct{ id, prev, code string }
	var results []outcome
	var victims []string
	err = c.write(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			var state string
			err := tx.QueryRowContext(ctx, `SELECT state FROM fleets WHERE account = ? AND id = ?`, acct, id).Scan(&state)
			if err == sql.ErrNoRows {
				results = append(results, outcome{id: id, code: "fleetIdDoesNotExist"})
				continue
			}
			if err != nil {
				return fmt.Errorf("reading fleet, %w", err)
			}
			next := "deleted"
			if terminate {
				next = "deleted_terminating"
			}
			if _, err := tx.ExecContext(ctx, `UPDATE fleets SET state = ? WHERE account = ? AND id = ?`, next, acct, id); err != nil {
				return fmt.Errorf("deleting fleet, %w", err)
			}
			results = append(results, outcome{id: id, prev: state})
			if terminate {
				rows, err := tx.QueryContext(ctx, `SELECT i.id FROM instances i JOIN tags t ON t.seq = i.seq
					WHERE i.account = ? AND t.key = 'aws:ec2:fleet-id' AND t.value = ? AND i.terminated_ns IS NULL`, acct, id)
				if err != nil {
					return fmt.Errorf("listing fleet instances, %w", err)
				}
				for rows.Next() {
					var iid string
					if err := rows.Scan(&iid); err != nil {
						rows.Close()
						return err
					}
					victims = append(victims, iid)
				}
				if err := rows.Close(); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for start := 0; start < len(victims) && !isDryRun(ctx); start += 1000 {
		q := params{}
		for i, id := range victims[start:min(len(victims), start+1000)] {
			q["InstanceId."+strconv.Itoa(i+1)] = []string{id}
		}
		var discard xmlWriter
		if err := c.terminateInstances(ctx, acct, q, &discard); err != nil {
			return err
		}
	}
	w.open("successfulFleetDeletionSet")
	for _, r := range results {
		if r.code != "" {
			continue
		}
		w.open("item")
		w.text("fleetId", r.id)
		w.text("previousFleetState", r.prev)
		if terminate {
			w.text("currentFleetState", "deleted_terminating")
		} else {
			w.text("currentFleetState", "deleted")
		}
		w.close("item")
	}
	w.close("successfulFleetDeletionSet")
	w.open("unsuccessfulFleetDeletionSet")
	for _, r := range results {
		if r.code == "" {
			continue
		}
		w.open("item")
		w.text("fleetId", r.id)
		w.open("error")
		w.text("code", r.code)
		w.text("message", "The fleet ID '"+r.id+"' does not exist")
		w.close("error")
		w.close("item")
	}
	w.close("unsuccessfulFleetDeletionSet")
	return nil
}
