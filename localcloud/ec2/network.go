package ec2

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/gust-dev/gust/tenants"
)

// Every account has a default VPC with one default subnet per zone and a
// default security group, as a new AWS account does. They are not stored:
// their ids are hashes of the account (and zone), the same on every Open,
// so one account can never guess or reach another's. Security groups the
// account creates live in the security_groups table, in the default VPC.

// derivedID is prefix and 17 hex digits of a hash of parts.
func derivedID(prefix string, parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + hex.EncodeToString(sum[:])[:17]
}

func defaultVPC(acct string) string { return derivedID("vpc-", "vpc", acct) }

func defaultSubnet(acct, zone string) string { return derivedID("subnet-", "subnet", acct, zone) }

func defaultGroup(acct string) string { return derivedID("sg-", "security-group", acct, "default") }

// maxSecurityGroupsPerAccount bounds CreateSecurityGroup.
const maxSecurityGroupsPerAccount = 500

// subnetZone returns the zone of the account's subnet id.
func (c *Cloud) subnetZone(acct, id string) (string, bool) {
	for _, z := range c.cfg.Zones {
		if defaultSubnet(acct, z) == id {
			return z, true
		}
	}
	return "", false
}

// zoneIndex is the zone's position, for its zone id and CIDR block.
func (c *Cloud) zoneIndex(zone string) int {
	for i, z := range c.cfg.Zones {
		if z == zone {
			return i
		}
	}
	return 0
}

type securityGroup struct {
	id, name, description string
	tags                  map[string]string
}

