package ec2

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gust-dev/gust/tenants"
)

type capacityReservation struct {
	id            string
	instanceType  string
	zone          string
	poolZone      string
	platform      string
	total         int
	available     int
	state         string
	endDateType   string
	endDate       string
	matchCriteria string
	tags          map[string]string
	createdNs     int64
}

const reservationColumns = `id, instance_type, zone, pool_zone, platform, total, available, state, end_date_type, end_date, match_criteria, tags, created_ns`

func scanReservation(row interface{ Scan(...any) error }) (*capacityReservation, error) {
	cr := &capacityReservation{}
	var tags string
	if err := row.Scan(&cr.id, &cr.instanceType, &cr.zone, &cr.poolZone, &cr.platform, &cr.total, &cr.available, &cr.state,
		&cr.endDateType, &cr.endDate, &cr.matchCriteria, &tags, &cr.createdNs); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &cr.tags); err != nil {
		return nil, fmt.Errorf("decoding reservation tags, %w", err)
	}
	return cr, nil
}

// loadReservation returns the account's reservation, or
// InvalidCapacityReservationId.NotFound for an unknown id or another
// account's.
func loadReservation(ctx context.Context, tx *sql.Tx, acct, id string) (*capacityReservation, error) {
	if !strings.HasPrefix(id, "cr-") {
		return nil, apiErrorf(codeReservationMalformed, "Invalid id: \"%s\"", id)
	}
	cr, err := scanReservation(tx.QueryRowContext(ctx, `SELECT `+reservationColumns+` FROM capacity_reservations WHERE id = ? AND account = ?`, id, acct))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, apiErrorf(codeReservationNotFound, "The capacity reservation ID '%s' does not exist", id)
	}
	if err != nil {
		return nil, fmt.Errorf("reading capacity reservation, %w", err)
	}
	return cr, nil
}

func (c *Cloud) createCapacityReservation(ctx context.Context, acct string, p params, w *xmlWriter) error {
	typ, err := p.required("InstanceType")
	if err != nil {
		return err
	}
	platform, err := p.required("InstancePlatform")
	if err != nil {
		return err
	}
	if _, err := p.required("InstanceCount"); err != nil {
		return err
	}
	count, err := p.integer("InstanceCount", 0)
	if err != nil {
		return err
	}
	if count < 1 || count > maxRunCount {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for InstanceCount. Must be between 1 and %d", count, maxRunCount)
	}
	zone := p.get("AvailabilityZone")
	if zone != "" && !c.zones[zone] {
		return apiErrorf(codeInvalidParameterValue, "Invalid availability zone: [%s]", zone)
	}
	endDateType := p.get("EndDateType")
	switch endDateType {
	case "":
		endDateType = "unlimited"
	case "unlimited":
	case "limited":
		if p.get("EndDate") == "" {
			return apiErrorf(codeMissingParameter, "EndDate is required when EndDateType is limited")
		}
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for EndDateType", endDateType)
	}
	match := p.get("InstanceMatchCriteria")
	switch match {
	case "":
		match = "open"
	case "open", "targeted":
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for InstanceMatchCriteria", match)
	}
	token := p.get("ClientToken")
	if len(token) > 64 {
		return apiErrorf(codeInvalidParameterValue, "ClientToken must be at most 64 characters")
	}
	tags, err := p.tags("TagSpecifications", "capacity-reservation")
	if err != nil {
		return err
	}
	tagJSON, _ := json.Marshal(tags)
	digest := p.digest()

	return c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		id, seen, err := replayedToken(ctx, tx, `SELECT id, digest FROM capacity_reservations WHERE account = ? AND client_token = ?`,
			acct, token, digest)
		if err != nil {
			return err
		}
		if seen {
			cr, err := loadReservation(ctx, tx, acct, id)
			if err != nil {
				return err
			}
			writeReservationElem(w, "capacityReservation", acct, cr)
			return nil
		}
		ok, err := knownType(ctx, tx, typ)
		if err != nil {
			return err
		}
		if !ok {
			return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for InstanceType.", typ)
		}
		// Without a zone, take the pool with the most free capacity; EC2
		// itself requires a zone, the local cloud is lenient.
		src, err := c.bestSource(ctx, tx, typ, zone, now)
		if err != nil {
			return err
		}
		if src.free < count {
			return apiErrorf(codeInsufficientCapacity, "There is insufficient capacity to fulfill your request: no pool can hold %d %s (at most %d).", count, typ, src.free)
		}
		if err := addFree(ctx, tx, typ, src.poolZone, -count); err != nil {
			return err
		}
		cr := &capacityReservation{
			id: newID("cr-"), instanceType: typ, zone: src.zone, poolZone: src.poolZone, platform: platform,
			total: count, available: count, state: "active", endDateType: endDateType,
			endDate: p.get("EndDate"), matchCriteria: match, tags: tags, createdNs: now,
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO capacity_reservations (`+reservationColumns+`, client_token, digest, account)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			cr.id, cr.instanceType, cr.zone, cr.poolZone, cr.platform, cr.total, cr.available, cr.state,
			cr.endDateType, cr.endDate, cr.matchCriteria, string(tagJSON), cr.createdNs, token, digest, acct)
		if err != nil {
			return fmt.Errorf("inserting capacity reservation, %w", err)
		}
		writeReservationElem(w, "capacityReservation", acct, cr)
		return nil
	})
}

