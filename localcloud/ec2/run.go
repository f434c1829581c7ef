package ec2

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
)

// runInstances is RunInstances: all of MinCount or nothing, up to
// MaxCount, of one launch (launch.go) drawn from one pool or capacity
// reservation.
func (c *Cloud) runInstances(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ref, err := readTemplateRef(p, "LaunchTemplate.")
	if err != nil {
		return err
	}
	if ref == nil {
		// Without a template the request must say what to launch.
		if _, err := p.required("InstanceType"); err != nil {
			return err
		}
	}
	if _, err := p.required("MinCount"); err != nil {
		return err
	}
	if _, err := p.required("MaxCount"); err != nil {
		return err
	}
	minCount, err := p.integer("MinCount", 0)
	if err != nil {
		return err
	}
	maxCount, err := p.integer("MaxCount", 0)
	if err != nil {
		return err
	}
	switch {
	case minCount < 1:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for minCount. Must be at least 1", minCount)
	case maxCount < minCount:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for maxCount. Must be at least minCount (%d)", maxCount, minCount)
	case maxCount > maxRunCount:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%d' for maxCount. Must be at most %d", maxCount, maxRunCount)
	}
	explicit, err := readLaunchSpec(p, "")
	if err != nil {
		return err
	}
	if ref == nil && explicit.ImageID == "" {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter ImageId")
	}
	crID := p.get("CapacityReservationSpecification.CapacityReservationTarget.CapacityReservationId")
	if crID != "" && p.get("CapacityReservationSpecification.CapacityReservationPreference") == "none" {
		return apiErrorf(codeInvalidParameterCombo, "CapacityReservationPreference none cannot be combined with a CapacityReservationTarget")
	}
	token := p.get("ClientToken")
	if len(token) > 64 {
		return apiErrorf(codeInvalidParameterValue, "ClientToken must be at most 64 characters")
	}
	tags, err := p.tags("TagSpecification", "instance")
	if err != nil {
		return err
	}
	digest := p.digest()

	return c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		earlier, seen, err := replayedToken(ctx, tx, `SELECT reservation_id, digest FROM account_run_tokens WHERE account = ? AND token = ?`,
			acct, token, digest)
		if err != nil {
			return err
		}
		if seen {
			return c.writeReservation(ctx, tx, w, acct, earlier, now)
		}
		spec := explicit
		var tv *templateVersion
		if ref != nil {
			if tv, err = loadTemplateVersion(ctx, tx, acct, *ref); err != nil {
				return err
			}
			spec = tv.data.over(explicit)
		}
		l, err := c.resolveLaunch(ctx, tx, acct, spec)
		if err != nil {
			return err
		}
		if tv != nil {
			l.templateID, l.templateVersion = tv.templateID, tv.version
		}
		typ, zone := l.instanceType, l.zone

		// available is what the chosen source can give; all of a call's
		// instances land in one zone, as they do in one EC2 subnet.
		var src source
		if crID != "" {
			if l.market == MarketSpot {
				return apiErrorf(codeInvalidParameterCombo, "Spot Instances cannot be launched into a Capacity Reservation")
			}
			cr, err := loadReservation(ctx, tx, acct, crID)
			if err != nil {
				return err
			}
			switch {
			case cr.state != "active":
				return apiErrorf(codeInvalidParameterValue, "Capacity Reservation %s is %s and cannot be launched into", crID, cr.state)
			case cr.instanceType != typ:
				return apiErrorf(codeInvalidParameterCombo, "Instance type %s does not match Capacity Reservation %s (%s)", typ, crID, cr.instanceType)
			case zone != "" && cr.zone != zone:
				return apiErrorf(codeInvalidParameterCombo, "Availability zone %s does not match Capacity Reservation %s (%s)", zone, crID, cr.zone)
			}
			// The instances' capacity belongs to the reservation's pool,
			// where it goes if the reservation is gone when they end.
			src = source{zone: cr.zone, poolZone: cr.poolZone, free: cr.available}
		} else if src, err = c.marketSource(ctx, tx, l.market, typ, zone, l.maxPrice, now); err != nil {
			return err
		}
		available := src.free

		// The resource throttle goes first: a throttled call says nothing
		// about capacity, and launches nothing.
		n := min(maxCount, available)
		var tokens float64
		bucket := "resource:" + acct + ":RunInstances" // per account, as on AWS
		if c.cfg.ResourceBucket >= 0 {
			if minCount > c.cfg.ResourceBucket {
				// Waiting can never fill the bucket that far; say so
				// instead of throttling forever.
				return apiErrorf(codeInvalidParameterValue, "MinCount %d exceeds the launch limit of %d instances", minCount, c.cfg.ResourceBucket)
			}
			tokens, err = bucketTokens(ctx, tx, bucket, float64(c.cfg.ResourceBucket), c.cfg.ResourceRefill, now)
			if err != nil {
				return err
			}
			if int(tokens) < minCount {
				return apiErrorf(codeRequestLimitExceeded, "Request limit exceeded.")
			}
			n = min(n, int(tokens))
		}
		if n < minCount {
			if crID != "" {
				return apiErrorf(codeReservationExceeded, "The requested number of instances exceeds the capacity available in the Capacity Reservation %s (%d available).", crID, available)
			}
			where := "the Availability Zone you requested (" + zone + ")"
			if zone == "" {
				where = "any Availability Zone"
			}
			market := ""
			if l.market == MarketSpot {
				market = " Spot"
			}
			return apiErrorf(codeInsufficientCapacity, "We currently do not have sufficient %s%s capacity in %s. Our system will be working on provisioning additional capacity.", typ, market, where)
		}

		if c.cfg.ResourceBucket >= 0 {
			if err := setBucket(ctx, tx, bucket, tokens-float64(n), now); err != nil {
				return err
			}
		}
		if crID != "" {
			if _, err := tx.ExecContext(ctx, `UPDATE capacity_reservations SET available = available - ? WHERE id = ? AND account = ?`, n, crID, acct); err != nil {
				return fmt.Errorf("drawing from capacity reservation, %w", err)
			}
		} else if err := addFree(ctx, tx, typ, src.poolZone, -n); err != nil {
			return err
		}
		resID := newID("r-")
		launched, err := insertInstances(ctx, tx, acct, n, resID, l, src, now, crID, token, tags)
		if err != nil {
			return err
		}
		if err := c.noteLaunched(ctx, tx, acct, launched, now); err != nil {
			return err
		}
		if token != "" {
			if _, err := tx.ExecContext(ctx, `INSERT INTO account_run_tokens (account, token, digest, reservation_id) VALUES (?, ?, ?, ?)`,
				acct, token, digest, resID); err != nil {
				return fmt.Errorf("recording client token, %w", err)
			}
		}
		return c.writeReservation(ctx, tx, w, acct, resID, now)
	})
}

