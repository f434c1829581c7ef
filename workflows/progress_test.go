package workflows

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/testsuite"

	"github.com/gust-dev/gust/activities"
	"github.com/gust-dev/gust/providers/fake"
)

// recordingLogger keeps the messages logged at info and above, with their
// key-value pairs.
type recordingLogger struct {
	mu    sync.Mutex
	lines []string
}

func (l *recordingLogger) add(level string, msg string, kv []any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprint(level, " ", msg, " ", kv))
}

func (l *recordingLogger) Debug(string, ...any)        {}
func (l *recordingLogger) Info(msg string, kv ...any)  { l.add("INFO", msg, kv) }
func (l *recordingLogger) Warn(msg string, kv ...any)  { l.add("WARN", msg, kv) }
func (l *recordingLogger) Error(msg string, kv ...any) { l.add("ERROR", msg, kv) }
func (l *recordingLogger) With(...any) log.Logger      { return l }
func (l *recordingLogger) contains(sub ...string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, line := range l.lines {
		all := true
		for _, s := range sub {
			all = all && strings.Contains(line, s)
		}
		if all {
			return true
		}
	}
	return false
}

var _ log.Logger = (*recordingLogger)(nil)

// TestFleetProgressIsTrackedAndLogged: while a fleet waits for capacity in
// its filling phase, FleetsInFlight counts it there; once it ends it is
// gone. The workflow logs its phase changes and its capacity waits at
// info.
func TestFleetProgressIsTrackedAndLogged(t *testing.T) {
	accounts := fake.NewAccounts()
	cloud := accounts.Add("")
	cloud.SetCapacity("m5.large", 15) // min 10 fits, the target of 20 does not
	var s testsuite.WorkflowTestSuite
	logs := &recordingLogger{}
	s.SetLogger(logs)
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflow(LaunchFleetWorkflow)
	env.RegisterActivity(&activities.Fleet{Accounts: accounts})
	env.SetTestTimeout(30 * time.Second)

	before := FleetsInFlight()
	var during map[string]int
	env.RegisterDelayedCallback(func() {
		during = FleetsInFlight()
		env.SignalWorkflow(CancelSignal, CancelInput{})
	}, 5*time.Minute)
	env.ExecuteWorkflow(LaunchFleetWorkflow, fleetInput(10, 20))
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())

	require.Equal(t, before[PhaseFilling]+1, during[PhaseFilling], "the waiting fleet counts as filling: %v", during)
	require.Equal(t, before, FleetsInFlight(), "an ended fleet is no longer in flight")

	for _, want := range [][]string{
		{"INFO fleet phase changed", "From validating", "To reserving"},
		{"INFO fleet phase changed", "From reserving", "To bursting"},
		{"INFO fleet phase changed", "From bursting", "To filling"},
		{"INFO fleet phase changed", "From filling", "To cancelled"},
		{"INFO fleet waiting for capacity", "NextFillRoundIn"},
	} {
		require.True(t, logs.contains(want...), "no log line with %q in:\n%s", want, strings.Join(logs.lines, "\n"))
	}
}
