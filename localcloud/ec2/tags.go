package ec2

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// maxTagsPerResource is EC2's limit of tags on one resource.
const maxTagsPerResource = 50

// createTags adds or overwrites tags on the account's instances and
// capacity reservations (CreateTags). All resources are checked before any
// is tagged, so a call naming one missing resource changes nothing.
func (c *Cloud) createTags(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("ResourceId")
	if len(ids) == 0 {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter resourceIdSet")
	}
	if len(ids) > 1000 {
		return apiErrorf(codeInvalidParameterValue, "At most 1000 resource IDs can be tagged in one call")
	}
	tags := map[string]string{}
	for _, n := range p.indexes("Tag") {
		pre := "Tag." + strconv.Itoa(n)
		k, v := p.get(pre+".Key"), p.get(pre+".Value")
		if err := checkTag(k, v); err != nil {
			return err
		}
		if _, dup := tags[k]; dup {
			return apiErrorf(codeInvalidParameterValue, "Duplicate tag key '%s' specified", k)
		}
		tags[k] = v
	}
	if len(tags) == 0 {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter tagSet")
	}
	var instanceIDs, crIDs []string
	for _, id := range ids {
		switch {
		case strings.HasPrefix(id, "i-"):
			instanceIDs = append(instanceIDs, id)
		case strings.HasPrefix(id, "cr-"):
			crIDs = append(crIDs, id)
		default:
			return apiErrorf(codeInvalidID, "The ID '%s' is not valid", id)
		}
	}
	err := c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		if len(instanceIDs) > 0 {
			if err := c.checkInstancesExist(ctx, tx, acct, instanceIDs, now); err != nil {
				return err
			}
		}
		var crs []*capacityReservation
		for _, id := range crIDs {
			cr, err := loadReservation(ctx, tx, acct, id)
			if err != nil {
				return err
			}
			crs = append(crs, cr)
		}
		if len(instanceIDs) > 0 {
			where, args, err := c.instanceWhere(acct, instanceIDs, nil, now)
			if err != nil {
				return err
			}
			list, err := queryInstances(ctx, tx, where, args, -1)
			if err != nil {
				return err
			}
			for _, in := range list {
				if err := checkTagCount(in.id, in.tags, tags); err != nil {
					return err
				}
				for k, v := range tags {
					if _, err := tx.ExecContext(ctx, `INSERT INTO tags (seq, key, value) VALUES (?, ?, ?)
						ON CONFLICT (seq, key) DO UPDATE SET value = excluded.value`, in.seq, k, v); err != nil {
						return fmt.Errorf("tagging instance, %w", err)
					}
				}
			}
		}
		for _, cr := range crs {
			if err := checkTagCount(cr.id, cr.tags, tags); err != nil {
				return err
			}
			merged := map[string]string{}
			for k, v := range cr.tags {
				merged[k] = v
			}
			for k, v := range tags {
				merged[k] = v
			}
			b, _ := json.Marshal(merged)
			if _, err := tx.ExecContext(ctx, `UPDATE capacity_reservations SET tags = ? WHERE id = ? AND account = ?`, string(b), cr.id, acct); err != nil {
				return fmt.Errorf("tagging capacity reservation, %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.bool("return", true)
	return nil
}

// checkTagCount fails when adding tags to a resource's existing ones would
// make more than maxTagsPerResource.
func checkTagCount(id string, existing, adding map[string]string) error {
	n := len(existing)
	for k := range adding {
		if _, ok := existing[k]; !ok {
			n++
		}
	}
	if n > maxTagsPerResource {
		return apiErrorf(codeTagLimitExceeded, "The maximum number of tags (%d) for resource '%s' has been exceeded", maxTagsPerResource, id)
	}
	return nil
}
