package lambda

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Memory limits. RLIMIT_AS is no use for Go handlers (the runtime reserves
// far more address space than it uses), so gust enforces MemorySize with a
// memory cgroup per environment, and only where the machine lets it create
// one:
//
//   - cgroup v2, given a delegated directory (Config.CgroupParent): the
//     process is placed in its cgroup at clone time (CLONE_INTO_CGROUP), so
//     it never runs outside it.
//   - cgroup v1, found on its own: a writable memory controller hierarchy
//     (typically gust running as root). v1 cannot place a
//     process at clone time, so the environment joins its cgroup right after
//     exec; move_charge_at_immigrate carries the memory it touched before
//     that along with it.
//
// Elsewhere limits are reported as not enforced rather than faked.
//
// Where the memory limit is enforced, the same cgroup also caps the number
// of processes and threads (pids.max, DefaultPidsMax, Lambda's limit) and
// gives the environment a CPU weight proportional to its memory size, as
// Lambda allocates CPU, wherever the pids and cpu controllers are available
// beside memory.

// limiterSeq numbers the cgroup v1 parents of one process's Clouds.
var limiterSeq atomic.Int64

// DefaultPidsMax is the pids.max of every environment's cgroup: Lambda's
// limit of 1024 processes and threads.
const DefaultPidsMax = 1024

// memoryLimiter creates per-environment cgroups under a parent.
type memoryLimiter struct {
	parent string // "" when memory limits cannot be enforced
	v1     bool   // parent is in a cgroup v1 memory hierarchy
	owned  bool   // gust created parent and removes it on close
	reason string // why limits are not enforced, for the environment listing
	// v1 only: gust's parents in the pids and cpu hierarchies, "" where
	// that controller is not available. (v2 has one directory for all.)
	pidsParent, cpuParent string
	// v2 only: whether the parent enables pids and cpu for its children.
	v2Pids, v2CPU bool
	// removing counts cgroups still being removed in the background.
	removing sync.WaitGroup
}

// newMemoryLimiter uses the cgroup v2 directory parent when it is given,
// and otherwise looks for a writable cgroup v1 memory hierarchy, unless
// disabled.
func newMemoryLimiter(parent string, disabled bool) *memoryLimiter {
	switch {
	case disabled:
		return &memoryLimiter{reason: "memory limits turned off (--cloud-no-memory-limits, Config.DisableMemoryLimits)"}
	case parent != "":
		return newV2Limiter(parent)
	}
	dir, err := ownCgroupV1("memory")
	if err != nil {
		return &memoryLimiter{reason: "no cgroup v2 directory given (--cloud-cgroup, Config.CgroupParent) and " + err.Error()}
	}
	// One parent per Cloud (gust-lambda-PID-N), so two sharing a state
	// dir, in one process or two, never touch each other's environments.
	// Parents left by a gust that died are removed; rmdir refuses one that
	// still has processes or children, and a live gust's parent is left
	// alone even when empty.
	removeStaleParents(dir)
	name := fmt.Sprintf("gust-lambda-%d-%d", os.Getpid(), limiterSeq.Add(1))
	own := filepath.Join(dir, name)
	if err := os.Mkdir(own, 0o755); err != nil {
		return &memoryLimiter{reason: fmt.Sprintf("no cgroup v2 directory given (--cloud-cgroup, Config.CgroupParent) and the cgroup v1 memory hierarchy is not writable: %v", err)}
	}
	m := &memoryLimiter{parent: own, v1: true, owned: true}
	m.pidsParent = ownV1Parent("pids", name)
	m.cpuParent = ownV1Parent("cpu", name)
	// Being allowed to make a directory is not being allowed to set a
	// limit in it: try once, so a half-usable hierarchy is reported
	// rather than failing environments one by one.
	probe, err := m.create("probe", DefaultMemoryMB)
	if err != nil {
		m.close()
		return &memoryLimiter{reason: fmt.Sprintf("the cgroup v1 memory hierarchy does not accept limits: %v", err)}
	}
	probe.remove()
	return m
}

// ownV1Parent makes gust's parent cgroup, name, in the cgroup v1 hierarchy
// of controller, beside this process's own cgroup there, and returns it, or
// "" where that hierarchy is missing or not writable. Parents left by a
// gust that died are removed first, as for memory.
func ownV1Parent(controller, name string) string {
	dir, err := ownCgroupV1(controller)
	if err != nil {
		return ""
	}
	removeStaleParents(dir)
	own := filepath.Join(dir, name)
	if err := os.Mkdir(own, 0o755); err != nil {
		return ""
	}
	return own
}

// removeStaleParents removes the gust-lambda-PID-N parents in dir whose
// gust has exited, with whatever environment cgroups they still hold
// (rmdir refuses any that still has processes).
func removeStaleParents(dir string) {
	stale, _ := filepath.Glob(filepath.Join(dir, "gust-lambda-*"))
	for _, s := range stale {
		pid, _, _ := strings.Cut(strings.TrimPrefix(filepath.Base(s), "gust-lambda-"), "-")
		if _, err := os.Stat("/proc/" + pid); errors.Is(err, os.ErrNotExist) {
			children, _ := filepath.Glob(filepath.Join(s, "gust-*"))
			for _, c := range children {
				_ = os.Remove(c)
			}
			_ = os.Remove(s)
		}
	}
}

func newV2Limiter(parent string) *memoryLimiter {
	if err := CheckCgroupParent(parent); err != nil {
		return &memoryLimiter{reason: err.Error()}
	}
	ctl, _ := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	list := strings.TrimSpace(string(ctl))
	return &memoryLimiter{parent: parent, v2Pids: hasField(list, " ", "pids"), v2CPU: hasField(list, " ", "cpu")}
}

// CheckCgroupParent reports whether dir can serve as Config.CgroupParent:
// a cgroup v2 directory with the memory controller enabled for its
// children.
func CheckCgroupParent(dir string) error {
	ctl, err := os.ReadFile(filepath.Join(dir, "cgroup.subtree_control"))
	if err != nil {
		return fmt.Errorf("cgroup parent unusable: %w", err)
	}
	if !hasField(strings.TrimSpace(string(ctl)), " ", "memory") {
		return fmt.Errorf("memory controller not enabled in %s", filepath.Join(dir, "cgroup.subtree_control"))
	}
	return nil
}

// ownCgroupV1 returns the directory of this process's cgroup in the
// mounted cgroup v1 hierarchy of controller.
func ownCgroupV1(controller string) (string, error) {
	path, err := controllerCgroupPath("/proc/self/cgroup", controller)
	if err != nil {
		return "", err
	}
	mnt, root, err := controllerMount("/proc/self/mountinfo", controller)
	if err != nil {
		return "", err
	}
	rel, ok := strings.CutPrefix(path, root)
	if !ok {
		return "", fmt.Errorf("this process's %s cgroup %s is outside the mounted hierarchy %s", controller, path, root)
	}
	return filepath.Join(mnt, rel), nil
}

// memoryCgroupPath reads a /proc/PID/cgroup file for the cgroup v1 memory
// controller's line, "N:memory[,...]:/path".
func memoryCgroupPath(file string) (string, error) { return controllerCgroupPath(file, "memory") }

// controllerCgroupPath reads a /proc/PID/cgroup file for the line of a
// cgroup v1 controller, "N:controller[,...]:/path".
func controllerCgroupPath(file, controller string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", fmt.Errorf("no cgroup information: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) == 3 && hasField(parts[1], ",", controller) {
			return parts[2], nil
		}
	}
	return "", fmt.Errorf("no cgroup v1 %s controller", controller)
}

