//go:build linux

package lambda_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda/lambdatest"
	"github.com/gust-dev/gust/localcloud/lambda/sandbox"
)

// The security tests: a hostile function (testdata/hostile) attacks its
// sandbox, its neighbours and the machine, and reports what happened; the
// tests decide whether the sandbox held. They need root, as CI has: the
// sandbox's own uids, a network namespace for "the internet", and the
// host's view of every process and cgroup.

var (
	hostileOnce sync.Once
	hostileBin  []byte
	hostileErr  error
)

// hostileBinary is the hostile handler, built once per test binary.
func hostileBinary(t testing.TB) []byte {
	t.Helper()
	hostileOnce.Do(func() {
		dir, err := os.MkdirTemp("", "gust-hostile-")
		if err != nil {
			hostileErr = err
			return
		}
		defer os.RemoveAll(dir)
		bin, err := lambdatest.BuildHostile(dir)
		if err != nil {
			hostileErr = err
			return
		}
		hostileBin, hostileErr = os.ReadFile(bin)
	})
	require.NoError(t, hostileErr)
	return hostileBin
}

// requireRootSandbox skips where the security tests cannot run: they need
// root (CI and the development machines run them as root).
func requireRootSandbox(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the sandbox security tests need root (their own uids, network namespaces, every process's /proc)")
	}
}

// The hostile function's report (testdata/hostile's Report), as the tests
// read it.
type hostileReport struct {
	Attack   string           `json:"attack"`
	Self     int              `json:"self"`
	Outcomes []hostileOutcome `json:"outcomes"`
	Identity *hostileIdentity `json:"identity"`
	Visible  []hostileProc    `json:"visible"`
	SecretIn []string         `json:"secret_in"`
	Bytes    int64            `json:"bytes"`
	Spawned  int              `json:"spawned"`
	Errno    string           `json:"errno"`
	Error    string           `json:"error"`
	Threads  int              `json:"threads"`
	SpawnMS  int64            `json:"spawn_ms"`
	ReapMS   int64            `json:"reap_ms"`
}

type hostileOutcome struct {
	Op        string `json:"op"`
	Target    string `json:"target"`
	OK        bool   `json:"ok"`
	Errno     string `json:"errno"`
	Error     string `json:"error"`
	Detail    string `json:"detail"`
	Status    int    `json:"status"`
	ElapsedMS int64  `json:"elapsed_ms"`
}

func (o hostileOutcome) String() string {
	s := fmt.Sprintf("%s %s: ok=%v errno=%s error=%q status=%d (%d ms)", o.Op, o.Target, o.OK, o.Errno, o.Error, o.Status, o.ElapsedMS)
	if o.Detail != "" {
		d := o.Detail
		if len(d) > 300 {
			d = d[:300] + "..."
		}
		s += fmt.Sprintf(" detail=%q", d)
	}
	return s
}

type hostileProc struct {
	Pid  int    `json:"pid"`
	PPid int    `json:"ppid"`
	Uid  int    `json:"uid"`
	Sid  int    `json:"sid"`
	Pgid int    `json:"pgid"`
	Comm string `json:"comm"`
}

type hostileMount struct {
	Point   string `json:"point"`
	Options string `json:"options"`
	FSType  string `json:"fstype"`
}

type hostileIdentity struct {
	Uid, Gid, Euid, Egid                   int
	Groups                                 []int
	Pid, PPid                              int
	Hostname                               string
	TenantID                               string
	FunctionName                           string
	CapEff, CapPrm, CapInh, CapBnd, CapAmb string
	NoNewPrivs, Seccomp                    int
	StartupFDs                             map[int]string
	Mounts                                 []hostileMount
	RuntimeAPI                             string
	HTTPProxy                              string
}

// hostileResult is one invocation of the hostile function.
type hostileResult struct {
	report  hostileReport
	envID   string
	fnError string
	errDoc  map[string]any
}

type hostileOpts struct {
	egress   string // X-Gust-Egress; "" sends none
	memoryMB int32
	timeout  int32
}

// deployHostile creates the hostile function, per-tenant.
func deployHostile(t testing.TB, c *awslambda.Client, name string, o hostileOpts) *awslambda.CreateFunctionOutput {
	t.Helper()
	return createFn(t, c, name, fnOpts{tenancy: true, code: hostileBinary(t), memoryMB: o.memoryMB, timeout: o.timeout, egress: o.egress})
}

// attack invokes the hostile function as sub-tenant sub with req and
// returns what it reported, or its function error.
func attack(t testing.TB, c *awslambda.Client, fn, sub string, req map[string]any) hostileResult {
	t.Helper()
	payload, err := json.Marshal(req)
	require.NoError(t, err)
	out, err := c.Invoke(context.Background(), &awslambda.InvokeInput{FunctionName: aws.String(fn), Payload: payload, TenantId: aws.String(sub)})
	require.NoError(t, err)
	var r hostileResult
	r.envID, _ = rawHeaders(out.ResultMetadata)
	r.fnError = aws.ToString(out.FunctionError)
	if r.fnError != "" {
		require.NoError(t, json.Unmarshal(out.Payload, &r.errDoc), string(out.Payload))
		return r
	}
	require.NoError(t, json.Unmarshal(out.Payload, &r.report), string(out.Payload))
	return r
}

