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
// few common types with generous regional on-demand capacity, and a fifth
// of that as regional spot capacity, all at the built-in prices
// (DefaultPrice).
func DefaultPools() []Pool {
	return []Pool{
		{InstanceType: "t3.micro", Initial: 10000, RatePerSec: 50},
		{InstanceType: "t3.medium", Initial: 5000, RatePerSec: 20},
		{InstanceType: "m5.large", Initial: 5000, RatePerSec: 20},
		{InstanceType: "c5.xlarge", Initial: 2000, RatePerSec: 10},
		{Market: MarketSpot, InstanceType: "t3.micro", Initial: 2000, RatePerSec: 10},
		{Market: MarketSpot, InstanceType: "t3.medium", Initial: 1000, RatePerSec: 4},
		{Market: MarketSpot, InstanceType: "m5.large", Initial: 1000, RatePerSec: 4},
		{Market: MarketSpot, InstanceType: "c5.xlarge", Initial: 400, RatePerSec: 2},
	}
}

// The purchase markets a pool can sell in. Spot and on-demand capacity
// are separate pools: a spot launch never takes on-demand capacity.
const (
	MarketOnDemand = "on-demand"
	MarketSpot     = "spot"
)

// Pool is a capacity pool: Initial free instances of InstanceType when the
// pool is first created, plus RatePerSec new ones arriving every second.
type Pool struct {
	// Market is MarketOnDemand (also when empty) or MarketSpot.
	Market       string
	InstanceType string
	// Zone holds the pool; empty makes a regional pool that launches and
	// reservations in any zone can draw from.
	Zone       string
	Initial    int
	RatePerSec float64
	// Price is the hourly price in USD of one instance from the pool; zero
	// means DefaultPrice of the type and market.
	Price float64
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

	// SpotReclaimPerMinute is how many running spot instances, across all
	// accounts, the cloud interrupts per minute on average, picked at
	// random (reclaim.go); zero disables reclaim.
	SpotReclaimPerMinute float64
	// SpotNoticePeriod is how long an interrupted spot instance keeps
	// running after its interruption warning; zero means
	// DefaultSpotNoticePeriod, EC2's two minutes.
	SpotNoticePeriod time.Duration
	// EventRetention is how long an event stays in an account's events
	// queue (EventsQueueName) unless deleted; zero means
	// DefaultEventRetention.
	EventRetention time.Duration
	// EventQueueLimit is the most events an account's queue holds; the
	// oldest go first. Zero means DefaultEventQueueLimit.
	EventQueueLimit int
	// QueueBucket and QueueRefill are the request throttle of each
	// account's queue calls, all actions together (sqslimits.go). Zero
	// means DefaultQueueBucket and DefaultQueueRefill; a negative bucket
	// disables it.
	QueueBucket int
	QueueRefill float64
	// QueueLongPolls is how many receives of an account may wait at once
	// in this process; more return at once. Zero means
	// DefaultQueueLongPolls; negative means no cap.
	QueueLongPolls int
	// PurgeCooldown is how long after an account's PurgeQueue another
	// fails with PurgeQueueInProgress. Zero means DefaultPurgeCooldown
	// (SQS's); negative allows any number.
	PurgeCooldown time.Duration

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
	if c.SpotNoticePeriod == 0 {
		c.SpotNoticePeriod = DefaultSpotNoticePeriod
	}
	if c.EventRetention == 0 {
		c.EventRetention = DefaultEventRetention
	}
	if c.EventQueueLimit == 0 {
		c.EventQueueLimit = DefaultEventQueueLimit
	}
	if c.QueueBucket == 0 {
		c.QueueBucket = DefaultQueueBucket
	}
	if c.QueueRefill == 0 {
		c.QueueRefill = DefaultQueueRefill
	}
	if c.QueueLongPolls == 0 {
		c.QueueLongPolls = DefaultQueueLongPolls
	}
	if c.PurgeCooldown == 0 {
		c.PurgeCooldown = DefaultPurgeCooldown
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
		if p.Market != "" && p.Market != MarketOnDemand && p.Market != MarketSpot {
			return fmt.Errorf("pool %s: market %q is neither %s nor %s", p.InstanceType, p.Market, MarketOnDemand, MarketSpot)
		}
		if p.Price < 0 || p.Price > maxPrice || math.IsNaN(p.Price) {
			return fmt.Errorf("pool %s: price %v is not between 0 and %v", p.InstanceType, p.Price, float64(maxPrice))
		}
	}
	if c.BootDelay < 0 {
		return fmt.Errorf("negative boot delay %s", c.BootDelay)
	}
	if c.SpotReclaimPerMinute < 0 || math.IsNaN(c.SpotReclaimPerMinute) || math.IsInf(c.SpotReclaimPerMinute, 0) {
		return fmt.Errorf("spot reclaim rate %v is not a non-negative number", c.SpotReclaimPerMinute)
	}
	if c.SpotNoticePeriod < 0 || c.EventRetention < 0 || c.EventQueueLimit < 0 {
		return fmt.Errorf("negative spot notice period, event retention or event queue limit")
	}
	if !(c.QueueRefill > 0) || math.IsInf(c.QueueRefill, 0) {
		return fmt.Errorf("queue refill %v is not a positive number", c.QueueRefill)
	}
	return nil
}