// memoryMount reads a mountinfo file for the cgroup v1 hierarchy with the
// memory controller, returning its mount point and the cgroup path mounted
// there.
func memoryMount(file string) (mountPoint, root string, err error) {
	return controllerMount(file, "memory")
}

// controllerMount is memoryMount for any cgroup v1 controller.
func controllerMount(file, controller string) (mountPoint, root string, err error) {
	f, err := os.Open(file)
	if err != nil {
		return "", "", fmt.Errorf("no mount information: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// id parent major:minor root mountpoint options [optional...] - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 6 || len(tail) < 3 || tail[0] != "cgroup" || !hasField(tail[2], ",", controller) {
			continue
		}
		if hasField(fields[5], ",", "ro") {
			return "", "", fmt.Errorf("the cgroup v1 %s hierarchy is mounted read-only", controller)
		}
		return unescapeMount(fields[4]), unescapeMount(fields[3]), nil
	}
	return "", "", fmt.Errorf("no cgroup v1 %s hierarchy mounted", controller)
}

func hasField(list, sep, want string) bool {
	for f := range strings.SplitSeq(list, sep) {
		if f == want {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if n, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(n))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func (m *memoryLimiter) enforced() bool { return m.parent != "" }

// close removes the parent cgroups gust created, once the environments'
// cgroups are gone; its environments must have been stopped.
func (m *memoryLimiter) close() {
	m.removing.Wait()
	if m.owned {
		for _, d := range []string{m.parent, m.pidsParent, m.cpuParent} {
			if d != "" {
				_ = os.Remove(d)
			}
		}
	}
}

// cgroup is one environment's cgroup; a nil *cgroup means none.
type cgroup struct {
	m   *memoryLimiter
	dir string
	v1  bool
	fd  *os.File // v2: for CLONE_INTO_CGROUP
	// v1: the environment's cgroups in the pids and cpu hierarchies, ""
	// where that controller is not available.
	pidsDir, cpuDir string
	// pidsMax and cpuShare are the limits set, 0 where not enforced.
	// cpuShare is cpu.shares on v1 and cpu.weight on v2.
	pidsMax, cpuShare int
}

// cpuShareFor is the CPU share of an environment of mb MiB: Lambda gives a
// function one vCPU at 1,769 MB, in proportion below and above. cgroup v1's
// cpu.shares gives 1024 to one full CPU's worth; v2's cpu.weight gives 100.
func cpuShareFor(mb int, v1 bool) int {
	if v1 {
		return max(2, mb*1024/1769)
	}
	return min(10000, max(1, mb*100/1769))
}

// create makes the environment's cgroup limited to mb MiB, with swap
// disabled, so the limit is the limit.
func (m *memoryLimiter) create(envID string, mb int) (*cgroup, error) {
	if m.parent == "" || mb <= 0 {
		return nil, nil
	}
	dir := filepath.Join(m.parent, "gust-"+envID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup, %w", err)
	}
	cg := &cgroup{dir: dir, v1: m.v1, m: m}
	limit := []byte(strconv.Itoa(mb << 20))
	if m.v1 {
		if err := os.WriteFile(filepath.Join(dir, "memory.limit_in_bytes"), limit, 0); err != nil {
			cg.remove()
			return nil, fmt.Errorf("setting memory.limit_in_bytes, %w", err)
		}
		// Absent without swap accounting; must follow limit_in_bytes,
		// which it may not be below.
		_ = os.WriteFile(filepath.Join(dir, "memory.memsw.limit_in_bytes"), limit, 0)
		// Charge the process's pages to this cgroup when it joins.
		_ = os.WriteFile(filepath.Join(dir, "memory.move_charge_at_immigrate"), []byte("3"), 0)
		// pids and cpu are resource control beside the memory limit: where
		// their hierarchy refuses, the environment runs without them, and
		// its listing says so.
		if cg.pidsDir = limitedChild(m.pidsParent, envID, "pids.max", DefaultPidsMax); cg.pidsDir != "" {
			cg.pidsMax = DefaultPidsMax
		}
		share := cpuShareFor(mb, true)
		if cg.cpuDir = limitedChild(m.cpuParent, envID, "cpu.shares", share); cg.cpuDir != "" {
			cg.cpuShare = share
		}
		return cg, nil
	}
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), limit, 0); err != nil {
		cg.remove()
		return nil, fmt.Errorf("setting memory.max, %w", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0) // absent without swap accounting
	if m.v2Pids && os.WriteFile(filepath.Join(dir, "pids.max"), []byte(strconv.Itoa(DefaultPidsMax)), 0) == nil {
		cg.pidsMax = DefaultPidsMax
	}
	if share := cpuShareFor(mb, false); m.v2CPU && os.WriteFile(filepath.Join(dir, "cpu.weight"), []byte(strconv.Itoa(share)), 0) == nil {
		cg.cpuShare = share
	}
	fd, err := os.Open(dir)
	if err != nil {
		cg.remove()
		return nil, fmt.Errorf("opening cgroup, %w", err)
	}
	cg.fd = fd
	return cg, nil
}

// limitedChild makes the environment's cgroup under a cgroup v1 parent
// with file set to value, and returns it, or "" where parent is "" or
// refuses either.
func limitedChild(parent, envID, file string, value int) string {
	if parent == "" {
		return ""
	}
	d := filepath.Join(parent, "gust-"+envID)
	if os.Mkdir(d, 0o755) != nil {
		return ""
	}
	if os.WriteFile(filepath.Join(d, file), []byte(strconv.Itoa(value)), 0) != nil {
		_ = os.Remove(d)
		return ""
	}
	return d
}

// join moves a just-started process into a v1 cgroup; v2 processes are
// placed at clone time and need nothing.
func (cg *cgroup) join(pid int) error {
	if cg == nil || !cg.v1 {
		return nil
	}
	return cg.move(pid)
}

// move moves a process into the cgroup, v1 or v2: for a process that was
// not cloned into it, such as a sandbox prepared ahead of need.
func (cg *cgroup) move(pid int) error {
	if cg == nil {
		return nil
	}
	p := []byte(strconv.Itoa(pid))
	if err := os.WriteFile(filepath.Join(cg.dir, "cgroup.procs"), p, 0); err != nil {
		return fmt.Errorf("joining cgroup, %w", err)
	}
	if cg.pidsDir != "" && os.WriteFile(filepath.Join(cg.pidsDir, "cgroup.procs"), p, 0) != nil {
		cg.pidsMax = 0
	}
	if cg.cpuDir != "" && os.WriteFile(filepath.Join(cg.cpuDir, "cgroup.procs"), p, 0) != nil {
		cg.cpuShare = 0
	}
	return nil
}

// oomKilled reports whether the kernel's OOM killer has killed a process
// in the cgroup, which is how a process over its memory limit ends.
func (cg *cgroup) oomKilled() bool {
	if cg == nil {
		return false
	}
	file := "memory.events" // v2: "oom_kill N"
	if cg.v1 {
		file = "memory.oom_control" // v1: "oom_kill N" (Linux 4.13+)
	}
	b, err := os.ReadFile(filepath.Join(cg.dir, file))
	if err != nil {
		return false
	}
	for line := range strings.Lines(string(b)) {
		if n, ok := strings.CutPrefix(strings.TrimSpace(line), "oom_kill "); ok {
			return n != "0"
		}
	}
	return false
}

// remove deletes the cgroup; its processes must have exited. An exited
// process can still be leaving its cgroups for a moment (rmdir says EBUSY
// meanwhile): what cannot be removed at once is retried in the background,
// off the caller's path (an eviction makes room for a cold start), and the
// limiter's close waits for it, so no cgroup outlives gust.
func (cg *cgroup) remove() {
	if cg == nil {
		return
	}
	if cg.fd != nil {
		cg.fd.Close()
	}
	var left []string
	for _, d := range []string{cg.dir, cg.pidsDir, cg.cpuDir} {
		if d != "" {
			if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
				left = append(left, d)
			}
		}
	}
	if len(left) == 0 {
		return
	}
	removeLater := func() {
		for _, d := range left {
			for i := 0; i < 100; i++ {
				time.Sleep(time.Millisecond << min(i, 5))
				if err := os.Remove(d); err == nil || errors.Is(err, os.ErrNotExist) {
					break
				}
			}
		}
	}
	if cg.m == nil {
		removeLater()
		return
	}
	cg.m.removing.Add(1)
	go func() {
		defer cg.m.removing.Done()
		removeLater()
	}()
}