func writeReservationElem(w *xmlWriter, elem, acct string, cr *capacityReservation) {
	owner := tenants.AccountID(acct)
	w.open(elem)
	w.text("capacityReservationId", cr.id)
	w.text("ownerId", owner)
	w.text("capacityReservationArn", "arn:aws:ec2:"+strings.TrimRight(cr.zone, "abcdefghijklmnopqrstuvwxyz")+":"+owner+":capacity-reservation/"+cr.id)
	w.text("instanceType", cr.instanceType)
	w.text("instancePlatform", cr.platform)
	w.text("availabilityZone", cr.zone)
	w.text("tenancy", "default")
	w.int("totalInstanceCount", cr.total)
	w.int("availableInstanceCount", cr.available)
	w.bool("ebsOptimized", false)
	w.bool("ephemeralStorage", false)
	w.text("state", cr.state)
	w.time("startDate", time.Unix(0, cr.createdNs))
	w.text("endDateType", cr.endDateType)
	if cr.endDate != "" {
		w.text("endDate", cr.endDate)
	}
	w.text("instanceMatchCriteria", cr.matchCriteria)
	w.time("createDate", time.Unix(0, cr.createdNs))
	w.text("reservationType", "default")
	w.tagSet(cr.tags)
	w.close(elem)
}

