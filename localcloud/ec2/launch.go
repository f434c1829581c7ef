package ec2

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/gust-dev/gust/tenants"
)

// Launch parameters: what RunInstances, a launch template version and
// CreateFleet's overrides say about the instances to launch, and their
// validation against the account's subnets, security groups, key pairs
// and instance profiles. A launch is checked completely before anything
// is launched, whether its parameters came from the request or from a
// template.

// launchActions are the actions of the launch parameters' resources:
// networks, key pairs, launch templates, spot prices and fleets.
func (c *Cloud) launchActions() map[string]action {
	return map[string]action{
		"DescribeVpcs":                   {run: c.describeVpcs, describe: true},
		"DescribeSubnets":                {run: c.describeSubnets, describe: true},
		"DescribeSecurityGroups":         {run: c.describeSecurityGroups, describe: true},
		"CreateSecurityGroup":            {run: c.createSecurityGroup},
		"DeleteSecurityGroup":            {run: c.deleteSecurityGroup},
		"CreateKeyPair":                  {run: c.createKeyPair},
		"ImportKeyPair":                  {run: c.importKeyPair},
		"DescribeKeyPairs":               {run: c.describeKeyPairs, describe: true},
		"DeleteKeyPair":                  {run: c.deleteKeyPair},
		"DescribeInstanceAttribute":      {run: c.describeInstanceAttribute, describe: true},
		"CreateLaunchTemplate":           {run: c.createLaunchTemplate},
		"CreateLaunchTemplateVersion":    {run: c.createLaunchTemplateVersion},
		"ModifyLaunchTemplate":           {run: c.modifyLaunchTemplate},
		"DescribeLaunchTemplates":        {run: c.describeLaunchTemplates, describe: true},
		"DescribeLaunchTemplateVersions": {run: c.describeLaunchTemplateVersions, describe: true},
		"DeleteLaunchTemplate":           {run: c.deleteLaunchTemplate},
		"DescribeSpotPriceHistory":       {run: c.describeSpotPriceHistory, describe: true},
		"GetSpotPlacementScores":         {run: c.getSpotPlacementScores, describe: true},
		"CreateFleet":                    {run: c.createFleet},
		"DescribeFleets":                 {run: c.describeFleets, describe: true},
		"DeleteFleets":                   {run: c.deleteFleets},
	}
}

// launchSchema holds the launch parameters' resources, all per account.
// The default VPC, its subnets and its default security group are not
// stored: their ids derive from the account (network.go).
const launchSchema = `
CREATE TABLE IF NOT EXISTS security_groups (
	account TEXT NOT NULL,
	id TEXT NOT NULL,
	name TEXT NOT NULL,
	description TEXT NOT NULL,
	tags TEXT NOT NULL, -- JSON object
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS key_pairs (
	account TEXT NOT NULL,
	name TEXT NOT NULL,
	id TEXT NOT NULL,
	key_type TEXT NOT NULL,
	fingerprint TEXT NOT NULL,
	public_key TEXT NOT NULL, -- OpenSSH authorized_keys line
	tags TEXT NOT NULL,
	created_ns INTEGER NOT NULL,
	PRIMARY KEY (account, name),
	UNIQUE (account, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS launch_templates (
	account TEXT NOT NULL,
	id TEXT NOT NULL,
	name TEXT NOT NULL,
	default_version INTEGER NOT NULL,
	latest_version INTEGER NOT NULL,
	tags TEXT NOT NULL,
	created_ns INTEGER NOT NULL,
	PRIMARY KEY (account, id),
	UNIQUE (account, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS launch_template_versions (
	account TEXT NOT NULL,
	template_id TEXT NOT NULL,
	version INTEGER NOT NULL,
	description TEXT NOT NULL,
	data TEXT NOT NULL, -- JSON launchSpec
	created_ns INTEGER NOT NULL,
	PRIMARY KEY (account, template_id, version)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS fleets (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	account TEXT NOT NULL,
	id TEXT NOT NULL UNIQUE,
	type TEXT NOT NULL,
	state TEXT NOT NULL,
	client_token TEXT NOT NULL,
	digest TEXT NOT NULL,
	target TEXT NOT NULL, -- JSON fleetTarget
	result TEXT NOT NULL, -- the response's errorSet and fleetInstanceSet elements, as answered
	tags TEXT NOT NULL,
	created_ns INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS fleets_account_token ON fleets (account, client_token) WHERE client_token != '';
`

