package ec2

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gust-dev/gust/providers"
)

// Bounds of one DescribeOfferings or Subnets call.
const (
	maxOfferings = 1000
	maxSubnets   = 1000
	// maxInfoPages bounds the pages one spot price or score query reads.
	maxInfoPages = 20
)

// DescribeOfferings prices and scores offerings.
//
// Spot prices are DescribeSpotPriceHistory's latest Linux/UNIX price per
// instance type and zone; an offering without a zone gets the lowest of
// its type's zones. Spot scores are GetSpotPlacementScores' per-zone
// scores for a target of one instance of the type alone (EC2 scores a
// single type low; the scores rank zones, not types); an offering without
// a zone gets its type's best zone. On-demand prices come from a static
// table (prices.go) and on-demand offerings have no score: EC2 has
// neither. A cloud that does not offer the spot calls (UnsupportedOperation,
// InvalidAction), or that does not allow this account them
// (UnauthorizedOperation), leaves the spot values 0.
func (p *Provider) DescribeOfferings(ctx context.Context, offerings []providers.Offering) ([]providers.OfferingInfo, error) {
	if len(offerings) > maxOfferings {
		return nil, providers.NewInvalidError(fmt.Errorf("describing offerings, at most %d at once, got %d", maxOfferings, len(offerings)))
	}
	var spotTypes []string
	for _, o := range offerings {
		spot, err := isSpot(o.Market)
		if err != nil {
			return nil, fmt.Errorf("describing offerings, %w", err)
		}
		if spot && o.InstanceType != "" && !slices.Contains(spotTypes, o.InstanceType) {
			spotTypes = append(spotTypes, o.InstanceType)
		}
	}
	var prices map[string]map[string]float64
	var scores map[string]map[string]int
	if len(spotTypes) > 0 {
		var err error
		if prices, err = p.spotPrices(ctx, spotTypes); err != nil {
			return nil, err
		}
		if scores, err = p.spotScores(ctx, spotTypes); err != nil {
			return nil, err
		}
	}
	out := make([]providers.OfferingInfo, len(offerings))
	for i, o := range offerings {
		out[i].Offering = o
		if o.Market != providers.MarketSpot {
			out[i].Price = onDemandPrice(o.InstanceType)
			continue
		}
		if o.Zone != "" {
			out[i].Price, out[i].Score = prices[o.InstanceType][o.Zone], scores[o.InstanceType][o.Zone]
			continue
		}
		for _, price := range prices[o.InstanceType] {
			if out[i].Price == 0 || price < out[i].Price {
				out[i].Price = price
			}
		}
		for _, score := range scores[o.InstanceType] {
			out[i].Score = max(out[i].Score, score)
		}
	}
	return out, nil
}

// unanswerable reports whether err says the cloud will not answer a spot
// information call at all, so its values are unknown rather than failed.
func unanswerable(err error) bool {
	switch errorCode(err) {
	case "UnsupportedOperation", "InvalidAction", "UnauthorizedOperation":
		return true
	}
	return false
}

// spotPrices returns the latest spot price per instance type and zone, or
// nil if the cloud does not answer.
func (p *Provider) spotPrices(ctx context.Context, instanceTypes []string) (map[string]map[string]float64, error) {
	req := &awsec2.DescribeSpotPriceHistoryInput{
		ProductDescriptions: []string{"Linux/UNIX"},
		// A start time of now asks for the price in force now.
		StartTime: aws.Time(time.Now()),
	}
	for _, t := range instanceTypes {
		req.InstanceTypes = append(req.InstanceTypes, types.InstanceType(t))
	}
	prices := map[string]map[string]float64{}
	at := map[[2]string]time.Time{}
	pages := awsec2.NewDescribeSpotPriceHistoryPaginator(p.api, req)
	for n := 0; pages.HasMorePages() && n < maxInfoPages; n++ {
		page, err := pages.NextPage(ctx)
		if unanswerable(err) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("describing spot prices, %w", translate(err))
		}
		for _, sp := range page.SpotPriceHistory {
			t, zone := string(sp.InstanceType), aws.ToString(sp.AvailabilityZone)
			price, err := strconv.ParseFloat(aws.ToString(sp.SpotPrice), 64)
			if err != nil || price < 0 || zone == "" {
				continue
			}
			key, when := [2]string{t, zone}, aws.ToTime(sp.Timestamp)
			if prev, ok := at[key]; ok && !when.After(prev) {
				continue
			}
			at[key] = when
			if prices[t] == nil {
				prices[t] = map[string]float64{}
			}
			prices[t][zone] = price
		}
	}
	return prices, nil
}

