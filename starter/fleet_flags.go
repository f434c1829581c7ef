package main

import (
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/workflows"
)

// fleetLaunchFlags are `gust fleet launch`'s own flags. Their names are a
// contract (docs/cli.md, README): scripts pass them.
func fleetLaunchFlags() []cli.Flag {
	return []cli.Flag{
		fleetTenantFlag(),
		&cli.IntFlag{Name: "min", Usage: "capacity units (instances, unless types are weighted) to launch at once in one burst (required)"},
		&cli.IntFlag{Name: "target", Usage: "capacity units to fill to as capacity allows (required)"},
		&cli.StringSliceFlag{Name: "instance-type", Aliases: []string{"t"}, Usage: "instance type TYPE[:WEIGHT], e.g. m5.large or m5.xlarge:2 (an instance counts WEIGHT units, default 1); repeatable, the first preferred (required)"},
		&cli.StringFlag{Name: "fleet-id", Usage: "fleet id, unique per tenant; a launch with an existing id joins that fleet (default: generated)"},
		&cli.BoolFlag{Name: "no-burst", Usage: "launch the minimum through the rate limiter too (the baseline)"},
		&cli.StringSliceFlag{Name: "zone", Usage: "availability zone the fleet may use, repeatable (default: any)"},
		&cli.StringSliceFlag{Name: "subnet-id", Usage: "subnet to launch into (implies its zone), repeatable"},
		&cli.StringFlag{Name: "allocation-strategy", Value: workflows.AllocationPrioritized, Usage: "which offering first: prioritized (in --instance-type order), lowest-price (per unit) or capacity-optimized"},
		&cli.IntFlag{Name: "on-demand-base", Usage: "capacity units that are on-demand before --spot-share applies"},
		&cli.IntFlag{Name: "spot-share", Usage: "`PERCENT` (0-100) of the units above --on-demand-base that are spot; the rest are on-demand"},
		&cli.StringFlag{Name: "on-lost", Value: workflows.OnLostReplace, Usage: "when instances are reclaimed or terminated outside gust: replace (and keep maintaining the target until cancelled) or fail"},
		&cli.StringFlag{Name: "image-id", Aliases: []string{"image"}, Usage: "image id for the launches (default: the provider's, or the launch template's)"},
		&cli.StringSliceFlag{Name: "security-group-id", Usage: "security group for the instances, repeatable"},
		&cli.StringFlag{Name: "key-name", Usage: "EC2 key pair for the instances"},
		&cli.StringFlag{Name: "iam-instance-profile", Usage: "IAM instance profile for the instances: its `ARN_OR_NAME`"},
		&cli.StringFlag{Name: "user-data", Usage: fmt.Sprintf("instance user data, or @FILE to read it from FILE (at most %d bytes)", workflows.MaxUserData)},
		&cli.StringFlag{Name: "launch-template", Usage: "launch template `ID_OR_NAME[:VERSION]` (lt-… is an id; VERSION is a number, $Latest or $Default) whose settings the other flags override"},
		&cli.StringSliceFlag{Name: "tag", Usage: "instance tag `KEY=VALUE`, repeatable"},
		&cli.StringFlag{Name: "capacity-policy", Value: workflows.CapacityPolicyFail, Usage: "when the minimum's capacity is missing: fail (at once) or wait (with backoff)"},
		&cli.DurationFlag{Name: "capacity-wait", Usage: "with --capacity-policy wait: how long to wait for capacity (default 15m)"},
		&cli.BoolFlag{Name: "wait", Usage: "wait until the fleet reaches its target (or ends), showing progress (text) or printing the result (json)"},
		&cli.DurationFlag{Name: "timeout", Usage: "with --wait: stop waiting after this long and exit 1 (the fleet keeps filling)"},
	}
}

