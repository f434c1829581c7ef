package workflows

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Validation of a fleet's offerings, markets and launch parameters. Like
// the rest of Validate it asks no cloud; PrepareFleet then checks that the
// cloud knows the types, subnets, groups, key and template.

const (
	// maxWeight bounds an offering's weight (EC2 Fleet's WeightedCapacity
	// has no documented cap; 1000 units per instance is far past any use).
	maxWeight = 1000
	// maxSubnets and maxSecurityGroups bound the lists a fleet carries in
	// every launch's input.
	maxSubnets        = 16
	maxSecurityGroups = 16
	// MaxUserData is EC2's limit on user data before base64 encoding.
	MaxUserData = 16 * 1024
)

var (
	subnetIDRe       = regexp.MustCompile(`^subnet-[0-9a-f]{8,17}$`)
	securityGroupRe  = regexp.MustCompile(`^sg-[0-9a-f]{8,17}$`)
	templateIDRe     = regexp.MustCompile(`^lt-[0-9a-f]{8,17}$`)
	templateNameRe   = regexp.MustCompile(`^[a-zA-Z0-9().\-/_]{3,128}$`)
	profileARNRe     = regexp.MustCompile(`^arn:aws[a-z-]*:iam::[0-9]{12}:instance-profile/[\w+=,.@/-]{1,128}$`)
	profileNameRe    = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	templateVersions = []string{"", "$Latest", "$Default"}
)

// validateOfferings checks the fields fleets of offerings added.
func (in LaunchFleetInput) validateOfferings() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(in.Offerings) > MaxOfferings {
		bad("%d offerings: at most %d are allowed", len(in.Offerings), MaxOfferings)
	}
	if len(in.Offerings) > 0 && len(in.Zones) > 0 {
		bad("zones belong in the offerings when offerings are given")
	}
	type key struct{ t, z string }
	seen := map[key]bool{}
	for i, o := range in.Offerings {
		name := fmt.Sprintf("offering %d (%s)", i+1, o.InstanceType)
		switch {
		case !instanceTypeRe.MatchString(o.InstanceType):
			bad("offering %d: instance type %q is not of the form family.size (e.g. m5.large)", i+1, o.InstanceType)
		case o.Zone != "" && !zoneRe.MatchString(o.Zone):
			bad("%s: zone %q is not a zone name (e.g. us-east-1a)", name, o.Zone)
		case o.Weight < 0 || o.Weight > maxWeight:
			bad("%s: weight %d must be between 1 and %d", name, o.Weight, maxWeight)
		case o.Priority < 0 || o.Priority > 1000:
			bad("%s: priority %d must be between 0 and 1000", name, o.Priority)
		case seen[key{o.InstanceType, o.Zone}]:
			bad("%s: listed twice", name)
		}
		seen[key{o.InstanceType, o.Zone}] = true
	}
	switch in.AllocationStrategy {
	case "", AllocationPrioritized, AllocationLowestPrice, AllocationCapacityOptimized:
	default:
		bad("allocation strategy %q must be %s, %s or %s", in.AllocationStrategy, AllocationPrioritized, AllocationLowestPrice, AllocationCapacityOptimized)
	}
	if in.OnDemandBase < 0 || in.OnDemandBase > MaxFleetSize {
		bad("on-demand base %d must be between 0 and %d", in.OnDemandBase, MaxFleetSize)
	}
	if in.SpotShare < 0 || in.SpotShare > 100 {
		bad("spot share %d must be a percentage between 0 and 100", in.SpotShare)
	}
	switch in.OnLost {
	case "", OnLostReplace, OnLostFail:
	default:
		bad("on-lost %q must be %q or %q", in.OnLost, OnLostReplace, OnLostFail)
	}
	errs = append(errs, checkIDs(in.SubnetIDs, maxSubnets, subnetIDRe, "subnet", "subnet-0123456789abcdef0")...)
	l := in.Launch
	if l.ImageID != "" {
		bad("launch.image_id is not used: set the fleet's image_id")
	}
	errs = append(errs, checkIDs(l.SecurityGroupIDs, maxSecurityGroups, securityGroupRe, "security group", "sg-0123456789abcdef0")...)
	if l.KeyName != "" && (len(l.KeyName) > 255 || strings.IndexFunc(l.KeyName, func(r rune) bool { return r > unicode.MaxASCII || !unicode.IsPrint(r) }) >= 0) {
		bad("key name %q must be 1-255 printable ASCII characters", l.KeyName)
	}
	if len(l.UserData) > MaxUserData {
		bad("user data is %d bytes: at most %d are allowed", len(l.UserData), MaxUserData)
	}
	if p := l.IAMInstanceProfile; p != "" {
		if strings.HasPrefix(p, "arn:") && !profileARNRe.MatchString(p) || !strings.HasPrefix(p, "arn:") && !profileNameRe.MatchString(p) {
			bad("IAM instance profile %q is neither an instance profile ARN nor a name", p)
		}
	}
	t := l.LaunchTemplate
	switch {
	case t.ID != "" && t.Name != "":
		bad("launch template: give its id or its name, not both")
	case t.ID != "" && !templateIDRe.MatchString(t.ID):
		bad("launch template id %q is not a launch template id (e.g. lt-0123456789abcdef0)", t.ID)
	case t.Name != "" && !templateNameRe.MatchString(t.Name):
		bad("launch template name %q must be 3-128 letters, digits or ().-/_", t.Name)
	case t.IsZero() && t.Version != "":
		bad("launch template version %q without a template", t.Version)
	}
	if n, err := strconv.Atoi(t.Version); !slices.Contains(templateVersions, t.Version) && (err != nil || n < 1) {
		bad("launch template version %q must be a number, $Latest or $Default", t.Version)
	}
	return errs
}

// checkIDs checks a list of EC2 resource ids of one kind: at most most of
// them, each of the form re matches, none twice.
func checkIDs(ids []string, most int, re *regexp.Regexp, kind, example string) []error {
	var errs []error
	if len(ids) > most {
		errs = append(errs, fmt.Errorf("%d %ss: at most %d are allowed", len(ids), kind, most))
	}
	for i, id := range ids {
		switch {
		case !re.MatchString(id):
			errs = append(errs, fmt.Errorf("%s id %q is not a %s id (e.g. %s)", kind, id, kind, example))
		case slices.Contains(ids[:i], id):
			errs = append(errs, fmt.Errorf("%s id %q is listed twice", kind, id))
		}
	}
	return errs
}

// ParseOffering parses the CLI's TYPE[:WEIGHT] (e.g. m5.large:2).
func ParseOffering(s string) (Offering, error) {
	typ, w, hasWeight := strings.Cut(strings.TrimSpace(s), ":")
	o := Offering{InstanceType: typ}
	if !instanceTypeRe.MatchString(typ) {
		return o, fmt.Errorf("instance type %q is not of the form family.size[:weight] (e.g. m5.large or m5.xlarge:2)", s)
	}
	if hasWeight {
		n, err := strconv.Atoi(w)
		if err != nil || n < 1 || n > maxWeight {
			return o, fmt.Errorf("weight %q of %s must be a whole number from 1 to %d", w, typ, maxWeight)
		}
		o.Weight = n
	}
	return o, nil
}
