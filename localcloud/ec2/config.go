package ec2

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Defaults applied by Open to a zero Config field.
const (
	DefaultRegion = "us-east-1"

	// EC2's resource throttle for RunInstances: every launched instance takes
	// a token; the bucket holds 1000 and refills 2 per second.
	DefaultResourceBucket = 1000
	DefaultResourceRefill = 2.0

	// EC2's request throttle for mutating actions (RunInstances,
	// TerminateInstances, the capacity reservation actions): 5 calls of
	// burst, 2 per second, per action.
	DefaultRequestBucket = 5
	DefaultRequestRefill = 2.0

	// EC2's request throttle for Describe actions, which AWS sizes far larger
	// than the mutating ones so that polling does not starve launches.
	DefaultDescribeBucket = 100
	DefaultDescribeRefill = 20.0

	// DefaultTerminatedRetention is how long a terminated instance stays
	// visible to DescribeInstances, as on EC2 (about an hour).
	DefaultTerminatedRetention = time.Hour
)

// defaultZoneSuffixes name the zones used when Config.Zones is empty, after
// the region: a Config with Region "eu-west-1" gets eu-west-1a..c.
var defaultZoneSuffixes = []string{"a", "b", "c"}

// DefaultPools is the capacity a cloud offers when Config.Pools is empty: a
// few common types with generous regional capacity.
func DefaultPools() []Pool {
	return []Pool{
		{InstanceType: "t3.micro", Initial: 10000, RatePerSec: 50},
		{InstanceType: "t3.medium", Initial: 5000, RatePerSec: 20},
		{InstanceType: "m5.large", Initial: 5000, RatePerSec: 20},
		{InstanceType: "c5.xlarge", Initial: 2000, RatePerSec: 10},
	}
}

// Pool is a capacity pool: Initial free instances of InstanceType when the
// pool is first created, plus RatePerSec new ones arriving every second.
type Pool struct {
	InstanceType string
	// Zone holds the pool; empty makes a regional pool that launches and
	// reservations in any zone can draw from.
	Zone       string
	Initial    int
	RatePerSec float64
}

// Config configures a Cloud. The zero value is usable: an in-memory cloud in
// us-east-1 with DefaultPools and EC2's default throttles.
type Config struct {
	// DBPath is the SQLite file that holds all state; empty keeps the state
	// in memory, for tests.
	DBPath string
	// Region defaults to DefaultRegion.
	Region string
	// Zones defaults to the region's a, b and c zones.
	Zones []string
	// Pools defaults to DefaultPools. Several pools for the same type and
	// zone add up. A pool's Initial is applied once, when the pool first
	// appears in the database; a later Open with a different Initial adjusts
	// the free count by the difference, so restarts never double capacity.
	Pools []Pool
	// BootDelay is how long an instance stays pending before it is running;
	// zero means running at once.
	BootDelay time.Duration

	// ResourceBucket and ResourceRefill are EC2's resource throttle for
	// RunInstances, counted in instances. Zero means the default; a negative
	// bucket disables the throttle.
	ResourceBucket int
	ResourceRefill float64
	// RequestBucket and RequestRefill are the request throttle of each
	// mutating action, counted in calls; every action has its own bucket, as
	// on AWS. Zero means the default; a negative bucket disables it.
	RequestBucket int
	RequestRefill float64
	// DescribeBucket and DescribeRefill are the request throttle of each
	// Describe action. Zero means the default; a negative bucket disables it.
	DescribeBucket int
	DescribeRefill float64

	// TerminatedRetention is how long terminated instances stay visible;
	// zero means DefaultTerminatedRetention, negative means forever. Older
	// ones are purged.
	TerminatedRetention time.Duration

	// Now replaces time.Now, for tests.
	Now func() time.Time
}