// migrateLaunch adds the launch parameters' columns to a database written
// before they existed: its instances are on-demand instances launched
// without any, and its pools sell at the default prices.
func migrateLaunch(ctx context.Context, tx *sql.Tx) error {
	cols := []struct{ table, column, decl string }{
		{"instances", "lifecycle", `TEXT NOT NULL DEFAULT 'on-demand'`},
		{"instances", "subnet_id", `TEXT NOT NULL DEFAULT ''`},
		{"instances", "key_name", `TEXT NOT NULL DEFAULT ''`},
		{"instances", "security_groups", `TEXT NOT NULL DEFAULT ''`},
		{"instances", "user_data", `TEXT NOT NULL DEFAULT ''`},
		{"instances", "iam_profile", `TEXT NOT NULL DEFAULT ''`},
		{"pools", "price", `REAL NOT NULL DEFAULT 0`},
	}
	for _, col := range cols {
		var exists, has int
		err := tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?)`, col.table).Scan(&exists)
		if err == nil {
			err = tx.QueryRowContext(ctx, `SELECT count(*) FROM pragma_table_info(?) WHERE name = ?`, col.table, col.column).Scan(&has)
		}
		if err != nil {
			return fmt.Errorf("reading local cloud schema, %w", err)
		}
		if exists > 0 && has == 0 {
			if _, err := tx.ExecContext(ctx, `ALTER TABLE `+col.table+` ADD COLUMN `+col.column+` `+col.decl); err != nil {
				return fmt.Errorf("adding %s to %s, %w", col.column, col.table, err)
			}
		}
	}
	return nil
}

// Limits on launch parameters.
const (
	maxUserData       = 16 << 10 // decoded bytes, EC2's limit
	maxSecurityGroups = 16
	maxNameLen        = 255
)

// launchSpec is a set of launch parameters; an empty field is unset. It is
// also a launch template version's data, stored as JSON.
type launchSpec struct {
	ImageID        string   `json:"imageId,omitempty"`
	InstanceType   string   `json:"instanceType,omitempty"`
	KeyName        string   `json:"keyName,omitempty"`
	GroupIDs       []string `json:"securityGroupIds,omitempty"`
	GroupNames     []string `json:"securityGroups,omitempty"`
	SubnetID       string   `json:"subnetId,omitempty"`
	Zone           string   `json:"availabilityZone,omitempty"`
	UserData       string   `json:"userData,omitempty"`
	ProfileARN     string   `json:"iamInstanceProfileArn,omitempty"`
	ProfileName    string   `json:"iamInstanceProfileName,omitempty"`
	MarketType     string   `json:"marketType,omitempty"`
	MaxPrice       string   `json:"maxPrice,omitempty"`
	networkSubnets bool     // SubnetID came from NetworkInterface.N
}

// readLaunchSpec reads the launch parameters under prefix: "" for
// RunInstances, "LaunchTemplateData." for a template version. Parameters
// it does not name are ignored. It checks their syntax; whether the named
// resources exist is resolveLaunch's business.
func readLaunchSpec(p params, prefix string) (launchSpec, error) {
	s := launchSpec{
		ImageID:      p.get(prefix + "ImageId"),
		InstanceType: p.get(prefix + "InstanceType"),
		KeyName:      p.get(prefix + "KeyName"),
		GroupIDs:     p.list(prefix + "SecurityGroupId"),
		GroupNames:   p.list(prefix + "SecurityGroup"),
		Zone:         p.get(prefix + "Placement.AvailabilityZone"),
		UserData:     p.get(prefix + "UserData"),
		ProfileARN:   p.get(prefix + "IamInstanceProfile.Arn"),
		ProfileName:  p.get(prefix + "IamInstanceProfile.Name"),
		MarketType:   p.get(prefix + "InstanceMarketOptions.MarketType"),
		MaxPrice:     p.get(prefix + "InstanceMarketOptions.SpotOptions.MaxPrice"),
	}
	if prefix == "" {
		s.SubnetID = p.get("SubnetId")
	}
	// The primary network interface (device index 0, or the first one)
	// may name the subnet instead.
	for _, n := range p.indexes(prefix + "NetworkInterface") {
		pre := prefix + "NetworkInterface." + strconv.Itoa(n) + "."
		if d := p.get(pre + "DeviceIndex"); d != "" && d != "0" {
			continue
		}
		sub := p.get(pre + "SubnetId")
		if sub == "" {
			continue
		}
		if s.SubnetID != "" && s.SubnetID != sub {
			return s, apiErrorf(codeInvalidParameterCombo, "Network interfaces and an instance-level subnet ID may not be specified on the same request")
		}
		s.SubnetID = sub
		s.networkSubnets = true
		s.GroupIDs = append(s.GroupIDs, p.list(pre+"SecurityGroupId")...)
		break
	}
	return s, s.check()
}

// check validates the parameters' syntax and sizes.
func (s launchSpec) check() error {
	for name, v := range map[string]string{"ImageId": s.ImageID, "KeyName": s.KeyName, "SubnetId": s.SubnetID,
		"Placement.AvailabilityZone": s.Zone, "IamInstanceProfile.Arn": s.ProfileARN} {
		if len(v) > maxNameLen*8 {
			return apiErrorf(codeInvalidParameterValue, "Value for %s is too long", name)
		}
	}
	if len(s.KeyName) > maxNameLen {
		return apiErrorf(codeInvalidParameterValue, "Key name must be at most %d characters", maxNameLen)
	}
	if s.InstanceType != "" && !validInstanceType(s.InstanceType) {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for InstanceType.", s.InstanceType)
	}
	if len(s.GroupIDs)+len(s.GroupNames) > maxSecurityGroups {
		return apiErrorf(codeInvalidParameterValue, "At most %d security groups can be specified", maxSecurityGroups)
	}
	if s.UserData != "" {
		if _, err := decodeUserData(s.UserData); err != nil {
			return err
		}
	}
	if s.ProfileARN != "" && s.ProfileName != "" {
		return apiErrorf(codeInvalidParameterCombo, "The parameter 'iamInstanceProfile.name' may not be used in combination with 'iamInstanceProfile.arn'")
	}
	if s.ProfileARN != "" && !profileARNPattern.MatchString(s.ProfileARN) {
		return apiErrorf(codeInvalidParameterValue, "Value (%s) for parameter iamInstanceProfile.arn is invalid. Invalid IAM Instance Profile ARN", s.ProfileARN)
	}
	if s.ProfileName != "" && !profileNamePattern.MatchString(s.ProfileName) {
		return apiErrorf(codeInvalidParameterValue, "Value (%s) for parameter iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name", s.ProfileName)
	}
	switch s.MarketType {
	case "", MarketSpot:
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for InstanceMarketOptions.MarketType: only spot is supported", s.MarketType)
	}
	if s.MaxPrice != "" {
		if _, err := parsePrice("SpotOptions.MaxPrice", s.MaxPrice); err != nil {
			return err
		}
	}
	return nil
}

var (
	profileARNPattern  = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):instance-profile/(?:[\x21-\x7e]*/)?[\w+=,.@-]{1,128}$`)
	profileNamePattern = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
)

