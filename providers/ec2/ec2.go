// Package ec2 implements providers.Compute on Amazon EC2 with
// aws-sdk-go-v2. The same code serves AWS, LocalStack and gust's local
// cloud: only the endpoint differs.
//
// AWS error codes become the providers package's typed errors here and
// nowhere else.
package ec2

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	awsec2 "github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/gust-dev/gust/providers"
	"github.com/gust-dev/gust/providers/awsconfig"
)

// EC2API is the part of the EC2 client the provider uses, so tests can
// substitute a fake.
type EC2API interface {
	RunInstances(ctx context.Context, in *awsec2.RunInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.RunInstancesOutput, error)
	DescribeInstances(ctx context.Context, in *awsec2.DescribeInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeInstancesOutput, error)
	TerminateInstances(ctx context.Context, in *awsec2.TerminateInstancesInput, opts ...func(*awsec2.Options)) (*awsec2.TerminateInstancesOutput, error)
	CreateCapacityReservation(ctx context.Context, in *awsec2.CreateCapacityReservationInput, opts ...func(*awsec2.Options)) (*awsec2.CreateCapacityReservationOutput, error)
	DescribeCapacityReservations(ctx context.Context, in *awsec2.DescribeCapacityReservationsInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeCapacityReservationsOutput, error)
	CancelCapacityReservation(ctx context.Context, in *awsec2.CancelCapacityReservationInput, opts ...func(*awsec2.Options)) (*awsec2.CancelCapacityReservationOutput, error)
	DescribeInstanceTypeOfferings(ctx context.Context, in *awsec2.DescribeInstanceTypeOfferingsInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeInstanceTypeOfferingsOutput, error)
	CreateFleet(ctx context.Context, in *awsec2.CreateFleetInput, opts ...func(*awsec2.Options)) (*awsec2.CreateFleetOutput, error)
	DescribeSpotPriceHistory(ctx context.Context, in *awsec2.DescribeSpotPriceHistoryInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeSpotPriceHistoryOutput, error)
	GetSpotPlacementScores(ctx context.Context, in *awsec2.GetSpotPlacementScoresInput, opts ...func(*awsec2.Options)) (*awsec2.GetSpotPlacementScoresOutput, error)
	DescribeAvailabilityZones(ctx context.Context, in *awsec2.DescribeAvailabilityZonesInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeAvailabilityZonesOutput, error)
	DescribeSubnets(ctx context.Context, in *awsec2.DescribeSubnetsInput, opts ...func(*awsec2.Options)) (*awsec2.DescribeSubnetsOutput, error)
}

var _ EC2API = (*awsec2.Client)(nil)

var _ providers.Compute = (*Provider)(nil)

// ReserveTokenTagKey tags every capacity reservation Reserve creates with
// its ClientToken. EC2 tokens are per request, and Reserve may try several
// zones, so a retried Reserve finds an earlier success by this tag instead
// of reserving a second time in another zone.
const ReserveTokenTagKey = "gust:client-token"

// SpotInterruptionCode is the state reason EC2 gives a spot instance
// under an interruption notice, and after it reclaimed it.
const SpotInterruptionCode = "Server.SpotInstanceTermination"

// Limits EC2 puts on one call.
const (
	maxFilterValues     = 200
	maxTerminatePerCall = 1000
)

// Provider is providers.Compute on EC2.
type Provider struct {
	api EC2API
	// defaultImage is the image of a Run that names none (Options.DefaultImageID).
	defaultImage string
	// region is the client's region, which GetSpotPlacementScores must be
	// told; "" when api is not an SDK client (tests).
	region string
}

// New returns a Provider that calls api.
func New(api EC2API) *Provider {
	p := &Provider{api: api}
	if c, ok := api.(*awsec2.Client); ok {
		p.region = c.Options().Region
	}
	return p
}

// LocalCloudImageID is the image gust's local cloud advertises; workers
// that talk to it launch it when a fleet names no image.
const LocalCloudImageID = "ami-0000000000000000a"