// mustAttack is attack for an attack that must return a report.
func mustAttack(t testing.TB, c *awslambda.Client, fn, sub string, req map[string]any) hostileReport {
	t.Helper()
	r := attack(t, c, fn, sub, req)
	require.Empty(t, r.fnError, "the hostile function failed: %v", r.errDoc)
	return r.report
}

// own is the set of visible processes that are the function itself or
// its descendants.
func (r hostileReport) own() map[int]bool {
	own := map[int]bool{r.Self: true}
	for grew := true; grew; {
		grew = false
		for _, p := range r.Visible {
			if !own[p.Pid] && own[p.PPid] {
				own[p.Pid], grew = true, true
			}
		}
	}
	return own
}

// strangers lists the visible processes that are not the function's own,
// or not of its uid.
func strangers(r hostileReport, uid int) []hostileProc {
	own := r.own()
	var out []hostileProc
	for _, p := range r.Visible {
		if !own[p.Pid] || p.Uid != uid {
			out = append(out, p)
		}
	}
	return out
}

// envByID is an environment's listing entry.
func (h *harness) envByID(t testing.TB, tenant, fn, id string) envEntry {
	t.Helper()
	for _, e := range h.envs(t, tenant, fn).Environments {
		if e.EnvironmentID == id {
			return e
		}
	}
	t.Fatalf("environment %s of %s/%s is not listed", id, tenant, fn)
	return envEntry{}
}

// outcomesFailed asserts that every outcome failed with one of errnos.
func outcomesFailed(t *testing.T, outs []hostileOutcome, errnos ...string) {
	t.Helper()
	require.NotEmpty(t, outs, "the attack reported nothing")
	for _, o := range outs {
		outcomeFailed(t, o, errnos...)
	}
}

func outcomeFailed(t *testing.T, o hostileOutcome, errnos ...string) {
	t.Helper()
	if o.OK {
		t.Errorf("ATTACK SUCCEEDED: %v", o)
		return
	}
	if !slices.Contains(errnos, o.Errno) {
		t.Errorf("%s %s failed with %s (%s), want one of %v", o.Op, o.Target, o.Errno, o.Error, errnos)
	}
}

// outcomeFor finds the outcome of op on target (either may be "" for any).
func outcomeFor(t *testing.T, outs []hostileOutcome, op, target string) hostileOutcome {
	t.Helper()
	for _, o := range outs {
		if (op == "" || o.Op == op) && (target == "" || o.Target == target) {
			return o
		}
	}
	t.Fatalf("no outcome for %s %s in %v", op, target, outs)
	return hostileOutcome{}
}

// hostProc is a process as the host sees it.
type hostProc struct {
	pid, ppid, uid, pgid, sid int
	comm                      string
}

// hostProcs lists the host's processes.
func hostProcs() []hostProc {
	var out []hostProc
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p := hostProc{pid: pid, uid: -1}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "status"))
		if err != nil {
			continue // exited meanwhile
		}
		for line := range strings.Lines(string(b)) {
			if v, ok := strings.CutPrefix(line, "Uid:"); ok {
				if f := strings.Fields(v); len(f) > 0 {
					p.uid, _ = strconv.Atoi(f[0])
				}
			}
		}
		if b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil {
			s := string(b)
			if i, j := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')'); i >= 0 && j > i {
				p.comm = s[i+1 : j]
				if f := strings.Fields(s[j+1:]); len(f) > 3 {
					p.ppid, _ = strconv.Atoi(f[1])
					p.pgid, _ = strconv.Atoi(f[2])
					p.sid, _ = strconv.Atoi(f[3])
				}
			}
		}
		out = append(out, p)
	}
	return out
}

// hostProcAlive reports whether pid runs (exists and is not a zombie).
func hostProcAlive(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 || i+2 >= len(s) {
		return false
	}
	return s[i+2] != 'Z' && s[i+2] != 'X'
}

// procsOfUID lists the host's processes running as uid.
func procsOfUID(uid int) []hostProc {
	var out []hostProc
	for _, p := range hostProcs() {
		if p.uid == uid {
			out = append(out, p)
		}
	}
	return out
}

// inSandboxRange reports whether id is one of the sandboxes' uids.
func inSandboxRange(id int) bool {
	return id >= sandbox.FirstID && id < sandbox.FirstID+sandbox.NumIDs
}

// capsZero asserts that a /proc/self/status capability mask is empty.
func capsZero(t *testing.T, name, mask string) {
	t.Helper()
	v, err := strconv.ParseUint(mask, 16, 64)
	if assert.NoError(t, err, "%s %q", name, mask) {
		assert.Zero(t, v, "%s is %s: the function holds capabilities", name, mask)
	}
}
