package ec2

import (
	"cmp"
	"context"
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/gust-dev/gust/providers"
)

// Limits of one CreateFleet call that gust enforces before calling.
const (
	// maxFleetOverrides bounds the overrides of one launch; EC2 Fleet's
	// own quota on launch specifications per fleet is of this order.
	maxFleetOverrides = 300
	// maxMinTargetCapacity is EC2's most for MinTargetCapacity.
	maxMinTargetCapacity = 1000
)

// LaunchFleet launches with CreateFleet of type instant: one launch
// template configuration (Params.LaunchTemplate) whose overrides are
// in.Overrides, and a target capacity of in.TotalUnits in in.Market.
//
// Params other than the template go where CreateFleet takes them: the
// image, key and instance profile in every override, the user data in the
// template specification. CreateFleet has no security groups of its own,
// so Params.SecurityGroupIDs is an InvalidError here: put them in the
// template, or launch with Run.
//
// MinUnits becomes EC2's MinTargetCapacity, which EC2 honours only with
// SingleInstanceType or SingleAvailabilityZone and up to 1000. LaunchFleet
// sets the one that the overrides already satisfy (they all name one
// instance type, or all one zone), which changes nothing else. When
// neither holds, or MinUnits is above 1000, it cannot be asked of EC2
// without restricting the fleet, and the launch goes without
// MinTargetCapacity: MinUnits is then not all-or-nothing, and the caller
// must check the units it got.
func (p *Provider) LaunchFleet(ctx context.Context, in providers.FleetLaunchInput) (providers.FleetLaunchResult, error) {
	req, err := p.fleetRequest(in)
	if err != nil {
		return providers.FleetLaunchResult{}, fmt.Errorf("launching fleet, %w", err)
	}
	out, err := p.api.CreateFleet(ctx, req)
	if err != nil {
		return providers.FleetLaunchResult{}, fmt.Errorf("launching fleet, %w", translate(err))
	}
	market := providers.MarketOnDemand
	if in.Market == providers.MarketSpot {
		market = providers.MarketSpot
	}
	var res providers.FleetLaunchResult
	for _, got := range out.Instances {
		i := matchOverride(in.Overrides, string(got.InstanceType), aws.ToString(got.AvailabilityZone), aws.ToString(got.SubnetId), got.LaunchTemplateAndOverrides)
		zone := aws.ToString(got.AvailabilityZone)
		if zone == "" && got.LaunchTemplateAndOverrides != nil && got.LaunchTemplateAndOverrides.Overrides != nil {
			zone = aws.ToString(got.LaunchTemplateAndOverrides.Overrides.AvailabilityZone)
		}
		if zone == "" && i >= 0 {
			zone = in.Overrides[i].Zone
		}
		instanceType := string(got.InstanceType)
		if instanceType == "" && i >= 0 {
			instanceType = in.Overrides[i].InstanceType
		}
		for _, id := range got.InstanceIds {
			res.Instances = append(res.Instances, providers.FleetLaunched{Override: i, Instance: providers.Instance{
				ID: id, InstanceType: instanceType, Zone: zone, State: providers.StatePending,
				Tags: maps.Clone(in.Tags), Market: market,
			}})
		}
	}
	for _, e := range out.Errors {
		code := aws.ToString(e.ErrorCode)
		var typ, instanceType string
		if e.LaunchTemplateAndOverrides != nil && e.LaunchTemplateAndOverrides.Overrides != nil {
			instanceType = string(e.LaunchTemplateAndOverrides.Overrides.InstanceType)
		}
		typ = errorType(code)
		res.Errors = append(res.Errors, providers.FleetLaunchError{
			Override: matchOverride(in.Overrides, instanceType, "", "", e.LaunchTemplateAndOverrides),
			Code:     code, Message: aws.ToString(e.ErrorMessage), Type: typ,
		})
	}
	return res, nil
}