// Options selects the EC2 endpoint and identity. Empty fields use the
// standard AWS configuration chain (environment, shared config and
// credentials files, instance role).
type Options struct {
	// Endpoint overrides the EC2 endpoint, e.g. http://127.0.0.1:4566 for
	// gust's local cloud or LocalStack. STS is called there too.
	Endpoint string
	Region   string
	Profile  string
	// Credentials, when set, replace the chain's credentials.
	Credentials aws.CredentialsProvider
	// Roles returns the role NewAccountsFromConfig assumes to act in a
	// tenant's account (see awsconfig.Tenants). The default tenant without
	// a role is the configuration's own account, as before tenants existed.
	Roles func(tenant string) (roleARN string, ok bool)
	// DefaultImageID is launched when a Run names no image. Empty sends
	// no ImageId, which EC2 refuses (MissingParameter, an InvalidError):
	// on AWS a fleet must name its image.
	DefaultImageID string
}

// loadConfig runs the configuration chain with gust's EC2 retryer.
func loadConfig(ctx context.Context, o Options) (aws.Config, error) {
	cfg, err := awsconfig.Load(ctx, awsconfig.Options{Endpoint: o.Endpoint, Region: o.Region, Profile: o.Profile, Credentials: o.Credentials},
		config.WithRetryer(newRetryer))
	if err != nil {
		return aws.Config{}, err
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no aws region configured: set --region, AWS_REGION or a profile's region")
	}
	return cfg, nil
}

// newClient is the EC2 client of cfg, at endpoint when set.
func newClient(cfg aws.Config, endpoint string) *awsec2.Client {
	return awsec2.NewFromConfig(cfg, func(eo *awsec2.Options) {
		if endpoint != "" {
			eo.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// NewFromConfig builds a Provider that acts with the configuration's own
// credentials, in one account.
func NewFromConfig(ctx context.Context, o Options) (*Provider, error) {
	cfg, err := loadConfig(ctx, o)
	if err != nil {
		return nil, err
	}
	p := New(newClient(cfg, o.Endpoint))
	p.defaultImage = o.DefaultImageID
	return p, nil
}

// sdkMustNotRetry reports whether the SDK must not retry an EC2 error
// code: every code translate makes a ThrottledError or an
// InsufficientCapacityError, which the SDK would otherwise retry
// (throttling codes, and capacity codes that EC2 answers with a 5xx).
// Throttling and missing capacity are retried by the Temporal activity's
// retry policy instead: durably, with a backoff that survives a worker
// crash, and visibly in the workflow's history. Retrying them inside the
// SDK as well would multiply attempts and hide the throttling from the
// fleet workflow, which backs off a throttled burst chunk on its own.
func sdkMustNotRetry(code string) bool {
	switch errorType(code) {
	case providers.ErrTypeThrottled, providers.ErrTypeInsufficientCapacity:
		return true
	}
	return false
}

// newRetryer keeps the SDK's retries of transport failures (a reset
// connection, a 5xx InternalError), which are safe because RunInstances and
// CreateCapacityReservation carry a ClientToken, but never retries
// throttling or capacity errors (see sdkMustNotRetry), and has no
// client-side retry quota that a burst of throttles could exhaust.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(so *retry.StandardOptions) {
		so.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
			var ae smithy.APIError
			if errors.As(err, &ae) && sdkMustNotRetry(ae.ErrorCode()) {
				return aws.FalseTernary
			}
			return aws.UnknownTernary
		})}, so.Retryables...)
		so.RateLimiter = ratelimit.None
	})
}

// errorType is the providers error type (providers.ErrType*) of an EC2
// error code, or "" for a code gust does not translate. It is the one
// table of EC2 codes: translate and sdkMustNotRetry both read it.
func errorType(code string) string {
	switch {
	case code == "InsufficientInstanceCapacity", strings.HasPrefix(code, "InsufficientCapacity"),
		code == "InsufficientHostCapacity", code == "InsufficientReservedInstanceCapacity",
		code == "ReservationCapacityExceeded":
		return providers.ErrTypeInsufficientCapacity
	case code == "RequestLimitExceeded", strings.HasPrefix(code, "Throttling"),
		code == "RequestThrottled", code == "EC2ThrottledException":
		return providers.ErrTypeThrottled
	case strings.HasSuffix(code, ".NotFound"):
		return providers.ErrTypeNotFound
	case code == "IdempotentParameterMismatch":
		return providers.ErrTypeIdempotencyMismatch
	case code == "InvalidParameterValue", code == "InvalidParameterCombination", code == "InvalidParameter",
		code == "MissingParameter", code == "Unsupported", code == "UnsupportedOperation",
		strings.HasSuffix(code, ".Malformed"):
		return providers.ErrTypeInvalid
	case code == "AccessDenied":
		// STS refused the tenant's role while the SDK renewed its
		// credentials mid-call: the tenant is gone.
		return providers.ErrTypeNotFound
	}
	return ""
}

