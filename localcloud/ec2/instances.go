package ec2

import (
	"context"
	"database/sql"
	"encoding/base64"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/gust-dev/gust/tenants"
)

// maxRunCount caps MaxCount so a typo cannot insert a billion rows.
const maxRunCount = 100000

var instanceIDPattern = regexp.MustCompile(`^i-[0-9a-f]{8,17}$`)

// EC2's instance state codes.
var stateCodes = map[string]int{
	"pending": 0, "running": 16, "shutting-down": 32, "terminated": 48, "stopping": 64, "stopped": 80,
}

type instance struct {
	seq           int64
	id            string
	reservationID string
	instanceType  string
	zone          string
	poolZone      string
	imageID       string
	launchIndex   int
	launchNs      int64
	terminatedNs  sql.NullInt64
	crID          string
	clientToken   string
	tags          map[string]string
	interruptNs   sql.NullInt64 // a spot interruption notice started then (reclaim.go)
	reclaimed     bool          // terminated by a spot interruption
	account       string
	lifecycle     string // MarketOnDemand or MarketSpot
	subnetID      string
	keyName       string
	groups        []string // security group ids
	groupNames    map[string]string
	userData      string // base64
	profileARN    string
}

func (c *Cloud) state(in *instance, now int64) string {
	switch {
	case in.terminatedNs.Valid:
		return "terminated"
	case now-in.launchNs < c.cfg.BootDelay.Nanoseconds():
		return "pending"
	}
	return "running"
}

const instanceColumns = `seq, id, reservation_id, instance_type, zone, pool_zone, image_id, launch_index, launch_ns, terminated_ns, cr_id, client_token, interrupt_ns, reclaimed,
	account, lifecycle, subnet_id, key_name, security_groups, user_data, iam_profile`

// queryInstances loads the instances matching where (a condition on the
// instances table), in launch order, at most limit of them (all if limit
// < 0), with their tags.
func queryInstances(ctx context.Context, tx *sql.Tx, where string, args []any, limit int) ([]*instance, error) {
	// The limit is in the text: a bound LIMIT expires the statement at
	// each binding (sqlEndedNotices). It is an int, so nothing else can
	// get into the text.
	order := ` ORDER BY seq LIMIT ` + strconv.Itoa(limit)
	rows, err := tx.QueryContext(ctx, `SELECT `+instanceColumns+` FROM instances WHERE `+where+order, args...)
	if err != nil {
		return nil, fmt.Errorf("querying instances, %w", err)
	}
	var out []*instance
	bySeq := map[int64]*instance{}
	for rows.Next() {
		in := &instance{}
		var groups string
		if err := rows.Scan(&in.seq, &in.id, &in.reservationID, &in.instanceType, &in.zone, &in.poolZone, &in.imageID,
			&in.launchIndex, &in.launchNs, &in.terminatedNs, &in.crID, &in.clientToken, &in.interruptNs, &in.reclaimed,
			&in.account, &in.lifecycle, &in.subnetID, &in.keyName, &groups, &in.userData, &in.profileARN); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading instances, %w", err)
		}
		in.groups = splitGroups(groups)
		out = append(out, in)
		bySeq[in.seq] = in
	}
	if err := rows.Close(); err != nil {
		return nil, fmt.Errorf("reading instances, %w", err)
	}
	if len(out) == 0 {
		return nil, nil
	}
	if err := nameGroups(ctx, tx, out); err != nil {
		return nil, err
	}
	rows, err = tx.QueryContext(ctx, `SELECT seq, key, value FROM tags WHERE seq IN (SELECT seq FROM instances WHERE `+
		where+order+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("querying tags, %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var seq int64
		var k, v string
		if err := rows.Scan(&seq, &k, &v); err != nil {
			return nil, fmt.Errorf("reading tags, %w", err)
		}
		if in := bySeq[seq]; in != nil {
			if in.tags == nil {
				in.tags = map[string]string{}
			}
			in.tags[k] = v
		}
	}
	return out, rows.Err()
}

// runInstances and insertInstances are in run.go.