func fleetInput(c *cli.Context) (workflows.LaunchFleetInput, error) {
	tenant, err := fleetTenant(c)
	if err != nil {
		return workflows.LaunchFleetInput{}, err
	}
	in := workflows.LaunchFleetInput{
		Tenant:             tenant,
		FleetID:            c.String("fleet-id"),
		ImageID:            c.String("image-id"),
		Min:                c.Int("min"),
		Target:             c.Int("target"),
		Burst:              !c.Bool("no-burst"),
		CapacityPolicy:     c.String("capacity-policy"),
		WaitTimeout:        c.Duration("capacity-wait"),
		AllocationStrategy: c.String("allocation-strategy"),
		OnDemandBase:       c.Int("on-demand-base"),
		SpotShare:          c.Int("spot-share"),
		OnLost:             c.String("on-lost"),
		SubnetIDs:          c.StringSlice("subnet-id"),
		Launch: providers.LaunchParams{
			SecurityGroupIDs:   c.StringSlice("security-group-id"),
			KeyName:            c.String("key-name"),
			IAMInstanceProfile: c.String("iam-instance-profile"),
		},
	}
	for _, name := range []string{"min", "target", "instance-type"} {
		if !c.IsSet(name) {
			return in, usagef("--%s is required", name)
		}
	}
	if err := fleetOfferings(&in, c.StringSlice("instance-type"), c.StringSlice("zone")); err != nil {
		return in, err
	}
	if err := fleetMarketFlags(c, in); err != nil {
		return in, err
	}
	if c.IsSet("capacity-wait") && in.CapacityPolicy != workflows.CapacityPolicyWait {
		return in, usagef("--capacity-wait needs --capacity-policy wait")
	}
	if c.IsSet("timeout") && !c.Bool("wait") {
		return in, usagef("--timeout needs --wait")
	}
	if c.Duration("timeout") < 0 {
		return in, usagef("--timeout must not be negative")
	}
	if c.IsSet("key-name") && in.Launch.KeyName == "" {
		return in, usagef("--key-name must not be empty")
	}
	if in.Launch.UserData, err = userData(c.String("user-data")); err != nil {
		return in, err
	}
	if s := c.String("launch-template"); s != "" || c.IsSet("launch-template") {
		if in.Launch.LaunchTemplate, err = parseLaunchTemplate(s); err != nil {
			return in, err
		}
	}
	if in.FleetID == "" {
		in.FleetID = "fleet-" + randomHex(4)
	}
	for _, kv := range c.StringSlice("tag") {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return in, usagef("--tag %q: want KEY=VALUE", kv)
		}
		if in.Tags == nil {
			in.Tags = map[string]string{}
		}
		if _, dup := in.Tags[k]; dup {
			return in, usagef("--tag %q given twice", k)
		}
		in.Tags[k] = v
	}
	if err := in.Validate(); err != nil {
		return in, usagef("%v", err)
	}
	return in, nil
}

// fleetOfferings sets in's instance type and offerings from --instance-type
// (TYPE[:WEIGHT], repeatable) and --zone. One type without a weight is the
// plain fleet every worker knows: InstanceType in Zones. Otherwise the
// offerings are types × zones (one offering per type in any zone without
// --zone), each type's Priority its position, so that the prioritized
// strategy prefers the first; InstanceType stays the first type, which
// listings and the memo show.
func fleetOfferings(in *workflows.LaunchFleetInput, types, zones []string) error {
	if len(types) == 0 {
		return usagef("--instance-type is required")
	}
	// Bound the cross product before building it; Validate names the
	// limit again for offerings given some other way.
	if n := len(types) * max(1, len(zones)); n > workflows.MaxOfferings {
		return usagef("%d instance types × %d zones is %d offerings: at most %d are allowed", len(types), len(zones), n, workflows.MaxOfferings)
	}
	parsed := make([]workflows.Offering, 0, len(types))
	for i, s := range types {
		o, err := workflows.ParseOffering(s)
		if err != nil {
			return usagef("--instance-type: %v", err)
		}
		if slices.ContainsFunc(parsed, func(p workflows.Offering) bool { return p.InstanceType == o.InstanceType }) {
			return usagef("--instance-type %s given twice", o.InstanceType)
		}
		o.Priority = i
		parsed = append(parsed, o)
	}
	for i, z := range zones {
		if slices.Contains(zones[:i], z) {
			return usagef("--zone %s given twice", z)
		}
	}
	in.InstanceType = parsed[0].InstanceType
	if len(parsed) == 1 && parsed[0].Weight == 0 {
		in.Zones = zones
		return nil
	}
	for _, o := range parsed {
		if len(zones) == 0 {
			in.Offerings = append(in.Offerings, o)
			continue
		}
		for _, z := range zones {
			o.Zone = z
			in.Offerings = append(in.Offerings, o)
		}
	}
	return nil
}