// errorCode is err's EC2 error code, or "" for an error without one.
func errorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// translate maps an EC2 error to a providers typed error. Errors without an
// EC2 code (transport failures, cancellation) or with a code errorType
// does not know pass through unchanged.
func translate(err error) error {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return err
	}
	switch errorType(ae.ErrorCode()) {
	case providers.ErrTypeInsufficientCapacity:
		return providers.NewInsufficientCapacityError(err)
	case providers.ErrTypeThrottled:
		return providers.NewThrottledError(err)
	case providers.ErrTypeNotFound:
		return providers.NewNotFoundError(err)
	case providers.ErrTypeIdempotencyMismatch:
		return providers.NewIdempotencyMismatchError(err)
	case providers.ErrTypeInvalid:
		return providers.NewInvalidError(err)
	}
	return err
}

// Reserve creates a targeted capacity reservation, trying in.Zones in
// order, or every zone that offers the type when in.Zones is empty.
func (p *Provider) Reserve(ctx context.Context, in providers.ReserveInput) (providers.Reservation, error) {
	if in.InstanceType == "" || in.Count < 1 {
		return providers.Reservation{}, providers.NewInvalidError(
			fmt.Errorf("reserving capacity, need an instance type and a positive count, got %q and %d", in.InstanceType, in.Count))
	}
	zones := in.Zones
	if len(zones) == 0 {
		var err error
		if zones, err = p.offeredZones(ctx, in.InstanceType); err != nil {
			return providers.Reservation{}, err
		}
		if len(zones) == 0 {
			return providers.Reservation{}, providers.NewInvalidError(fmt.Errorf("reserving capacity, instance type %s is not offered in any zone", in.InstanceType))
		}
	}
	if in.ClientToken != "" && len(zones) > 1 {
		if r, ok, err := p.findReservation(ctx, in.ClientToken); err != nil || ok {
			return r, err
		}
	}
	var lastErr error
	for _, zone := range zones {
		r, err := p.reserveIn(ctx, in, zone, len(zones) > 1)
		if err == nil {
			return r, nil
		}
		if !providers.IsInsufficientCapacity(err) {
			return providers.Reservation{}, err
		}
		lastErr = err
	}
	return providers.Reservation{}, fmt.Errorf("reserving %d %s in %s, %w", in.Count, in.InstanceType, strings.Join(zones, ", "), lastErr)
}

func (p *Provider) reserveIn(ctx context.Context, in providers.ReserveInput, zone string, manyZones bool) (providers.Reservation, error) {
	tags := map[string]string{}
	for k, v := range in.Tags {
		tags[k] = v
	}
	req := &awsec2.CreateCapacityReservationInput{
		InstanceType:          aws.String(in.InstanceType),
		InstancePlatform:      types.CapacityReservationInstancePlatformLinuxUnix,
		InstanceCount:         aws.Int32(int32(in.Count)),
		AvailabilityZone:      aws.String(zone),
		EndDateType:           types.EndDateTypeUnlimited,
		InstanceMatchCriteria: types.InstanceMatchCriteriaTargeted,
	}
	if in.ClientToken != "" {
		token := in.ClientToken
		if manyZones {
			// One token per zone: EC2 rejects a token reused with another
			// zone as IdempotentParameterMismatch.
			token = zoneToken(in.ClientToken, zone)
			tags[ReserveTokenTagKey] = in.ClientToken
		}
		req.ClientToken = aws.String(token)
	}
	if len(tags) > 0 {
		req.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeCapacityReservation, Tags: ec2Tags(tags)}}
	}
	out, err := p.api.CreateCapacityReservation(ctx, req)
	if err != nil {
		return providers.Reservation{}, fmt.Errorf("creating capacity reservation in %s, %w", zone, translate(err))
	}
	return reservation(out.CapacityReservation), nil
}