// fleetRequest validates in and builds its CreateFleet request.
func (p *Provider) fleetRequest(in providers.FleetLaunchInput) (*awsec2.CreateFleetInput, error) {
	lt := in.Params.LaunchTemplate
	switch {
	case lt.IsZero():
		return nil, providers.NewInvalidError(fmt.Errorf("CreateFleet needs a launch template"))
	case len(in.Params.SecurityGroupIDs) > 0:
		return nil, providers.NewInvalidError(fmt.Errorf("CreateFleet takes no security groups: name them in the launch template"))
	case len(in.Overrides) == 0 || len(in.Overrides) > maxFleetOverrides:
		return nil, providers.NewInvalidError(fmt.Errorf("need 1 to %d overrides, got %d", maxFleetOverrides, len(in.Overrides)))
	case in.TotalUnits < 1 || in.MinUnits < 0 || in.MinUnits > in.TotalUnits:
		return nil, providers.NewInvalidError(fmt.Errorf("need 0 <= MinUnits <= TotalUnits and TotalUnits >= 1, got %d and %d", in.MinUnits, in.TotalUnits))
	}
	spot, err := isSpot(in.Market)
	if err != nil {
		return nil, err
	}
	spec := &types.FleetLaunchTemplateSpecificationRequest{
		LaunchTemplateId:   optString(lt.ID),
		LaunchTemplateName: optString(lt.Name),
		// EC2 requires a version here, unlike RunInstances.
		Version: aws.String(cmp.Or(lt.Version, "$Default")),
	}
	if len(in.Params.UserData) > 0 {
		spec.LaunchTemplateSpecificationUserData = aws.String(base64.StdEncoding.EncodeToString(in.Params.UserData))
	}
	overrides := make([]types.FleetLaunchTemplateOverridesRequest, 0, len(in.Overrides))
	for i, o := range in.Overrides {
		if o.InstanceType == "" || o.Weight < 1 || o.Priority < 0 {
			return nil, providers.NewInvalidError(fmt.Errorf("override %d needs an instance type, a weight >= 1 and a priority >= 0, got %q, %d, %d",
				i, o.InstanceType, o.Weight, o.Priority))
		}
		ov := types.FleetLaunchTemplateOverridesRequest{
			InstanceType:     types.InstanceType(o.InstanceType),
			AvailabilityZone: optString(o.Zone),
			SubnetId:         optString(o.SubnetID),
			WeightedCapacity: aws.Float64(float64(o.Weight)),
			Priority:         aws.Float64(float64(o.Priority)),
			ImageId:          optString(in.Params.ImageID),
			KeyName:          optString(in.Params.KeyName),
		}
		if prof := in.Params.IAMInstanceProfile; prof != "" {
			ov.IamInstanceProfile = &types.FleetIamInstanceProfileSpecificationRequest{}
			if strings.HasPrefix(prof, "arn:") {
				ov.IamInstanceProfile.Arn = aws.String(prof)
			} else {
				ov.IamInstanceProfile.Name = aws.String(prof)
			}
		}
		overrides = append(overrides, ov)
	}
	req := &awsec2.CreateFleetInput{
		Type:                  types.FleetTypeInstant,
		LaunchTemplateConfigs: []types.FleetLaunchTemplateConfigRequest{{LaunchTemplateSpecification: spec, Overrides: overrides}},
		TargetCapacitySpecification: &types.TargetCapacitySpecificationRequest{
			TotalTargetCapacity: aws.Int32(int32(in.TotalUnits)),
		},
		ClientToken: optString(in.ClientToken),
	}
	if len(in.Tags) > 0 {
		req.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: ec2Tags(in.Tags)}}
	}
	minCap, singleType, singleZone := minTarget(in)
	if spot {
		req.TargetCapacitySpecification.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeSpot
		req.TargetCapacitySpecification.SpotTargetCapacity = aws.Int32(int32(in.TotalUnits))
		opts := &types.SpotOptionsRequest{MinTargetCapacity: minCap, SingleInstanceType: singleType, SingleAvailabilityZone: singleZone}
		if in.Strategy != "" {
			if !slices.Contains(types.SpotAllocationStrategy("").Values(), types.SpotAllocationStrategy(in.Strategy)) {
				return nil, providers.NewInvalidError(fmt.Errorf("unknown spot allocation strategy %q", in.Strategy))
			}
			opts.AllocationStrategy = types.SpotAllocationStrategy(in.Strategy)
		}
		req.SpotOptions = opts
	} else {
		req.TargetCapacitySpecification.DefaultTargetCapacityType = types.DefaultTargetCapacityTypeOnDemand
		req.TargetCapacitySpecification.OnDemandTargetCapacity = aws.Int32(int32(in.TotalUnits))
		opts := &types.OnDemandOptionsRequest{MinTargetCapacity: minCap, SingleInstanceType: singleType, SingleAvailabilityZone: singleZone}
		if in.Strategy != "" {
			if !slices.Contains(types.FleetOnDemandAllocationStrategy("").Values(), types.FleetOnDemandAllocationStrategy(in.Strategy)) {
				return nil, providers.NewInvalidError(fmt.Errorf("unknown on-demand allocation strategy %q", in.Strategy))
			}
			opts.AllocationStrategy = types.FleetOnDemandAllocationStrategy(in.Strategy)
		}
		req.OnDemandOptions = opts
	}
	return req, nil
}

// minTarget is the MinTargetCapacity of in and the Single* flag EC2
// requires with it: SingleInstanceType when the overrides name one type,
// else SingleAvailabilityZone when they name one zone. It is nil for no
// MinUnits, and when EC2 could not honour it without restricting the
// fleet (see LaunchFleet).
func minTarget(in providers.FleetLaunchInput) (minCap *int32, singleType, singleZone *bool) {
	if in.MinUnits < 1 || in.MinUnits > maxMinTargetCapacity {
		return nil, nil, nil
	}
	oneType, oneZone := true, true
	for _, o := range in.Overrides {
		oneType = oneType && o.InstanceType == in.Overrides[0].InstanceType
		// A subnet implies its zone, but only the zone says which: an
		// override without one counts as another zone.
		oneZone = oneZone && o.Zone != "" && o.Zone == in.Overrides[0].Zone
	}
	switch {
	case oneType:
		return aws.Int32(int32(in.MinUnits)), aws.Bool(true), nil
	case oneZone:
		return aws.Int32(int32(in.MinUnits)), nil, aws.Bool(true)
	}
	return nil, nil, nil
}

// matchOverride finds the override of overrides that EC2's answer names:
// the first with the same instance type whose zone and subnet, where both
// sides name one, agree. It returns -1 when none does.
func matchOverride(overrides []providers.FleetLaunchOverride, instanceType, zone, subnet string, lto *types.LaunchTemplateAndOverridesResponse) int {
	if lto != nil && lto.Overrides != nil {
		o := lto.Overrides
		if t := string(o.InstanceType); t != "" {
			instanceType = t
		}
		if z := aws.ToString(o.AvailabilityZone); z != "" {
			zone = z
		}
		if s := aws.ToString(o.SubnetId); s != "" {
			subnet = s
		}
	}
	for i, o := range overrides {
		if o.InstanceType == instanceType &&
			(o.Zone == "" || zone == "" || o.Zone == zone) &&
			(o.SubnetID == "" || subnet == "" || o.SubnetID == subnet) {
			return i
		}
	}
	return -1
}