// spotScores returns each instance type's spot placement score per zone
// of the provider's region, or nil if the cloud does not answer. EC2
// names the zones by id; DescribeAvailabilityZones gives their names.
func (p *Provider) spotScores(ctx context.Context, instanceTypes []string) (map[string]map[string]int, error) {
	var zoneNames map[string]string
	scores := map[string]map[string]int{}
	for _, t := range instanceTypes {
		req := &awsec2.GetSpotPlacementScoresInput{
			InstanceTypes:          []string{t},
			TargetCapacity:         aws.Int32(1),
			SingleAvailabilityZone: aws.Bool(true),
		}
		if p.region != "" {
			req.RegionNames = []string{p.region}
		}
		pages := awsec2.NewGetSpotPlacementScoresPaginator(p.api, req)
		for n := 0; pages.HasMorePages() && n < maxInfoPages; n++ {
			page, err := pages.NextPage(ctx)
			if unanswerable(err) {
				return nil, nil
			}
			if err != nil {
				return nil, fmt.Errorf("getting spot placement scores of %s, %w", t, translate(err))
			}
			for _, s := range page.SpotPlacementScores {
				if p.region != "" && aws.ToString(s.Region) != "" && aws.ToString(s.Region) != p.region {
					continue
				}
				if zoneNames == nil {
					if zoneNames, err = p.zoneNames(ctx); err != nil {
						return nil, err
					}
				}
				zone, ok := zoneNames[aws.ToString(s.AvailabilityZoneId)]
				if !ok {
					continue
				}
				if scores[t] == nil {
					scores[t] = map[string]int{}
				}
				scores[t][zone] = int(min(max(aws.ToInt32(s.Score), 0), 10))
			}
		}
	}
	return scores, nil
}

// zoneNames maps the region's zone ids to zone names.
func (p *Provider) zoneNames(ctx context.Context) (map[string]string, error) {
	out, err := p.api.DescribeAvailabilityZones(ctx, &awsec2.DescribeAvailabilityZonesInput{})
	if err != nil {
		return nil, fmt.Errorf("describing zones, %w", translate(err))
	}
	names := make(map[string]string, len(out.AvailabilityZones))
	for _, z := range out.AvailabilityZones {
		names[aws.ToString(z.ZoneId)] = aws.ToString(z.ZoneName)
	}
	return names, nil
}

// Subnets resolves subnet ids to their zones with DescribeSubnets. An id
// EC2 does not know fails the call with NotFoundError (EC2's
// InvalidSubnetID.NotFound, or a subnet missing from its answer).
func (p *Provider) Subnets(ctx context.Context, ids []string) ([]providers.Subnet, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	if len(ids) > maxSubnets {
		return nil, providers.NewInvalidError(fmt.Errorf("describing subnets, at most %d at once, got %d", maxSubnets, len(ids)))
	}
	var unique []string
	for _, id := range ids {
		if !slices.Contains(unique, id) {
			unique = append(unique, id)
		}
	}
	zones := map[string]string{}
	for start := 0; start < len(unique); start += maxFilterValues {
		batch := unique[start:min(start+maxFilterValues, len(unique))]
		out, err := p.api.DescribeSubnets(ctx, &awsec2.DescribeSubnetsInput{SubnetIds: batch})
		if err != nil {
			return nil, fmt.Errorf("describing subnets, %w", translate(err))
		}
		for _, s := range out.Subnets {
			zones[aws.ToString(s.SubnetId)] = aws.ToString(s.AvailabilityZone)
		}
	}
	list := make([]providers.Subnet, 0, len(ids))
	for _, id := range ids {
		zone, ok := zones[id]
		if !ok {
			return nil, providers.NewNotFoundError(fmt.Errorf("describing subnets, subnet %s does not exist", id))
		}
		list = append(list, providers.Subnet{ID: id, Zone: zone})
	}
	return list, nil
}
