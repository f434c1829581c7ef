package lambda

import (
	"bufio"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The REPORT line. Lambda ends every invocation's log with one:
//
//	REPORT RequestId: <id>	Duration: 1.23 ms	Billed Duration: 2 ms	Memory Size: 128 MB	Max Memory Used: 20 MB	Init Duration: 5.00 ms
//
// Init Duration only after a cold start. Duration is the invocation's own
// (the init is not in it); Billed Duration is both rounded up to the
// millisecond, as Lambda bills the init phase of the provided runtimes.
// For a PER_TENANT function the line ends with the tenant id (Lambda's
// TenantId, gust's sub-tenant), which Lambda puts in every log record of
// such a function (its JSON logs' tenantId).

// reportLine is the REPORT line of reqID, which took elapsed in all (the
// init included on a cold start).
func (e *environment) reportLine(f *function, reqID, sub string, elapsed time.Duration, cold bool) []byte {
	var init time.Duration
	if cold {
		init = e.initDuration
	}
	dur := max(0, elapsed-init)
	billed := int64(math.Ceil(float64((dur + init).Microseconds()) / 1000))
	b := make([]byte, 0, 192)
	b = append(b, "REPORT RequestId: "...)
	b = append(b, reqID...)
	b = append(b, "\tDuration: "...)
	b = append(b, formatMS(dur)...)
	b = append(b, " ms\tBilled Duration: "...)
	b = strconv.AppendInt(b, max(1, billed), 10)
	b = append(b, " ms\tMemory Size: "...)
	b = strconv.AppendInt(b, int64(f.Config.MemoryMB), 10)
	b = append(b, " MB\tMax Memory Used: "...)
	b = strconv.AppendInt(b, int64(e.maxMemoryUsedMB()), 10)
	b = append(b, " MB"...)
	if init > 0 {
		b = append(b, "\tInit Duration: "...)
		b = append(b, formatMS(init)...)
		b = append(b, " ms"...)
	}
	if sub != "" {
		b = append(b, "\tTenantId: "...)
		b = append(b, sub...)
	}
	return b
}

// formatMS is d in milliseconds with two decimals, as Lambda writes them.
func formatMS(d time.Duration) string {
	return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 2, 64)
}

// maxMemoryUsedMB is the most memory the environment has used so far, in
// MB rounded up: its memory cgroup's peak (what Lambda reports), or,
// without a cgroup, the peak resident set of its main process (VmHWM). 0
// when neither can be read.
func (e *environment) maxMemoryUsedMB() int {
	var bytes int64
	if cg := e.cgroup; cg != nil {
		file := "memory.peak" // v2, Linux 5.19+
		if cg.v1 {
			file = "memory.max_usage_in_bytes"
		}
		if b, err := os.ReadFile(filepath.Join(cg.dir, file)); err == nil {
			bytes, _ = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
		}
	}
	if bytes <= 0 && e.pid > 0 {
		bytes = peakRSS(e.pid)
	}
	return int((bytes + 1<<20 - 1) >> 20)
}

// peakRSS reads a process's VmHWM from /proc, in bytes; 0 if it cannot.
func peakRSS(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