// accountGroups lists the account's security groups, the default first.
func accountGroups(ctx context.Context, tx *sql.Tx, acct string) ([]securityGroup, error) {
	out := []securityGroup{{id: defaultGroup(acct), name: "default", description: "default VPC security group"}}
	rows, err := tx.QueryContext(ctx, `SELECT id, name, description, tags FROM security_groups WHERE account = ? ORDER BY name`, acct)
	if err != nil {
		return nil, fmt.Errorf("listing security groups, %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var g securityGroup
		var tags string
		if err := rows.Scan(&g.id, &g.name, &g.description, &tags); err != nil {
			return nil, fmt.Errorf("listing security groups, %w", err)
		}
		_ = json.Unmarshal([]byte(tags), &g.tags)
		out = append(out, g)
	}
	return out, rows.Err()
}

// resolveGroups turns security group ids and names into the account's
// group ids, the default group when none are given. An unknown one is
// InvalidGroup.NotFound.
func (c *Cloud) resolveGroups(ctx context.Context, tx *sql.Tx, acct string, ids, names []string) ([]string, error) {
	if len(ids)+len(names) == 0 {
		return []string{defaultGroup(acct)}, nil
	}
	groups, err := accountGroups(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	byID, byName := map[string]bool{}, map[string]string{}
	for _, g := range groups {
		byID[g.id] = true
		byName[g.name] = g.id
	}
	var out []string
	seen := map[string]bool{}
	add := func(id string) {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	for _, id := range ids {
		if !strings.HasPrefix(id, "sg-") {
			return nil, apiErrorf(codeGroupMalformed, "Invalid id: \"%s\" (expecting \"sg-...\")", id)
		}
		if !byID[id] {
			return nil, apiErrorf(codeGroupNotFound, "The security group '%s' does not exist", id)
		}
		add(id)
	}
	for _, n := range names {
		id, ok := byName[n]
		if !ok {
			return nil, apiErrorf(codeGroupNotFound, "The security group '%s' does not exist in default VPC '%s'", n, defaultVPC(acct))
		}
		add(id)
	}
	return out, nil
}

// groupNames maps the account's group ids to names.
func groupNames(ctx context.Context, tx *sql.Tx, acct string) (map[string]string, error) {
	groups, err := accountGroups(ctx, tx, acct)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, g := range groups {
		out[g.id] = g.name
	}
	return out, nil
}

func (c *Cloud) describeVpcs(ctx context.Context, acct string, p params, w *xmlWriter) error {
	vpc := defaultVPC(acct)
	for _, id := range p.list("VpcId") {
		if id != vpc {
			return apiErrorf(codeVpcNotFound, "The vpc ID '%s' does not exist", id)
		}
	}
	filters, err := p.filters()
	if err != nil {
		return err
	}
	show, err := matchAttrs(filters, map[string]string{
		"vpc-id":                            vpc,
		"is-default":                        "true",
		"state":                             "available",
		"cidr":                              "172.31.0.0/16",
		"cidr-block-association.cidr-block": "172.31.0.0/16",
	})
	if err != nil {
		return err
	}
	w.open("vpcSet")
	if show {
		w.open("item")
		w.text("vpcId", vpc)
		w.text("ownerId", tenants.AccountID(acct))
		w.text("state", "available")
		w.text("cidrBlock", "172.31.0.0/16")
		w.text("instanceTenancy", "default")
		w.bool("isDefault", true)
		w.close("item")
	}
	w.close("vpcSet")
	return nil
}

func (c *Cloud) describeSubnets(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("SubnetId")
	for _, id := range ids {
		if _, ok := c.subnetZone(acct, id); !ok {
			return apiErrorf(codeSubnetNotFound, "The subnet ID '%s' does not exist", id)
		}
	}
	filters, err := p.filters()
	if err != nil {
		return err
	}
	owner := tenants.AccountID(acct)
	vpc := defaultVPC(acct)
	w.open("subnetSet")
	for i, z := range c.cfg.Zones {
		id := defaultSubnet(acct, z)
		cidr := fmt.Sprintf("172.31.%d.0/20", 16*i)
		if len(ids) > 0 && !contains(ids, id) {
			continue
		}
		show, err := matchAttrs(filters, map[string]string{
			"availability-zone":    z,
			"availability-zone-id": c.zoneID(z),
			"vpc-id":               vpc,
			"subnet-id":            id,
			"default-for-az":       "true",
			"state":                "available",
			"cidr-block":           cidr,
		})
		if err != nil {
			return err
		}
		if !show {
			continue
		}
		w.open("item")
		w.text("subnetId", id)
		w.text("subnetArn", "arn:aws:ec2:"+c.cfg.Region+":"+owner+":subnet/"+id)
		w.text("state", "available")
		w.text("ownerId", owner)
		w.text("vpcId", vpc)
		w.text("cidrBlock", cidr)
		w.int("availableIpAddressCount", 4091)
		w.text("availabilityZone", z)
		w.text("availabilityZoneId", c.zoneID(z))
		w.bool("defaultForAz", true)
		w.bool("mapPublicIpOnLaunch", true)
		w.close("item")
	}
	w.close("subnetSet")
	return nil
}

// zoneID is the zone's id, such as use1-az1.
func (c *Cloud) zoneID(zone string) string {
	return fmt.Sprintf("%s-az%d", regionShort(c.cfg.Region), c.zoneIndex(zone)+1)
}

func (c *Cloud) describeSecurityGroups(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids, names := p.list("GroupId"), p.list("GroupName")
	filters, err := p.filters()
	if err != nil {
		return err
	}
	for _, f := range filters {
		switch f.Name {
		case "group-name", "group-id", "vpc-id", "description":
		default:
			if !strings.HasPrefix(f.Name, "tag:") {
				return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
			}
		}
	}
	var groups []securityGroup
	err = c.read(ctx, func(tx *sql.Tx) error {
		var err error
		if _, err = c.resolveGroups(ctx, tx, acct, ids, names); err != nil {
			return err
		}
		groups, err = accountGroups(ctx, tx, acct)
		return err
	})
	if err != nil {
		return err
	}
	owner := tenants.AccountID(acct)
	vpc := defaultVPC(acct)
	w.open("securityGroupInfo")
	for _, g := range groups {
		if (len(ids) > 0 || len(names) > 0) && !contains(ids, g.id) && !contains(names, g.name) {
			continue
		}
		show := true
		for _, f := range filters {
			switch key, isTag := strings.CutPrefix(f.Name, "tag:"); {
			case isTag:
				v, ok := g.tags[key]
				show = show && ok && contains(f.Values, v)
			case f.Name == "group-name":
				show = show && contains(f.Values, g.name)
			case f.Name == "group-id":
				show = show && contains(f.Values, g.id)
			case f.Name == "vpc-id":
				show = show && contains(f.Values, vpc)
			case f.Name == "description":
				show = show && contains(f.Values, g.description)
			}
		}
		if !show {
			continue
		}
		w.open("item")
		w.text("ownerId", owner)
		w.text("groupId", g.id)
		w.text("groupName", g.name)
		w.text("groupDescription", g.description)
		w.text("securityGroupArn", "arn:aws:ec2:"+c.cfg.Region+":"+owner+":security-group/"+g.id)
		w.text("vpcId", vpc)
		w.open("ipPermissions")
		w.close("ipPermissions")
		w.open("ipPermissionsEgress")
		w.close("ipPermissionsEgress")
		w.tagSet(g.tags)
		w.close("item")
	}
	w.close("securityGroupInfo")
	return nil
}

// groupNamePattern is EC2's rule for VPC security group names and
// descriptions: up to 255 of a-z, A-Z, 0-9, spaces and ._-:/()#,@[]+=&;{}!$*
var groupNamePattern = regexp.MustCompile(`^[a-zA-Z0-9 ._\-:/()#,@\[\]+=&;{}!$*]{1,255}$`)

func (c *Cloud) createSecurityGroup(ctx context.Context, acct string, p params, w *xmlWriter) error {
	name, err := p.required("GroupName")
	if err != nil {
		return err
	}
	desc, err := p.required("GroupDescription")
	if err != nil {
		return err
	}
	switch {
	case !groupNamePattern.MatchString(name) || strings.HasPrefix(name, "sg-"):
		return apiErrorf(codeInvalidParameterValue, "Value (%s) for parameter groupName is invalid.", name)
	case name == "default":
		return apiErrorf(codeInvalidParameterValue, "Value (default) for parameter groupName is invalid. Group names may not be 'default'.")
	case !groupNamePattern.MatchString(desc):
		return apiErrorf(codeInvalidParameterValue, "Value for parameter groupDescription is invalid.")
	}
	if v := p.get("VpcId"); v != "" && v != defaultVPC(acct) {
		return apiErrorf(codeVpcNotFound, "The vpc ID '%s' does not exist", v)
	}
	tags, err := p.tags("TagSpecification", "security-group")
	if err != nil {
		return err
	}
	tagJSON, _ := json.Marshal(tags)
	id := newID("sg-")
	err = c.write(ctx, func(tx *sql.Tx) error {
		var n int
		var dup bool
		if err := tx.QueryRowContext(ctx, `SELECT count(*), coalesce(max(name = ?), 0) FROM security_groups WHERE account = ?`, name, acct).Scan(&n, &dup); err != nil {
			return fmt.Errorf("counting security groups, %w", err)
		}
		if dup {
			return apiErrorf(codeGroupDuplicate, "The security group '%s' already exists for VPC '%s'", name, defaultVPC(acct))
		}
		if n >= maxSecurityGroupsPerAccount {
			return apiErrorf(codeResourceLimitExceeded, "The maximum number of security groups (%d) has been reached.", maxSecurityGroupsPerAccount)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO security_groups (account, id, name, description, tags) VALUES (?, ?, ?, ?, ?)`,
			acct, id, name, desc, string(tagJSON))
		if err != nil {
			return fmt.Errorf("creating security group, %w", err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	w.bool("return", true)
	w.text("groupId", id)
	w.text("securityGroupArn", "arn:aws:ec2:"+c.cfg.Region+":"+tenants.AccountID(acct)+":security-group/"+id)
	w.tagSet(tags)
	return nil
}

// deleteSecurityGroup deletes a group no live instance uses; the default
// group cannot be deleted.
func (c *Cloud) deleteSecurityGroup(ctx context.Context, acct string, p params, w *xmlWriter) error {
	id, name := p.get("GroupId"), p.get("GroupName")
	if id == "" && name == "" {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter GroupId or GroupName")
	}
	err := c.write(ctx, func(tx *sql.Tx) error {
		var ids, names []string
		if id != "" {
			ids = []string{id}
		} else {
			names = []string{name}
		}
		got, err := c.resolveGroups(ctx, tx, acct, ids, names)
		if err != nil {
			return err
		}
		id = got[0]
		if id == defaultGroup(acct) {
			return apiErrorf(codeCannotDelete, "the specified group: \"%s\" name: \"default\" cannot be deleted by a user", id)
		}
		var used int
		err = tx.QueryRowContext(ctx, `SELECT count(*) FROM instances WHERE account = ? AND terminated_ns IS NULL
			AND ',' || security_groups || ',' LIKE ?`, acct, "%,"+id+",%").Scan(&used)
		if err != nil {
			return fmt.Errorf("checking security group use, %w", err)
		}
		if used > 0 {
			return apiErrorf(codeDependencyViolation, "resource %s has a dependent object", id)
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM security_groups WHERE account = ? AND id = ?`, acct, id)
		return err
	})
	if err != nil {
		return err
	}
	w.bool("return", true)
	w.text("groupId", id)
	return nil
}
