package ec2

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
)

// Markets and prices.
//
// A pool sells in one market. The pools table keys a pool by instance type
// and pool key, where the pool key is the zone ("" for regional) for an
// on-demand pool and "spot:" + zone for a spot pool. Instances record the
// pool key they drew from (instances.pool_zone), so returning capacity to
// "its pool" needs no knowledge of markets, and their market in
// instances.lifecycle ('on-demand' or 'spot').

// spotKeyPrefix marks a spot pool's key.
const spotKeyPrefix = "spot:"

// maxPrice bounds any price, configured or requested, in USD per hour.
const maxPrice = 10000

// poolKey is the pools table's zone column for a pool of market in zone.
func poolKey(market, zone string) string {
	if market == MarketSpot {
		return spotKeyPrefix + zone
	}
	return zone
}

// splitPoolKey undoes poolKey.
func splitPoolKey(key string) (market, zone string) {
	if z, ok := strings.CutPrefix(key, spotKeyPrefix); ok {
		return MarketSpot, z
	}
	return MarketOnDemand, key
}

// onDemandPrices are the built-in hourly prices (USD, Linux, us-east-1).
var onDemandPrices = map[string]float64{
	"t3.micro":  0.0104,
	"t3.medium": 0.0416,
	"m5.large":  0.096,
	"c5.xlarge": 0.17,
}

// DefaultPrice is the hourly price of a pool configured without one: the
// built-in on-demand price of the type (0.10 for a type the table does
// not know), and 30% of that for spot.
func DefaultPrice(market, instanceType string) float64 {
	p, ok := onDemandPrices[instanceType]
	if !ok {
		p = 0.10
	}
	if market == MarketSpot {
		p = math.Round(p*0.3*1e4) / 1e4
	}
	return p
}

// poolPrice is the effective hourly price of the pool of instanceType
// under key.
func poolPrice(ctx context.Context, tx *sql.Tx, instanceType, key string) (float64, error) {
	var p float64
	err := tx.QueryRowContext(ctx, `SELECT price FROM pools WHERE instance_type = ? AND zone = ?`, instanceType, key).Scan(&p)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("reading price of %s in %s, %w", instanceType, key, err)
	}
	if p <= 0 {
		market, _ := splitPoolKey(key)
		p = DefaultPrice(market, instanceType)
	}
	return p, nil
}

// marketSource accrues the pools of market that can serve instanceType in
// zone (any zone when empty) and returns the one with the most free
// capacity, as bestSource does. With maxPrice > 0 a pool whose price is
// higher is not a candidate; when every existing pool is, the answer is
// SpotMaxPriceTooLow, EC2's error for a max price under the spot price.
// A market without any pool of the type gives a source with nothing free.
func (c *Cloud) marketSource(ctx context.Context, tx *sql.Tx, market, instanceType, zone string, maxPrice float64, now int64) (source, error) {
	candidates := c.cfg.Zones
	if zone != "" {
		candidates = []string{zone}
	}
	best := source{zone: zone, free: -1}
	existing, cheapest := 0, math.Inf(1)
	consider := func(z, key string) error {
		free, ok, err := accrue(ctx, tx, instanceType, key, now)
		if err != nil || !ok {
			return err
		}
		price, err := poolPrice(ctx, tx, instanceType, key)
		if err != nil {
			return err
		}
		existing++
		cheapest = math.Min(cheapest, price)
		if maxPrice > 0 && price > maxPrice {
			return nil
		}
		if free > best.free {
			best = source{zone: z, poolZone: key, free: free, price: price}
		}
		return nil
	}
	for _, z := range candidates {
		if err := consider(z, poolKey(market, z)); err != nil {
			return source{}, err
		}
	}
	regional := best
	if err := consider(zone, poolKey(market, "")); err != nil {
		return source{}, err
	}
	if best != regional && zone == "" {
		// Spread regional launches over the zones, like EC2 placing
		// subnets: any zone is as good as another.
		best.zone = c.cfg.Zones[rand.IntN(len(c.cfg.Zones))]
	}
	if existing > 0 && best.free < 0 {
		return source{}, apiErrorf(codeSpotMaxPriceTooLow,
			"Your Spot request price of %s is lower than the minimum required Spot request fulfillment price of %s.",
			formatPrice(maxPrice), formatPrice(cheapest))
	}
	best.free = max(best.free, 0)
	if best.zone == "" {
		best.zone = c.cfg.Zones[0]
	}
	if best.poolZone == "" && existing == 0 {
		best.poolZone = poolKey(market, "")
	}
	return best, nil
}

// formatPrice writes a price as EC2 does, with up to six decimals.
func formatPrice(p float64) string {
	s := fmt.Sprintf("%.6f", p)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

// parsePrice reads a price parameter: a positive decimal up to maxPrice.
func parsePrice(name, v string) (float64, error) {
	p, err := strconv.ParseFloat(v, 64)
	if err != nil || !(p > 0) || p > maxPrice {
		return 0, apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for %s: expecting a positive price", v, name)
	}
	return p, nil
}