// writeReservation writes the elements of RunInstances' response: the
// reservation with its instances in their current state.
func (c *Cloud) writeReservation(ctx context.Context, tx *sql.Tx, w *xmlWriter, acct, resID string, now int64) error {
	list, err := queryInstances(ctx, tx, "account = ? AND reservation_id = ?", []any{acct, resID}, -1)
	if err != nil {
		return err
	}
	w.text("reservationId", resID)
	w.text("ownerId", tenants.AccountID(acct))
	w.open("groupSet")
	w.close("groupSet")
	w.open("instancesSet")
	for _, in := range list {
		c.writeInstance(w, in, now)
	}
	w.close("instancesSet")
	return nil
}

func (c *Cloud) writeInstance(w *xmlWriter, in *instance, now int64) {
	st := c.state(in, now)
	w.open("item")
	w.text("instanceId", in.id)
	w.text("imageId", in.imageID)
	w.open("instanceState")
	w.int("code", stateCodes[st])
	w.text("name", st)
	w.close("instanceState")
	if st != "terminated" {
		ip := fmt.Sprintf("10.%d.%d.%d", in.seq>>16&255, in.seq>>8&255, in.seq&255)
		w.text("privateDnsName", "ip-"+strings.ReplaceAll(ip, ".", "-")+".ec2.internal")
		w.text("privateIpAddress", ip)
		w.text("reason", "")
	} else {
		t := time.Unix(0, in.terminatedNs.Int64).UTC()
		w.text("privateDnsName", "")
		who := "User"
		if in.reclaimed {
			who = "Service"
		}
		w.text("reason", who+" initiated ("+t.Format("2006-01-02 15:04:05")+" GMT)")
	}
	w.text("dnsName", "")
	w.int("amiLaunchIndex", in.launchIndex)
	w.text("instanceType", in.instanceType)
	w.time("launchTime", time.Unix(0, in.launchNs))
	w.open("placement")
	w.text("availabilityZone", in.zone)
	w.text("groupName", "")
	w.text("tenancy", "default")
	w.close("placement")
	writeLaunchDetails(w, in)
	w.open("monitoring")
	w.text("state", "disabled")
	w.close("monitoring")
	switch {
	case in.interruptNs.Valid && (st != "terminated" || in.reclaimed):
		// Under an interruption notice, and after it.
		w.open("stateReason")
		w.text("code", spotTerminationCode)
		w.text("message", spotTerminationMessage)
		w.close("stateReason")
	case st == "terminated":
		w.open("stateReason")
		w.text("code", "Client.UserInitiatedShutdown")
		w.text("message", "Client.UserInitiatedShutdown: User initiated shutdown")
		w.close("stateReason")
	}
	w.text("architecture", "x86_64")
	w.text("rootDeviceType", "ebs")
	w.text("rootDeviceName", "/dev/xvda")
	w.text("virtualizationType", "hvm")
	w.text("hypervisor", "xen")
	if in.clientToken != "" {
		w.text("clientToken", in.clientToken)
	}
	w.tagSet(in.tags)
	w.open("capacityReservationSpecification")
	if in.crID != "" {
		w.open("capacityReservationTarget")
		w.text("capacityReservationId", in.crID)
		w.close("capacityReservationTarget")
	} else {
		w.text("capacityReservationPreference", "open")
	}
	w.close("capacityReservationSpecification")
	if in.crID != "" {
		w.text("capacityReservationId", in.crID)
	}
	w.close("item")
}

