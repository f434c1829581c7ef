package ec2

import (
	"context"
	"strconv"
)

type hostKey struct{}

// describeRegions lists the cloud's one region (DescribeRegions), whose
// endpoint is the address the caller reached it at.
func (c *Cloud) describeRegions(ctx context.Context, _ string, p params, w *xmlWriter) error {
	if v := p.get("AllRegions"); v != "" && v != "true" && v != "false" {
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for AllRegions", v)
	}
	for _, n := range p.list("RegionName") {
		if n != c.cfg.Region {
			return apiErrorf(codeInvalidParameterValue, "Invalid region: %s", n)
		}
	}
	filters, err := p.filters()
	if err != nil {
		return err
	}
	endpoint, _ := ctx.Value(hostKey{}).(string)
	if endpoint == "" {
		endpoint = "ec2." + c.cfg.Region + ".amazonaws.com"
	}
	const optIn = "opt-in-not-required"
	show := true
	for _, f := range filters {
		switch f.Name {
		case "region-name":
			show = show && contains(f.Values, c.cfg.Region)
		case "endpoint":
			show = show && contains(f.Values, endpoint)
		case "opt-in-status":
			show = show && contains(f.Values, optIn)
		default:
			return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	w.open("regionInfo")
	if show {
		w.open("item")
		w.text("regionName", c.cfg.Region)
		w.text("regionEndpoint", endpoint)
		w.text("optInStatus", optIn)
		w.close("item")
	}
	w.close("regionInfo")
	return nil
}

// describeInstanceStatus reports the account's instances' state and
// status checks (DescribeInstanceStatus). Local instances have no
// hardware to fail: a running instance's system and instance checks are
// ok, every other state's not-applicable. As on EC2, only running
// instances are listed unless IncludeAllInstances is true.
//
// Filters: availability-zone, instance-state-name, instance-state-code,
// system-status.status, instance-status.status and their .reachability.
// They all become conditions on the instance's state, so pages are cut in
// SQL as DescribeInstances' are.
func (c *Cloud) describeInstanceStatus(ctx context.Context, acct string, p params, w *xmlWriter) error {
	ids := p.list("InstanceId")
	includeAll := false
	switch v := p.get("IncludeAllInstances"); v {
	case "", "false":
	case "true":
		includeAll = true
	default:
		return apiErrorf(codeInvalidParameterValue, "Invalid value '%s' for IncludeAllInstances", v)
	}
	in, err := p.filters()
	if err != nil {
		return err
	}
	var filters []filter
	for _, f := range in {
		switch f.Name {
		case "availability-zone", "instance-state-name":
			filters = append(filters, f)
		case "instance-state-code":
			var names []string
			for _, v := range f.Values {
				for name, code := range stateCodes {
					if strconv.Itoa(code) == v {
						names = append(names, name)
					}
				}
			}
			if len(names) == 0 {
				names = []string{"none"} // matches no state
			}
			filters = append(filters, filter{Name: "instance-state-name", Values: names})
		case "system-status.status", "instance-status.status", "system-status.reachability", "instance-status.reachability":
			var names []string
			for _, v := range f.Values {
				switch v {
				case "ok", "passed":
					names = append(names, "running")
				case "not-applicable":
					names = append(names, "pending", "terminated")
				}
			}
			if len(names) == 0 {
				names = []string{"none"} // impaired, initializing, failed...: never here
			}
			filters = append(filters, filter{Name: "instance-state-name", Values: names})
		default:
			return apiErrorf(codeInvalidParameterValue, "The filter '%s' is invalid", f.Name)
		}
	}
	if !includeAll {
		filters = append(filters, filter{Name: "instance-state-name", Values: []string{"running"}})
	}
	now := c.cfg.Now().UnixNano()
	list, next, err := c.instancePage(ctx, acct, p, ids, filters, now)
	if err != nil {
		return err
	}
	w.open("instanceStatusSet")
	for _, inst := range list {
		st := c.state(inst, now)
		status, check := "not-applicable", "not-applicable"
		if st == "running" {
			status, check = "ok", "passed"
		}
		w.open("item")
		w.text("instanceId", inst.id)
		w.text("availabilityZone", inst.zone)
		w.open("instanceState")
		w.int("code", stateCodes[st])
		w.text("name", st)
		w.close("instanceState")
		for _, elem := range []string{"systemStatus", "instanceStatus"} {
			w.open(elem)
			w.text("status", status)
			w.open("details")
			w.open("item")
			w.text("name", "reachability")
			w.text("status", check)
			w.close("item")
			w.close("details")
			w.close(elem)
		}
		w.close("item")
	}
	w.close("instanceStatusSet")
	if next != "" {
		w.text("nextToken", next)
	}
	return nil
}