// findReservation looks for a live reservation an earlier Reserve with the
// same token created.
func (p *Provider) findReservation(ctx context.Context, token string) (providers.Reservation, bool, error) {
	out, err := p.api.DescribeCapacityReservations(ctx, &awsec2.DescribeCapacityReservationsInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + ReserveTokenTagKey), Values: []string{token}},
		{Name: aws.String("state"), Values: []string{"active", "pending"}},
	}})
	if err != nil {
		return providers.Reservation{}, false, fmt.Errorf("looking up capacity reservation, %w", translate(err))
	}
	if len(out.CapacityReservations) == 0 {
		return providers.Reservation{}, false, nil
	}
	return reservation(&out.CapacityReservations[0]), true, nil
}

// ListReservations lists the live reservations carrying every tag in tags.
func (p *Provider) ListReservations(ctx context.Context, tags map[string]string) ([]providers.Reservation, error) {
	if len(tags) == 0 {
		return nil, providers.NewInvalidError(errors.New("listing capacity reservations needs a tag"))
	}
	filters := tagFilters(tags)
	filters = append(filters, types.Filter{Name: aws.String("state"), Values: []string{"active", "pending"}})
	var list []providers.Reservation
	pages := awsec2.NewDescribeCapacityReservationsPaginator(p.api, &awsec2.DescribeCapacityReservationsInput{Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing capacity reservations, %w", translate(err))
		}
		for i := range page.CapacityReservations {
			list = append(list, reservation(&page.CapacityReservations[i]))
		}
	}
	return list, nil
}

// tagFilters is one tag:KEY filter per tag, in key order.
func tagFilters(tags map[string]string) []types.Filter {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	filters := make([]types.Filter, 0, len(keys)+2)
	for _, k := range keys {
		filters = append(filters, types.Filter{Name: aws.String("tag:" + k), Values: []string{tags[k]}})
	}
	return filters
}