// insertInstances inserts n instances of l, drawn from src, and their
// tags with two prepared statements, so a launch of hundreds stays one
// quick transaction, and returns their ids. Instances launched from a
// template also get EC2's aws:ec2launchtemplate tags.
func insertInstances(ctx context.Context, tx *sql.Tx, acct string, n int, resID string, l *launch, src source, now int64, crID, token string, tags map[string]string) ([]string, error) {
	ins, err := tx.PrepareContext(ctx, `INSERT INTO instances (id, reservation_id, instance_type, zone, pool_zone, image_id, launch_index, launch_ns, cr_id, client_token, account,
			lifecycle, subnet_id, key_name, security_groups, user_data, iam_profile)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("preparing instance insert, %w", err)
	}
	defer ins.Close()
	tag, err := tx.PrepareContext(ctx, `INSERT INTO tags (seq, key, value) VALUES (?, ?, ?)`)
	if err != nil {
		return nil, fmt.Errorf("preparing tag insert, %w", err)
	}
	defer tag.Close()
	all := tags
	if l.templateID != "" {
		all = make(map[string]string, len(tags)+2)
		for k, v := range tags {
			all[k] = v
		}
		all["aws:ec2launchtemplate:id"] = l.templateID
		all["aws:ec2launchtemplate:version"] = strconv.Itoa(l.templateVersion)
	}
	subnet := l.subnetID
	if subnet == "" {
		subnet = defaultSubnet(acct, src.zone)
	}
	groups := strings.Join(l.groups, ",")
	ids := make([]string, 0, n)
	for i := range n {
		id := newID("i-")
		res, err := ins.ExecContext(ctx, id, resID, l.instanceType, src.zone, src.poolZone, l.imageID, i, now, crID, token, acct,
			l.market, subnet, l.keyName, groups, l.userData, l.profileARN)
		if err != nil {
			return nil, fmt.Errorf("inserting instance, %w", err)
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("inserting instance, %w", err)
		}
		for k, v := range all {
			if _, err := tag.ExecContext(ctx, seq, k, v); err != nil {
				return nil, fmt.Errorf("inserting tag, %w", err)
			}
		}
		ids = append(ids, id)
	}
	return ids, nil
}

// nameGroups fills in the names of the instances' security groups.
func nameGroups(ctx context.Context, tx *sql.Tx, list []*instance) error {
	names := map[string]map[string]string{}
	for _, in := range list {
		if len(in.groups) == 0 {
			continue
		}
		m, ok := names[in.account]
		if !ok {
			var err error
			if m, err = groupNames(ctx, tx, in.account); err != nil {
				return err
			}
			names[in.account] = m
		}
		in.groupNames = m
	}
	return nil
}

// writeGroupSet writes the instance's security groups, ids and names.
func writeGroupSet(w *xmlWriter, in *instance) {
	w.open("groupSet")
	for _, id := range in.groups {
		w.open("item")
		w.text("groupId", id)
		w.text("groupName", in.groupNames[id])
		w.close("item")
	}
	w.close("groupSet")
}

// writeLaunchDetails writes an instance's launch parameters, as
// DescribeInstances shows them.
func writeLaunchDetails(w *xmlWriter, in *instance) {
	if in.subnetID != "" {
		w.text("subnetId", in.subnetID)
		w.text("vpcId", defaultVPC(in.account))
	}
	if in.keyName != "" {
		w.text("keyName", in.keyName)
	}
	if len(in.groups) > 0 {
		writeGroupSet(w, in)
	}
	if in.profileARN != "" {
		w.open("iamInstanceProfile")
		w.text("arn", in.profileARN)
		w.text("id", "AIPA"+strings.ToUpper(derivedID("", "instance-profile", in.profileARN)))
		w.close("iamInstanceProfile")
	}
	if in.lifecycle == MarketSpot {
		w.text("instanceLifecycle", "spot")
	}
}