// decodeUserData checks user data: base64 of at most 16 KB.
func decodeUserData(v string) ([]byte, error) {
	if len(v) > (maxUserData/3+1)*4+8 {
		return nil, apiErrorf(codeInvalidParameterValue, "User data is limited to %d bytes", maxUserData)
	}
	b, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(v); err != nil {
			return nil, apiErrorf(codeInvalidParameterValue, "Invalid BASE64 encoding of user data")
		}
	}
	if len(b) > maxUserData {
		return nil, apiErrorf(codeInvalidParameterValue, "User data is limited to %d bytes", maxUserData)
	}
	return b, nil
}

// over returns s with every field that top sets taken from top: explicit
// request parameters override a template's.
func (s launchSpec) over(top launchSpec) launchSpec {
	pick := func(a, b string) string {
		if b != "" {
			return b
		}
		return a
	}
	out := s
	out.ImageID = pick(s.ImageID, top.ImageID)
	out.InstanceType = pick(s.InstanceType, top.InstanceType)
	out.KeyName = pick(s.KeyName, top.KeyName)
	if len(top.GroupIDs)+len(top.GroupNames) > 0 {
		out.GroupIDs, out.GroupNames = top.GroupIDs, top.GroupNames
	}
	if top.SubnetID != "" {
		out.SubnetID = top.SubnetID
		if top.Zone == "" && s.Zone != "" {
			// The request's subnet decides the zone; the template's zone
			// must not conflict with it.
			out.Zone = ""
		}
	}
	if top.Zone != "" && top.SubnetID == "" {
		// The request's zone replaces the template's subnet with the
		// zone's default subnet.
		out.SubnetID = ""
	}
	out.Zone = pick(out.Zone, top.Zone)
	out.UserData = pick(s.UserData, top.UserData)
	if top.ProfileARN != "" || top.ProfileName != "" {
		out.ProfileARN, out.ProfileName = top.ProfileARN, top.ProfileName
	}
	out.MarketType = pick(s.MarketType, top.MarketType)
	out.MaxPrice = pick(s.MaxPrice, top.MaxPrice)
	return out
}