// zonePool is one row of the pools table: the capacity of one type in one
// zone and market, as derived from the configured pools. zone is the
// pool key (poolKey), which carries the market.
type zonePool struct {
	instanceType, zone string
	initial            int
	rate               float64
	price              float64 // 0: the default price
}

// zonePools sums the configured pools by market, type and zone; zone ""
// is the type's regional pool. Of several pools with a price for the same
// key, the last one's price holds.
func (c Config) zonePools() []zonePool {
	type key struct{ t, z string }
	idx := map[key]int{}
	var out []zonePool
	for _, p := range c.Pools {
		k := key{p.InstanceType, poolKey(p.Market, p.Zone)}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, zonePool{instanceType: k.t, zone: k.z})
		}
		out[i].initial += p.Initial
		out[i].rate += p.RatePerSec
		if p.Price > 0 {
			out[i].price = p.Price
		}
	}
	return out
}

// ParseCapacity parses the --cloud-capacity flag syntax
//
//	[spot:]TYPE[@ZONE]=COUNT[+RATE/s][,price=USD]
//
// for example "m5.large=500+10/s": 500 on-demand m5.large now and 10 more
// every second, in a regional pool that every zone draws from. A "spot:"
// prefix makes a spot pool instead, "@us-east-1a" a pool of that zone
// only, and ",price=0.03" sets the hourly price (else DefaultPrice), as in
// "spot:m5.large@us-east-1a=100+1/s,price=0.03". The zone must be one of
// the cloud's zones, which Open checks.
func ParseCapacity(s string) (Pool, error) {
	bad := func(why string) (Pool, error) {
		return Pool{}, fmt.Errorf("invalid capacity %q: %s; want [spot:]TYPE[@ZONE]=COUNT[+RATE/s][,price=USD], e.g. m5.large=500+10/s", s, why)
	}
	spec, priceSpec, hasPrice := strings.Cut(strings.TrimSpace(s), ",")
	typ, rest, ok := strings.Cut(spec, "=")
	if !ok {
		return bad("missing '='")
	}
	p := Pool{}
	typ = strings.TrimSpace(typ)
	if t, ok := strings.CutPrefix(typ, "spot:"); ok {
		p.Market, typ = MarketSpot, t
	} else if t, ok := strings.CutPrefix(typ, "on-demand:"); ok {
		typ = t
	}
	if t, zone, ok := strings.Cut(typ, "@"); ok {
		if zone == "" {
			return bad("empty zone after '@'")
		}
		typ, p.Zone = t, zone
	}
	if !validInstanceType(typ) {
		return bad(fmt.Sprintf("bad instance type %q", typ))
	}
	p.InstanceType = typ
	count, rate, hasRate := strings.Cut(rest, "+")
	n, err := strconv.Atoi(strings.TrimSpace(count))
	if err != nil || n < 0 {
		return bad(fmt.Sprintf("count %q is not a non-negative integer", count))
	}
	p.Initial = n
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
	if hasPrice {
		v, ok := strings.CutPrefix(strings.TrimSpace(priceSpec), "price=")
		if !ok {
			return bad(fmt.Sprintf("%q is not price=USD", priceSpec))
		}
		pr, err := strconv.ParseFloat(v, 64)
		if err != nil || !(pr > 0) || pr > maxPrice {
			return bad(fmt.Sprintf("price %q is not a positive number up to %v", v, float64(maxPrice)))
		}
		p.Price = pr
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
