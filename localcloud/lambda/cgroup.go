package lambda

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Memory limits. RLIMIT_AS is no use for Go handlers (the runtime reserves
// far more address space than it uses), so gust only enforces MemorySize
// through cgroup v2: a child cgroup per environment with memory.max set, the
// process placed in it at clone time (CLONE_INTO_CGROUP), so it never runs
// outside it. That needs a delegated cgroup v2 directory (Config.CgroupParent);
// without one, limits are reported as not enforced rather than faked.

// memoryLimiter creates per-environment cgroups under a parent.
type memoryLimiter struct {
	parent string // "" when memory limits cannot be enforced
	reason string // why not, for the environment listing
}

func newMemoryLimiter(parent string) *memoryLimiter {
	if parent == "" {
		return &memoryLimiter{reason: "no cgroup v2 parent configured (Config.CgroupParent)"}
	}
	ctl, err := os.ReadFile(filepath.Join(parent, "cgroup.subtree_control"))
	if err != nil {
		return &memoryLimiter{reason: fmt.Sprintf("cgroup parent unusable: %v", err)}
	}
	if !strings.Contains(" "+strings.TrimSpace(string(ctl))+" ", " memory ") {
		return &memoryLimiter{reason: "memory controller not enabled in " + parent + "/cgroup.subtree_control"}
	}
	return &memoryLimiter{parent: parent}
}

func (m *memoryLimiter) enforced() bool { return m.parent != "" }

// cgroup is one environment's cgroup; a nil *cgroup means none.
type cgroup struct {
	dir string
	fd  *os.File
}

// create makes the environment's cgroup with memory.max = mb MiB and swap
// disabled, so the limit is the limit.
func (m *memoryLimiter) create(envID string, mb int) (*cgroup, error) {
	if m.parent == "" || mb <= 0 {
		return nil, nil
	}
	dir := filepath.Join(m.parent, "gust-"+envID)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating cgroup, %w", err)
	}
	cg := &cgroup{dir: dir}
	if err := os.WriteFile(filepath.Join(dir, "memory.max"), []byte(strconv.Itoa(mb<<20)), 0); err != nil {
		cg.remove()
		return nil, fmt.Errorf("setting memory.max, %w", err)
	}
	_ = os.WriteFile(filepath.Join(dir, "memory.swap.max"), []byte("0"), 0) // absent without swap accounting
	fd, err := os.Open(dir)
	if err != nil {
		cg.remove()
		return nil, fmt.Errorf("opening cgroup, %w", err)
	}
	cg.fd = fd
	return cg, nil
}

// remove deletes the cgroup; its processes must have exited.
func (cg *cgroup) remove() {
	if cg == nil {
		return
	}
	if cg.fd != nil {
		cg.fd.Close()
	}
	_ = os.Remove(cg.dir)
}