// zoneToken derives a per-zone token that stays within EC2's 64 characters.
func zoneToken(token, zone string) string {
	s := token + "/" + zone
	if len(s) <= 64 {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func reservation(cr *types.CapacityReservation) providers.Reservation {
	if cr == nil {
		return providers.Reservation{}
	}
	return providers.Reservation{
		ID:           aws.ToString(cr.CapacityReservationId),
		InstanceType: aws.ToString(cr.InstanceType),
		Zone:         aws.ToString(cr.AvailabilityZone),
		Count:        int(aws.ToInt32(cr.TotalInstanceCount)),
		Available:    int(aws.ToInt32(cr.AvailableInstanceCount)),
		State:        string(cr.State),
	}
}

func (p *Provider) offeredZones(ctx context.Context, instanceType string) ([]string, error) {
	var zones []string
	pages := awsec2.NewDescribeInstanceTypeOfferingsPaginator(p.api, &awsec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeAvailabilityZone,
		Filters:      []types.Filter{{Name: aws.String("instance-type"), Values: []string{instanceType}}},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing zones offering %s, %w", instanceType, translate(err))
		}
		for _, o := range page.InstanceTypeOfferings {
			zones = append(zones, aws.ToString(o.Location))
		}
	}
	sort.Strings(zones)
	return zones, nil
}

// CancelReservation cancels a capacity reservation.
func (p *Provider) CancelReservation(ctx context.Context, id string) error {
	_, err := p.api.CancelCapacityReservation(ctx, &awsec2.CancelCapacityReservationInput{CapacityReservationId: aws.String(id)})
	if err != nil {
		return fmt.Errorf("cancelling capacity reservation %s, %w", id, translate(err))
	}
	return nil
}

// Run launches instances with RunInstances. A launch template, when
// named, supplies the image unless the input names one: the provider's
// default image is sent only without a template. A dry run that EC2
// accepts (its DryRunOperation answer) returns nil and no instances.
func (p *Provider) Run(ctx context.Context, in providers.RunInput) ([]providers.Instance, error) {
	if in.InstanceType == "" || in.MinCount < 1 || in.MaxCount < in.MinCount {
		return nil, providers.NewInvalidError(fmt.Errorf("running instances, need an instance type and 1 <= MinCount <= MaxCount, got %q, %d, %d",
			in.InstanceType, in.MinCount, in.MaxCount))
	}
	spot, err := isSpot(in.Market)
	if err != nil {
		return nil, fmt.Errorf("running instances, %w", err)
	}
	if spot && in.ReservationID != "" {
		return nil, providers.NewInvalidError(fmt.Errorf("running instances, a spot launch cannot target capacity reservation %s", in.ReservationID))
	}
	req := &awsec2.RunInstancesInput{
		InstanceType: types.InstanceType(in.InstanceType),
		MinCount:     aws.Int32(int32(in.MinCount)),
		MaxCount:     aws.Int32(int32(in.MaxCount)),
	}
	image := cmp.Or(in.Params.ImageID, in.ImageID)
	if image == "" && in.Params.LaunchTemplate.IsZero() {
		image = p.defaultImage
	}
	if image != "" {
		req.ImageId = aws.String(image)
	}
	if spot {
		req.InstanceMarketOptions = &types.InstanceMarketOptionsRequest{MarketType: types.MarketTypeSpot}
	}
	if in.SubnetID != "" {
		req.SubnetId = aws.String(in.SubnetID)
	}
	if len(in.Params.SecurityGroupIDs) > 0 {
		req.SecurityGroupIds = in.Params.SecurityGroupIDs
	}
	if in.Params.KeyName != "" {
		req.KeyName = aws.String(in.Params.KeyName)
	}
	if len(in.Params.UserData) > 0 {
		req.UserData = aws.String(base64.StdEncoding.EncodeToString(in.Params.UserData))
	}
	if prof := in.Params.IAMInstanceProfile; prof != "" {
		req.IamInstanceProfile = &types.IamInstanceProfileSpecification{}
		if strings.HasPrefix(prof, "arn:") {
			req.IamInstanceProfile.Arn = aws.String(prof)
		} else {
			req.IamInstanceProfile.Name = aws.String(prof)
		}
	}
	if lt := in.Params.LaunchTemplate; !lt.IsZero() {
		req.LaunchTemplate = &types.LaunchTemplateSpecification{
			LaunchTemplateId:   optString(lt.ID),
			LaunchTemplateName: optString(lt.Name),
			Version:            optString(lt.Version),
		}
	}
	if in.DryRun {
		req.DryRun = aws.Bool(true)
	}
	if in.Zone != "" {
		req.Placement = &types.Placement{AvailabilityZone: aws.String(in.Zone)}
	}
	// Without a token the SDK generates one per call, which still makes
	// its own transport retries safe.
	if in.ClientToken != "" {
		req.ClientToken = aws.String(in.ClientToken)
	}
	if in.ReservationID != "" {
		req.CapacityReservationSpecification = &types.CapacityReservationSpecification{
			CapacityReservationTarget: &types.CapacityReservationTarget{CapacityReservationId: aws.String(in.ReservationID)},
		}
	}
	if len(in.Tags) > 0 {
		req.TagSpecifications = []types.TagSpecification{{ResourceType: types.ResourceTypeInstance, Tags: ec2Tags(in.Tags)}}
	}
	out, err := p.api.RunInstances(ctx, req)
	if in.DryRun && errorCode(err) == "DryRunOperation" {
		// "Request would have succeeded, but DryRun flag is set."
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("running instances, %w", translate(err))
	}
	list := make([]providers.Instance, 0, len(out.Instances))
	for i := range out.Instances {
		list = append(list, instance(&out.Instances[i]))
	}
	return list, nil
}

// Describe lists matching instances, following pagination. IDs are sent as
// an instance-id filter, so ids that no longer exist are simply absent
// instead of failing the call.
func (p *Provider) Describe(ctx context.Context, f providers.InstanceFilter) ([]providers.Instance, error) {
	filters := tagFilters(f.Tags)
	if len(f.States) > 0 {
		filters = append(filters, types.Filter{Name: aws.String("instance-state-name"), Values: f.States})
	}
	if len(f.IDs) == 0 {
		return p.describe(ctx, filters)
	}
	var all []providers.Instance
	for start := 0; start < len(f.IDs); start += maxFilterValues {
		ids := f.IDs[start:min(start+maxFilterValues, len(f.IDs))]
		page, err := p.describe(ctx, append(filters[:len(filters):len(filters)],
			types.Filter{Name: aws.String("instance-id"), Values: ids}))
		if err != nil {
			return nil, err
		}
		all = append(all, page...)
	}
	return all, nil
}

func (p *Provider) describe(ctx context.Context, filters []types.Filter) ([]providers.Instance, error) {
	var list []providers.Instance
	pages := awsec2.NewDescribeInstancesPaginator(p.api, &awsec2.DescribeInstancesInput{Filters: filters})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("describing instances, %w", translate(err))
		}
		for _, r := range page.Reservations {
			for i := range r.Instances {
				list = append(list, instance(&r.Instances[i]))
			}
		}
	}
	return list, nil
}