// launch is a resolved, validated set of launch parameters.
type launch struct {
	imageID, instanceType string
	keyName               string
	subnetID              string // empty: the default subnet of the zone launched in
	zone                  string // empty: any zone
	groups                []string
	userData              string
	profileARN            string
	market                string  // MarketOnDemand or MarketSpot
	maxPrice              float64 // 0: none
	templateID            string
	templateVersion       int
}

// resolveLaunch checks s against the account's resources: the image and
// type are given and the type offered, the subnet is the account's (and
// decides the zone), the security groups and key pair exist, and an
// instance profile ARN names the account.
func (c *Cloud) resolveLaunch(ctx context.Context, tx *sql.Tx, acct string, s launchSpec) (*launch, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	if s.ImageID == "" {
		return nil, apiErrorf(codeMissingParameter, "The request must contain the parameter ImageId")
	}
	if s.InstanceType == "" {
		return nil, apiErrorf(codeMissingParameter, "The request must contain the parameter InstanceType")
	}
	ok, err := knownType(ctx, tx, s.InstanceType)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for InstanceType.", s.InstanceType)
	}
	l := &launch{imageID: s.ImageID, instanceType: s.InstanceType, zone: s.Zone, userData: s.UserData, market: MarketOnDemand}
	if l.zone != "" && !c.zones[l.zone] {
		return nil, apiErrorf(codeInvalidParameterValue, "Invalid availability zone: [%s]", l.zone)
	}
	if s.SubnetID != "" {
		zone, ok := c.subnetZone(acct, s.SubnetID)
		if !ok {
			return nil, apiErrorf(codeSubnetNotFound, "The subnet ID '%s' does not exist", s.SubnetID)
		}
		if l.zone != "" && l.zone != zone {
			return nil, apiErrorf(codeInvalidParameterCombo, "The specified Availability Zone (%s) does not match the Availability Zone of the subnet %s (%s).", l.zone, s.SubnetID, zone)
		}
		l.subnetID, l.zone = s.SubnetID, zone
	}
	if l.groups, err = c.resolveGroups(ctx, tx, acct, s.GroupIDs, s.GroupNames); err != nil {
		return nil, err
	}
	if s.KeyName != "" {
		if _, err := loadKeyPair(ctx, tx, acct, s.KeyName); err != nil {
			return nil, err
		}
		l.keyName = s.KeyName
	}
	owner := tenants.AccountID(acct)
	switch {
	case s.ProfileARN != "":
		if m := profileARNPattern.FindStringSubmatch(s.ProfileARN); m == nil || m[1] != owner {
			return nil, apiErrorf(codeInvalidParameterValue, "Value (%s) for parameter iamInstanceProfile.arn is invalid. The instance profile must belong to account %s", s.ProfileARN, owner)
		}
		l.profileARN = s.ProfileARN
	case s.ProfileName != "":
		l.profileARN = "arn:aws:iam::" + owner + ":instance-profile/" + s.ProfileName
	}
	if s.MarketType == MarketSpot {
		l.market = MarketSpot
	}
	if s.MaxPrice != "" {
		if l.market != MarketSpot {
			return nil, apiErrorf(codeInvalidParameterCombo, "SpotOptions.MaxPrice requires InstanceMarketOptions.MarketType spot")
		}
		if l.maxPrice, err = parsePrice("SpotOptions.MaxPrice", s.MaxPrice); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// describeInstanceAttribute answers DescribeInstanceAttribute for the
// attributes the local cloud keeps: userData, instanceType and groupSet.
func (c *Cloud) describeInstanceAttribute(ctx context.Context, acct string, p params, w *xmlWriter) error {
	id, err := p.required("InstanceId")
	if err != nil {
		return err
	}
	attr, err := p.required("Attribute")
	if err != nil {
		return err
	}
	switch attr {
	case "userData", "instanceType", "groupSet":
	default:
		return apiErrorf(codeInvalidParameterValue, "Value (%s) for parameter attribute is invalid. Unknown attribute.", attr)
	}
	var in *instance
	err = c.read(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		if err := c.checkInstancesExist(ctx, tx, acct, []string{id}, now); err != nil {
			return err
		}
		list, err := queryInstances(ctx, tx, "account = ? AND id = ?", []any{acct, id}, 1)
		if err != nil {
			return err
		}
		in = list[0]
		return nil
	})
	if err != nil {
		return err
	}
	w.text("instanceId", in.id)
	switch attr {
	case "userData":
		w.open("userData")
		if in.userData != "" {
			w.text("value", in.userData)
		}
		w.close("userData")
	case "instanceType":
		w.open("instanceType")
		w.text("value", in.instanceType)
		w.close("instanceType")
	case "groupSet":
		writeGroupSet(w, in)
	}
	return nil
}

// splitGroups reads instances.security_groups.
func splitGroups(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