// instanceWhere turns DescribeInstances' ids and filters into a condition
// on the instances table, always limited to the account's instances.
// Values within a filter are ORed, filters ANDed.
func (c *Cloud) instanceWhere(acct string, ids []string, filters []filter, now int64) (string, []any, error) {
	conds := []string{"account = ?"}
	args := []any{acct}
	in := func(column string, values []string) string {
		for _, v := range values {
			args = append(args, v)
		}
		return column + " IN (" + placeholders(len(values)) + ")"
	}
	if c.cfg.TerminatedRetention >= 0 {
		conds = append(conds, "(terminated_ns IS NULL OR terminated_ns > ?)")
		args = append(args, now-c.cfg.TerminatedRetention.Nanoseconds())
	}
	if len(ids) > 0 {
		conds = append(conds, in("id", ids))
	}
	for _, f := range filters {
		if len(f.Values) == 0 {
			return "", nil, apiErrorf(codeInvalidParameterValue, "The filter '%s' has no values", f.Name)
		}
		switch key, isTag := strings.CutPrefix(f.Name, "tag:"); {
		case isTag:
			args = append(args, key)
			conds = append(conds, "seq IN (SELECT seq FROM tags WHERE key = ? AND "+in("value", f.Values)+")")
		case f.Name == "tag-key":
			conds = append(conds, "seq IN (SELECT seq FROM tags WHERE "+in("key", f.Values)+")")
		case f.Name == "tag-value":
			conds = append(conds, "seq IN (SELECT seq FROM tags WHERE "+in("value", f.Values)+")")
		case f.Name == "instance-id":
			conds = append(conds, in("id", f.Values))
		case f.Name == "instance-type":
			conds = append(conds, in("instance_type", f.Values))
		case f.Name == "availability-zone":
			conds = append(conds, in("zone", f.Values))
		case f.Name == "reservation-id":
			conds = append(conds, in("reservation_id", f.Values))
		case f.Name == "client-token":
			conds = append(conds, in("client_token", f.Values))
		case f.Name == "capacity-reservation-id":
			conds = append(conds, in("cr_id", f.Values))
		case f.Name == "instance-lifecycle":
			conds = append(conds, in("lifecycle", f.Values))
		case f.Name == "subnet-id":
			conds = append(conds, in("subnet_id", f.Values))
		case f.Name == "key-name":
			conds = append(conds, in("key_name", f.Values))
		case f.Name == "iam-instance-profile.arn":
			conds = append(conds, in("iam_profile", f.Values))
		case f.Name == "vpc-id":
			// Every instance is in the account's default VPC.
			if !contains(f.Values, defaultVPC(acct)) {
				conds = append(conds, "0")
			}
		case f.Name == "instance.group-id":
			var ors []string
			for _, v := range f.Values {
				ors = append(ors, "',' || security_groups || ',' LIKE ?")
				args = append(args, "%,"+strings.ReplaceAll(strings.ReplaceAll(v, "%", ""), "_", "")+",%")
			}
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		case f.Name == "instance-state-name":
			booted := now - c.cfg.BootDelay.Nanoseconds()
			var ors []string
			for _, v := range f.Values {
				switch v {
				case "pending":
					ors = append(ors, "(terminated_ns IS NULL AND launch_ns > ?)")
					args = append(args, booted)
				case "running":
					ors = append(ors, "(terminated_ns IS NULL AND launch_ns <= ?)")
					args = append(args, booted)
				case "terminated":
					ors = append(ors, "terminated_ns IS NOT NULL")
				default: // shutting-down, stopping, stopped: never true here
					ors = append(ors, "0")
				}
			}
			conds = append(conds, "("+strings.Join(ors, " OR ")+")")
		default:
			return "", nil, apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	return strings.Join(conds, " AND "), args, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

// Page tokens are opaque to clients; inside they are the last seq served.
func encodePageToken(seq int64) string {
	return base64.RawURLEncoding.EncodeToString([]byte("seq:" + strconv.FormatInt(seq, 10)))
}

func decodePageToken(tok string) (int64, error) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err == nil {
		if s, ok := strings.CutPrefix(string(b), "seq:"); ok {
			if seq, err := strconv.ParseInt(s, 10, 64); err == nil {
				return seq, nil
			}
		}
	}
	return 0, apiErrorf(codeInvalidNextToken, "The token '%s' is invalid.", tok)
}

func (c *Cloud) describeInstances(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("InstanceId")
	filters, err := p.filters()
	if err != nil {
		return err
	}
	now := c.cfg.Now().UnixNano()
	list, next, err := c.instancePage(ctx, acct, p, ids, filters, now)
	if err != nil {
		return err
	}
	w.b.Grow(len(list) * 1200)
	owner := tenants.AccountID(acct)
	w.open("reservationSet")
	// EC2 groups instances by reservation; a reservation whose instances
	// straddle a page boundary appears on both pages.
	for i := 0; i < len(list); {
		j := i
		for j < len(list) && list[j].reservationID == list[i].reservationID {
			j++
		}
		w.open("item")
		w.text("reservationId", list[i].reservationID)
		w.text("ownerId", owner)
		w.open("groupSet")
		w.close("groupSet")
		w.open("instancesSet")
		for _, in := range list[i:j] {
			c.writeInstance(w, in, now)
		}
		w.close("instancesSet")
		w.close("item")
		i = j
	}
	w.close("reservationSet")
	if next != "" {
		w.text("nextToken", next)
	}
	return nil
}

// instancePage reads one page of the account's instances that match ids
// and filters, as DescribeInstances and DescribeInstanceStatus page them
// (MaxResults, not with instance ids; NextToken), and the next page's
// token, empty on the last page. Listed ids that are not the account's
// visible instances are InvalidInstanceID.NotFound.
func (c *Cloud) instancePage(ctx context.Context, acct string, p params, ids []string, filters []filter, now int64) ([]*instance, string, error) {
	limit := -1
	if p.has("MaxResults") {
		if len(ids) > 0 {
			return nil, "", apiErrorf(codeInvalidParameterCombo, "The parameter instancesSet cannot be used with the parameter maxResults")
		}
		var err error
		if limit, err = p.integer("MaxResults", 0); err != nil {
			return nil, "", err
		}
		if limit < 5 || limit > 1000 {
			return nil, "", apiErrorf(codeInvalidParameterValue, "Value ( %d ) for parameter maxResults is invalid. Expecting a value between 5 and 1000.", limit)
		}
	}
	var after int64
	if tok := p.get("NextToken"); tok != "" {
		var err error
		if after, err = decodePageToken(tok); err != nil {
			return nil, "", err
		}
	}
	where, args, err := c.instanceWhere(acct, ids, filters, now)
	if err != nil {
		return nil, "", err
	}
	var list []*instance
	err = c.read(ctx, func(tx *sql.Tx) error {
		if len(ids) > 0 {
			if err := c.checkInstancesExist(ctx, tx, acct, ids, now); err != nil {
				return err
			}
		}
		fetch := limit
		if fetch > 0 {
			fetch++ // one more tells whether there is a next page
		}
		list, err = queryInstances(ctx, tx, where+" AND seq > ?", append(args, after), fetch)
		return err
	})
	if err != nil {
		return nil, "", err
	}
	next := ""
	if limit > 0 && len(list) > limit {
		list = list[:limit]
		next = encodePageToken(list[limit-1].seq)
	}
	return list, next, nil
}

// checkInstancesExist fails with InvalidInstanceID.NotFound, naming every
// missing id, unless all ids are visible instances of the account, as EC2
// does for explicitly listed ids. Another account's instance is missing.
func (c *Cloud) checkInstancesExist(ctx context.Context, tx *sql.Tx, acct string, ids []string, now int64) error {
	for _, id := range ids {
		if !instanceIDPattern.MatchString(id) {
			return apiErrorf(codeInstanceMalformed, "Invalid id: \"%s\"", id)
		}
	}
	where, args, err := c.instanceWhere(acct, ids, nil, now)
	if err != nil {
		return err
	}
	rows, err := tx.QueryContext(ctx, `SELECT id FROM instances WHERE `+where, args...)
	if err != nil {
		return fmt.Errorf("looking up instances, %w", err)
	}
	defer rows.Close()
	found := map[string]bool{}
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return fmt.Errorf("looking up instances, %w", err)
		}
		found[id] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("looking up instances, %w", err)
	}
	var missing []string
	for _, id := range ids {
		if !found[id] {
			missing = append(missing, id)
		}
	}
	switch len(missing) {
	case 0:
		return nil
	case 1:
		return apiErrorf(codeInstanceNotFound, "The instance ID '%s' does not exist", missing[0])
	}
	return apiErrorf(codeInstanceNotFound, "The instance IDs '%s' do not exist", strings.Join(missing, ", "))
}