// Terminate terminates instances, at most 1000 per call as EC2 allows.
func (p *Provider) Terminate(ctx context.Context, ids []string) error {
	for start := 0; start < len(ids); start += maxTerminatePerCall {
		batch := ids[start:min(start+maxTerminatePerCall, len(ids))]
		if _, err := p.api.TerminateInstances(ctx, &awsec2.TerminateInstancesInput{InstanceIds: batch}); err != nil {
			return fmt.Errorf("terminating instances, %w", translate(err))
		}
	}
	return nil
}

// InstanceTypes lists the instance types offered in the region.
func (p *Provider) InstanceTypes(ctx context.Context) ([]string, error) {
	seen := map[string]bool{}
	pages := awsec2.NewDescribeInstanceTypeOfferingsPaginator(p.api, &awsec2.DescribeInstanceTypeOfferingsInput{
		LocationType: types.LocationTypeRegion,
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing instance types, %w", translate(err))
		}
		for _, o := range page.InstanceTypeOfferings {
			seen[string(o.InstanceType)] = true
		}
	}
	out := make([]string, 0, len(seen))
	for t := range seen {
		out = append(out, t)
	}
	sort.Strings(out)
	return out, nil
}

// ec2Tags sorts tags by key so that a retried call sends exactly the same
// parameters; EC2 compares them to decide whether a reused ClientToken is a
// replay or an IdempotentParameterMismatch.
func ec2Tags(m map[string]string) []types.Tag {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	tags := make([]types.Tag, 0, len(m))
	for _, k := range keys {
		tags = append(tags, types.Tag{Key: aws.String(k), Value: aws.String(m[k])})
	}
	return tags
}

// isSpot reports whether market is the spot market; an unknown market is
// an InvalidError.
func isSpot(market string) (bool, error) {
	switch market {
	case "", providers.MarketOnDemand:
		return false, nil
	case providers.MarketSpot:
		return true, nil
	}
	return false, providers.NewInvalidError(fmt.Errorf("unknown market %q: use %s or %s", market, providers.MarketOnDemand, providers.MarketSpot))
}

// optString is nil for "", so optional parameters are left out.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func instance(in *types.Instance) providers.Instance {
	out := providers.Instance{
		ID:           aws.ToString(in.InstanceId),
		InstanceType: string(in.InstanceType),
		LaunchTime:   aws.ToTime(in.LaunchTime),
	}
	if in.Placement != nil {
		out.Zone = aws.ToString(in.Placement.AvailabilityZone)
	}
	if in.State != nil {
		out.State = string(in.State.Name)
	}
	out.Market = providers.MarketOnDemand
	if in.InstanceLifecycle == types.InstanceLifecycleTypeSpot {
		out.Market = providers.MarketSpot
	}
	if in.StateReason != nil {
		out.StateReason = aws.ToString(in.StateReason.Code)
	}
	// EC2 gives a spot instance this state reason with its interruption
	// notice, two minutes before it terminates it, and keeps it after.
	out.Interrupted = out.Market == providers.MarketSpot && out.State == providers.StateRunning &&
		out.StateReason == SpotInterruptionCode
	if len(in.Tags) > 0 {
		out.Tags = make(map[string]string, len(in.Tags))
		for _, t := range in.Tags {
			out.Tags[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return out
}
