package integration

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/integration/itest"
)

// TestCLIVersion: `gust version` and `gust --version` name gust's version
// and commit and the Temporal server, SDK and Web UI it embeds, the same
// modules this test is built with.
func TestCLIVersion(t *testing.T) {
	want := map[string]string{}
	for _, mod := range []string{"go.temporal.io/server", "go.temporal.io/sdk", "github.com/temporalio/ui-server/v2"} {
		cmd := exec.Command("go", "list", "-m", "-f", "{{.Version}}", mod)
		cmd.Dir = ".."
		out, err := cmd.Output()
		require.NoError(t, err, mod)
		want[mod] = strings.TrimSpace(string(out))
	}
	itest.GustBinary(t) // built before gust's two-minute clock starts
	for _, args := range [][]string{{"version"}, {"--version"}} {
		stdout, stderr, code := gust(t, args...)
		require.Equal(t, 0, code, stderr)
		require.Regexp(t, `^gust \S+ \(commit \S+, go1\.`, stdout)
		for _, mod := range []string{"go.temporal.io/server", "go.temporal.io/sdk", "github.com/temporalio/ui-server/v2"} {
			require.NotEmpty(t, want[mod], mod)
			require.Regexp(t, regexp.QuoteMeta(want[mod])+`\s+\(`+regexp.QuoteMeta(mod)+`\)`, stdout, "%v", args)
		}
	}
}

// TestCLIBashCompletion loads `gust completion bash` into bash and
// completes as the shell would: commands, subcommands and flags.
func TestCLIBashCompletion(t *testing.T) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		t.Skip("no bash")
	}
	bin := itest.GustBinary(t)
	complete := func(words ...string) []string {
		script := `source <("$GUST" completion bash) || exit 1
COMP_WORDS=("$GUST" ` + strings.Join(words, " ") + `); COMP_CWORD=$((${#COMP_WORDS[@]}-1))
_gust_complete; printf '%s\n' "${COMPREPLY[@]}"`
		cmd := exec.Command(bash, "-c", script)
		cmd.Env = append(os.Environ(), "GUST="+bin)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		return strings.Fields(string(out))
	}
	require.Equal(t, []string{"fleet", "fn"}, complete("f"))
	require.Subset(t, complete("fleet", "''"), []string{"launch", "status", "list", "scale", "cancel"})
	require.Subset(t, complete("fleet", "launch", "--ti"), []string{"--timeout"})
	require.NotContains(t, complete("fleet", "launch", "--ti"), "--min")
}

// TestCLIDevConventions runs a gust dev with --metrics-port: the in-process
// worker's metrics are served on loopback; a scale below the fleet's
// minimum is a usage error; and gust itself deploys and answers as a
// function in one line each, as the README shows.
func TestCLIDevConventions(t *testing.T) {
	metrics := itest.FreePort(t)
	d := itest.StartDev(t, "--ephemeral", "--metrics-port", strconv.Itoa(metrics), "--cloud-capacity", "m5.large=10", "--cloud-boot", "100ms", "--launch-rate", "50")
	defer d.Stop(t)
	url := "http://127.0.0.1:" + strconv.Itoa(metrics) + "/metrics"
	require.Contains(t, d.Stdout(), "Metrics    "+url)
	itest.WaitFor(t, 20*time.Second, "the in-process worker's SDK metrics are served", func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == http.StatusOK && strings.Contains(string(body), "temporal_")
	})

	stdout, stderr, code := gust(t, "fleet", "launch", "--min", "2", "--target", "3", "-t", "m5.large", "--fleet-id", "m", "--wait", "--address", d.Address)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	_, stderr, code = gust(t, "fleet", "scale", "m", "--target", "1", "--address", d.Address)
	require.Equal(t, 2, code, stderr)
	require.Equal(t, "gust: --target 1 is below fleet m's min 2\n", stderr)

	t.Setenv("GUST_STATE_DIR", t.TempDir())
	stdout, stderr, code = gust(t, "fn", "deploy", "hello", "--tenant", "default", "--code", itest.GustBinary(t), "--address", d.Address)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	stdout, stderr, code = gust(t, "fn", "invoke", "hello", "--tenant", "default", "--subtenant", "me", "--payload", `{"echo":"hi"}`, "--address", d.Address)
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	require.Contains(t, stdout, `"echo":"hi"`)
	require.Contains(t, stdout, `"tenant_id":"me"`)
}

// TestCLIDemoWithoutKeepLinksNoUI: the demo's platform is gone a moment
// after the summary, so without --keep it prints no Web UI link and says
// how to get one.
func TestCLIDemoWithoutKeepLinksNoUI(t *testing.T) {
	stdout, stderr, code := gust(t, "demo")
	require.Equal(t, 0, code, "stdout=%s stderr=%s", stdout, stderr)
	require.Contains(t, stdout, "Summary")
	for _, line := range strings.Split(stdout, "\n") {
		if strings.Contains(line, "Web UI") {
			require.NotContains(t, line, "http", "a link that is dead a second later")
		}
	}
	require.Contains(t, stdout, "gust demo --keep")

	_, stderr, code = gust(t, "demo", "--ui-port", "0")
	require.Equal(t, 2, code, stderr)
	require.Contains(t, stderr, "--ui-port needs --keep")
}

// TestTaskInstall: `task install` builds ./starter as gust in GOBIN.
func TestTaskInstall(t *testing.T) {
	gobin := t.TempDir()
	cmd := exec.Command("go", "tool", "task", "--dry", "install")
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Regexp(t, `go build -ldflags "-X main\.version=\S+ -X main\.commit=\S+" -o "`+regexp.QuoteMeta(filepath.Join(gobin, "gust"))+`" \./starter`, string(out))
}