func (c *Cloud) describeCapacityReservations(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("CapacityReservationId")
	filters, err := p.filters()
	if err != nil {
		return err
	}
	for _, f := range filters {
		switch {
		case f.Name == "state", f.Name == "instance-type", f.Name == "availability-zone",
			f.Name == "instance-match-criteria", f.Name == "tag-key", strings.HasPrefix(f.Name, "tag:"):
		default:
			return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	var list []*capacityReservation
	err = c.read(ctx, func(tx *sql.Tx) error {
		for _, id := range ids {
			if _, err := loadReservation(ctx, tx, acct, id); err != nil {
				return err
			}
		}
		q, args := reservationQuery(acct, filters)
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return fmt.Errorf("listing capacity reservations, %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			cr, err := scanReservation(rows)
			if err != nil {
				return fmt.Errorf("listing capacity reservations, %w", err)
			}
			list = append(list, cr)
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	w.open("capacityReservationSet")
	for _, cr := range list {
		if (len(ids) == 0 || contains(ids, cr.id)) && reservationMatches(cr, filters) {
			writeReservationElem(w, "item", acct, cr)
		}
	}
	w.close("capacityReservationSet")
	return nil
}

// reservationQuery selects the account's reservations, narrowed in SQL by
// the state and tag:KEY filters (reservationMatches still decides).
// Without it every listing decodes every reservation the account ever
// made, cancelled ones too, so a fleet's lookup of its own reservations by
// tag would grow with the account's history.
func reservationQuery(acct string, filters []filter) (string, []any) {
	var q strings.Builder
	q.WriteString(`SELECT ` + reservationColumns + ` FROM capacity_reservations WHERE account = ?`)
	args := []any{acct}
	for _, f := range filters {
		if len(f.Values) == 0 {
			continue
		}
		marks := strings.TrimSuffix(strings.Repeat("?,", len(f.Values)), ",")
		key, isTag := strings.CutPrefix(f.Name, "tag:")
		switch {
		case f.Name == "state":
			q.WriteString(` AND state IN (` + marks + `)`)
		case isTag:
			q.WriteString(` AND EXISTS (SELECT 1 FROM json_each(capacity_reservations.tags) AS t WHERE t.key = ? AND t.value IN (` + marks + `))`)
			args = append(args, key)
		default:
			continue
		}
		for _, v := range f.Values {
			args = append(args, v)
		}
	}
	q.WriteString(` ORDER BY seq`)
	return q.String(), args
}

func reservationMatches(cr *capacityReservation, filters []filter) bool {
	for _, f := range filters {
		var ok bool
		switch key, isTag := strings.CutPrefix(f.Name, "tag:"); {
		case isTag:
			v, has := cr.tags[key]
			ok = has && contains(f.Values, v)
		case f.Name == "tag-key":
			for _, k := range f.Values {
				_, has := cr.tags[k]
				ok = ok || has
			}
		case f.Name == "state":
			ok = contains(f.Values, cr.state)
		case f.Name == "instance-type":
			ok = contains(f.Values, cr.instanceType)
		case f.Name == "availability-zone":
			ok = contains(f.Values, cr.zone)
		case f.Name == "instance-match-criteria":
			ok = contains(f.Values, cr.matchCriteria)
		}
		if !ok {
			return false
		}
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// cancelCapacityReservation returns the reservation's unused capacity to
// its pool. Instances running in it keep running; their capacity goes back
// to the pool when they terminate. Cancelling twice succeeds, so a retried
// cancel is harmless.
func (c *Cloud) cancelCapacityReservation(ctx context.Context, acct string, p params, w *xmlWriter) error {
	id, err := p.required("CapacityReservationId")
	if err != nil {
		return err
	}
	err = c.write(ctx, func(tx *sql.Tx) error {
		cr, err := loadReservation(ctx, tx, acct, id)
		if err != nil {
			return err
		}
		if cr.state != "active" {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE capacity_reservations SET state = 'cancelled', available = 0 WHERE id = ? AND account = ?`, id, acct); err != nil {
			return fmt.Errorf("cancelling capacity reservation, %w", err)
		}
		return addFree(ctx, tx, cr.instanceType, cr.poolZone, cr.available)
	})
	if err != nil {
		return err
	}
	w.bool("return", true)
	return nil
}

func (c *Cloud) describeAvailabilityZones(ctx context.Context, _ string, p params, w *xmlWriter) error {
	names := p.list("ZoneName")
	for _, n := range names {
		if !c.zones[n] {
			return apiErrorf(codeInvalidParameterValue, "The zone '%s' does not exist in region %s", n, c.cfg.Region)
		}
	}
	w.open("availabilityZoneInfo")
	for i, z := range c.cfg.Zones {
		if len(names) > 0 && !contains(names, z) {
			continue
		}
		w.open("item")
		w.text("zoneName", z)
		w.text("zoneState", "available")
		w.text("regionName", c.cfg.Region)
		w.text("zoneId", fmt.Sprintf("%s-az%d", regionShort(c.cfg.Region), i+1))
		w.text("groupName", c.cfg.Region)
		w.text("networkBorderGroup", c.cfg.Region)
		w.text("optInStatus", "opt-in-not-required")
		w.text("zoneType", "availability-zone")
		w.open("messageSet")
		w.close("messageSet")
		w.close("item")
	}
	w.close("availabilityZoneInfo")
	return nil
}

// regionShort abbreviates a region the way EC2 zone ids do:
// us-east-1 -> use1.
func regionShort(region string) string {
	parts := strings.Split(region, "-")
	if len(parts) != 3 || parts[1] == "" {
		return region
	}
	return parts[0] + parts[1][:1] + parts[2]
}

// describeInstanceTypeOfferings lists the types that have a pool: per zone
// for LocationType availability-zone, once for region (the default).
func (c *Cloud) describeInstanceTypeOfferings(ctx context.Context, _ string, p params, w *xmlWriter) error {
	loc := p.get("LocationType")
	switch loc {
	case "":
		loc = "region"
	case "region", "availability-zone":
	case "availability-zone-id":
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for LocationType", loc)
	}
	filters, err := p.filters()
	if err != nil {
		return err
	}
	for _, f := range filters {
		if f.Name != "instance-type" && f.Name != "location" {
			return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	zoneIDs := map[string]string{}
	for i, z := range c.cfg.Zones {
		zoneIDs[z] = fmt.Sprintf("%s-az%d", regionShort(c.cfg.Region), i+1)
	}
	type offering struct{ typ, location string }
	seen := map[offering]bool{}
	var list []offering
	err = c.read(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT instance_type, zone FROM pools ORDER BY instance_type, zone`)
		if err != nil {
			return fmt.Errorf("listing pools, %w", err)
		}
		defer rows.Close()
		for rows.Next() {
			var o offering
			var zone string
			if err := rows.Scan(&o.typ, &zone); err != nil {
				return fmt.Errorf("listing pools, %w", err)
			}
			// Spot pools offer the same types in the same places.
			_, zone = splitPoolKey(zone)
			zones := []string{zone}
			if zone == "" { // a regional pool serves every zone
				zones = c.cfg.Zones
			}
			for _, z := range zones {
				switch loc {
				case "region":
					o.location = c.cfg.Region
				case "availability-zone":
					o.location = z
				default:
					o.location = zoneIDs[z]
				}
				if o.location != "" && !seen[o] {
					seen[o] = true
					list = append(list, o)
				}
			}
		}
		return rows.Err()
	})
	if err != nil {
		return err
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].typ != list[j].typ {
			return list[i].typ < list[j].typ
		}
		return list[i].location < list[j].location
	})
	w.open("instanceTypeOfferingSet")
	for _, o := range list {
		ok := true
		for _, f := range filters {
			v := o.typ
			if f.Name == "location" {
				v = o.location
			}
			ok = ok && contains(f.Values, v)
		}
		if !ok {
			continue
		}
		w.open("item")
		w.text("instanceType", o.typ)
		w.text("locationType", loc)
		w.text("location", o.location)
		w.close("item")
	}
	w.close("instanceTypeOfferingSet")
	return nil
}

// replayedToken implements EC2's ClientToken idempotency for one action,
// within one account. query selects, given the account and the token, the
// (result id, parameter digest) that the account's earlier call with token
// recorded. It returns the earlier result's id and true when token
// was seen with the same parameters, IdempotentParameterMismatch when it
// was seen with different ones, and false when the call is new (or has no
// token).
func replayedToken(ctx context.Context, tx *sql.Tx, query, acct, token, digest string) (string, bool, error) {
	if token == "" {
		return "", false, nil
	}
	var id, d string
	err := tx.QueryRowContext(ctx, query, acct, token).Scan(&id, &d)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("looking up client token, %w", err)
	case d != digest:
		return "", false, apiErrorf(codeIdempotentMismatch, "Arguments on this idempotent request are inconsistent with arguments used in previous request(s).")
	}
	return id, true, nil
}