func (c Config) withDefaults() Config {
	if c.Region == "" {
		c.Region = DefaultRegion
	}
	if len(c.Zones) == 0 {
		for _, s := range defaultZoneSuffixes {
			c.Zones = append(c.Zones, c.Region+s)
		}
	}
	if len(c.Pools) == 0 {
		c.Pools = DefaultPools()
	}
	if c.ResourceBucket == 0 {
		c.ResourceBucket = DefaultResourceBucket
	}
	if c.ResourceRefill == 0 {
		c.ResourceRefill = DefaultResourceRefill
	}
	if c.RequestBucket == 0 {
		c.RequestBucket = DefaultRequestBucket
	}
	if c.RequestRefill == 0 {
		c.RequestRefill = DefaultRequestRefill
	}
	if c.DescribeBucket == 0 {
		c.DescribeBucket = DefaultDescribeBucket
	}
	if c.DescribeRefill == 0 {
		c.DescribeRefill = DefaultDescribeRefill
	}
	if c.TerminatedRetention == 0 {
		c.TerminatedRetention = DefaultTerminatedRetention
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

func (c Config) validate() error {
	zones := map[string]bool{}
	for _, z := range c.Zones {
		if z == "" {
			return fmt.Errorf("empty zone name")
		}
		zones[z] = true
	}
	for _, p := range c.Pools {
		if p.InstanceType == "" {
			return fmt.Errorf("pool without instance type")
		}
		if p.Zone != "" && !zones[p.Zone] {
			return fmt.Errorf("pool %s: zone %q is not one of %v", p.InstanceType, p.Zone, c.Zones)
		}
		if p.Initial < 0 || p.RatePerSec < 0 || math.IsNaN(p.RatePerSec) || math.IsInf(p.RatePerSec, 0) {
			return fmt.Errorf("pool %s: initial count and rate must not be negative", p.InstanceType)
		}
	}
	if c.BootDelay < 0 {
		return fmt.Errorf("negative boot delay %s", c.BootDelay)
	}
	return nil
}

// zonePool is one row of the pools table: the capacity of one type in one
// zone, as derived from the configured pools.
type zonePool struct {
	instanceType, zone string
	initial            int
	rate               float64
}

// zonePools sums the configured pools by type and zone; zone "" is the
// type's regional pool.
func (c Config) zonePools() []zonePool {
	type key struct{ t, z string }
	idx := map[key]int{}
	var out []zonePool
	add := func(t, z string, n int, r float64) {
		k := key{t, z}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, zonePool{instanceType: t, zone: z})
		}
		out[i].initial += n
		out[i].rate += r
	}
	for _, p := range c.Pools {
		add(p.InstanceType, p.Zone, p.Initial, p.RatePerSec)
	}
	return out
}

// ParseCapacity parses the --cloud-capacity flag syntax TYPE=COUNT[+RATE/s],
// for example "m5.large=500+10/s": 500 m5.large now and 10 more every
// second, in a regional pool that every zone draws from.
func ParseCapacity(s string) (Pool, error) {
	bad := func(why string) (Pool, error) {
		return Pool{}, fmt.Errorf("invalid capacity %q: %s; want TYPE=COUNT[+RATE/s], e.g. m5.large=500+10/s", s, why)
	}
	typ, rest, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return bad("missing '='")
	}
	typ = strings.TrimSpace(typ)
	if !validInstanceType(typ) {
		return bad(fmt.Sprintf("bad instance type %q", typ))
	}
	count, rate, hasRate := strings.Cut(rest, "+")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 0 {
		return bad(fmt.Sprintf("count %q is not a non-negative integer", count))
	}
	p := Pool{InstanceType: typ, Initial: n}
	if hasRate {
		num, ok := strings.CutSuffix(strings.TrimSpace(rate), "/s")
		if !ok {
			return bad(fmt.Sprintf("rate %q must end in /s", rate))
		}
		r, err := strconv.ParseFloat(num, 64)
		if err != nil || r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return bad(fmt.Sprintf("rate %q is not a non-negative number", num))
		}
		p.RatePerSec = r
	}
	return p, nil
}

// validInstanceType accepts EC2-shaped names: family.size, such as
// m5.large or u-6tb1.metal.
func validInstanceType(s string) bool {
	fam, size, ok := strings.Cut(s, ".")
	if !ok || fam == "" || size == "" || strings.Contains(size, ".") {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-') {
			return false
		}
	}
	return true
}