func (c *Cloud) terminateInstances(ctx context.Context, acct string, p params, w *xmlWriter) error {
	var ids []string
	seen := map[string]bool{}
	for _, id := range p.list("InstanceId") {
		if !seen[id] {
			seen[id] = true
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return apiErrorf(codeMissingParameter, "The request must contain the parameter InstanceId")
	}
	if len(ids) > 1000 {
		return apiErrorf(codeInvalidParameterValue, "At most 1000 instance IDs can be terminated in one call")
	}
	type change struct{ id, prev string }
	var changes []change
	err := c.write(ctx, func(tx *sql.Tx) error {
		now := c.cfg.Now().UnixNano()
		if err := c.checkInstancesExist(ctx, tx, acct, ids, now); err != nil {
			return err
		}
		where, args, err := c.instanceWhere(acct, ids, nil, now)
		if err != nil {
			return err
		}
		list, err := queryInstances(ctx, tx, where, args, -1)
		if err != nil {
			return err
		}
		byID := map[string]*instance{}
		for _, in := range list {
			byID[in.id] = in
		}
		var live []string
		var ended []*instance
		for _, id := range ids {
			in := byID[id]
			prev := c.state(in, now)
			changes = append(changes, change{id, prev})
			if prev == "terminated" {
				continue
			}
			live = append(live, id)
			ended = append(ended, in)
		}
		if len(live) > 0 {
			args := append([]any{now, acct}, anys(live)...)
			if _, err := tx.ExecContext(ctx, `UPDATE instances SET terminated_ns = ? WHERE account = ? AND id IN (`+placeholders(len(live))+`)`, args...); err != nil {
				return fmt.Errorf("terminating instances, %w", err)
			}
		}
		if err := releaseCapacity(ctx, tx, acct, ended); err != nil {
			return err
		}
		if err := c.noteTerminated(ctx, tx, acct, live, now); err != nil {
			return err
		}
		return c.purgeTerminated(ctx, tx, now)
	})
	if err != nil {
		return err
	}
	w.open("instancesSet")
	for _, ch := range changes {
		w.open("item")
		w.text("instanceId", ch.id)
		w.open("currentState")
		w.int("code", stateCodes["terminated"])
		w.text("name", "terminated")
		w.close("currentState")
		w.open("previousState")
		w.int("code", stateCodes[ch.prev])
		w.text("name", ch.prev)
		w.close("previousState")
		w.close("item")
	}
	w.close("instancesSet")
	return nil
}

// releaseCapacity returns the capacity of the account's ended instances
// where it came from: to its reservation while that is active, else to
// the pool it was drawn from.
func releaseCapacity(ctx context.Context, tx *sql.Tx, acct string, ended []*instance) error {
	type origin struct{ typ, poolZone, cr string }
	returned := map[origin]int{}
	var order []origin
	for _, in := range ended {
		s := origin{in.instanceType, in.poolZone, in.crID}
		if returned[s] == 0 {
			order = append(order, s)
		}
		returned[s]++
	}
	for _, s := range order {
		n := returned[s]
		if s.cr != "" {
			res, err := tx.ExecContext(ctx, `UPDATE capacity_reservations SET available = available + ? WHERE id = ? AND account = ? AND state = 'active'`, n, s.cr, acct)
			if err != nil {
				return fmt.Errorf("returning capacity to reservation, %w", err)
			}
			if k, _ := res.RowsAffected(); k > 0 {
				continue
			}
		}
		if err := addFree(ctx, tx, s.typ, s.poolZone, n); err != nil {
			return err
		}
	}
	return nil
}

// purgeTerminated deletes instances terminated longer ago than the
// retention, which Describe no longer shows anyway.
func (c *Cloud) purgeTerminated(ctx context.Context, tx *sql.Tx, now int64) error {
	if c.cfg.TerminatedRetention < 0 {
		return nil
	}
	cutoff := now - c.cfg.TerminatedRetention.Nanoseconds()
	if _, err := tx.ExecContext(ctx, `DELETE FROM tags WHERE seq IN (SELECT seq FROM instances WHERE terminated_ns <= ?)`, cutoff); err != nil {
		return fmt.Errorf("purging terminated instances, %w", err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM instances WHERE terminated_ns <= ?`, cutoff); err != nil {
		return fmt.Errorf("purging terminated instances, %w", err)
	}
	return nil
}

func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, s := range ss {
		out[i] = s
	}
	return out
}