// fleetMarketFlags checks the strategy and market flags, naming the flag;
// Validate checks the same values again.
func fleetMarketFlags(c *cli.Context, in workflows.LaunchFleetInput) error {
	switch in.AllocationStrategy {
	case workflows.AllocationPrioritized, workflows.AllocationLowestPrice, workflows.AllocationCapacityOptimized:
	default:
		return usagef("--allocation-strategy %q: want %s, %s or %s", in.AllocationStrategy,
			workflows.AllocationPrioritized, workflows.AllocationLowestPrice, workflows.AllocationCapacityOptimized)
	}
	switch in.OnLost {
	case workflows.OnLostReplace, workflows.OnLostFail:
	default:
		return usagef("--on-lost %q: want %s or %s", in.OnLost, workflows.OnLostReplace, workflows.OnLostFail)
	}
	if in.OnDemandBase < 0 || in.OnDemandBase > workflows.MaxFleetSize {
		return usagef("--on-demand-base %d must be between 0 and %d", in.OnDemandBase, workflows.MaxFleetSize)
	}
	if in.SpotShare < 0 || in.SpotShare > 100 {
		return usagef("--spot-share %d must be a percentage from 0 to 100", in.SpotShare)
	}
	return nil
}

// userData reads --user-data: the value itself, or @FILE. A file is read
// only up to one byte past workflows.MaxUserData, so a huge (or endless)
// file is refused without being read whole.
func userData(s string) ([]byte, error) {
	file, ok := strings.CutPrefix(s, "@")
	if !ok {
		if len(s) > workflows.MaxUserData {
			return nil, usagef("--user-data is %d bytes: at most %d are allowed", len(s), workflows.MaxUserData)
		}
		if s == "" {
			return nil, nil
		}
		return []byte(s), nil
	}
	if file == "" {
		return nil, usagef("--user-data @: want @FILE")
	}
	f, err := os.Open(file)
	if err != nil {
		return nil, usagef("--user-data: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, workflows.MaxUserData+1))
	if err != nil {
		return nil, usagef("--user-data: reading %s: %v", file, err)
	}
	if len(b) > workflows.MaxUserData {
		return nil, usagef("--user-data: %s is larger than %d bytes", file, workflows.MaxUserData)
	}
	if len(b) == 0 {
		return nil, nil // an empty file is no user data, as an empty value is
	}
	return b, nil
}

// launchTemplateIDRe tells a template id from a name; Validate checks the
// id's length.
var launchTemplateIDRe = regexp.MustCompile(`^lt-[0-9a-f]+$`)

// parseLaunchTemplate reads --launch-template ID_OR_NAME[:VERSION]. Ids,
// names and versions cannot contain ':', so the first one separates the
// version.
func parseLaunchTemplate(s string) (providers.LaunchTemplateRef, error) {
	var ref providers.LaunchTemplateRef
	name, version, hasVersion := strings.Cut(s, ":")
	if name == "" {
		return ref, usagef("--launch-template %q: want ID_OR_NAME[:VERSION]", s)
	}
	if hasVersion {
		n, err := strconv.Atoi(version)
		if version != "$Latest" && version != "$Default" && (err != nil || n < 1) {
			return ref, usagef("--launch-template %q: version %q must be a number, $Latest or $Default", s, version)
		}
		ref.Version = version
	}
	if launchTemplateIDRe.MatchString(name) {
		ref.ID = name
	} else {
		ref.Name = name
	}
	return ref, nil
}

// fleetTypes are the fleet's instance types, the first one first, each
// once.
func fleetTypes(in workflows.LaunchFleetInput) []string {
	types := []string{in.InstanceType}
	for _, o := range in.Offerings {
		if !slices.Contains(types, o.InstanceType) {
			types = append(types, o.InstanceType)
		}
	}
	return types
}

// fleetTypesSummary names the fleet's types for one line: "m5.large", or
// "m5.large, m5.xlarge:2".
func fleetTypesSummary(in workflows.LaunchFleetInput) string {
	if len(in.Offerings) == 0 {
		return in.InstanceType
	}
	var names, seen []string
	for _, o := range in.Offerings {
		if slices.Contains(seen, o.InstanceType) {
			continue // the same type in another zone
		}
		seen = append(seen, o.InstanceType)
		name := o.InstanceType
		if o.Weight > 1 {
			name += ":" + strconv.Itoa(o.Weight)
		}
		names = append(names, name)
	}
	return strings.Join(names, ", ")
}
