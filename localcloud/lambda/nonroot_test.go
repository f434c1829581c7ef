//go:build linux

package lambda_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
	"github.com/gust-dev/gust/localcloud/lambda/sample"
	"github.com/gust-dev/gust/localcloud/lambda/sandbox"
)

// TestSandboxWithoutRoot runs the local cloud as an unprivileged user, as
// gust runs on a developer's machine, and checks from the host that each
// environment is still a sandbox: a user namespace of its own in which the
// function's uid maps to gust's, no capabilities, its own PID and network
// namespaces, a read-only /var/task, none of the host's files, and a
// working Runtime API.
//
// The test itself must be root (as CI is) to become someone else: it
// re-executes a copy of its own binary as an unused uid (the child). The
// child never reaches the test framework: an init hook of this file
// (nonrootChildInit) recognises it by its environment, opens a lambda.Cloud
// on a state dir of its own, deploys the echo handler, invokes it as two
// sub-tenants and prints what it saw on stdout; it then keeps the cloud,
// and its environments, running until the test closes its stdin, so the
// test can inspect the sandboxes from outside (/proc/<pid>) meanwhile. The
// hook runs before TestMain, which the child could not run: building the
// echo handler needs the root-only Go caches.
func TestSandboxWithoutRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the local cloud as another, unprivileged uid (CI runs as root); " +
			"as non-root, every sandboxed test takes this path already")
	}
	if why := unprivilegedUserNSForbidden(); why != "" {
		t.Skipf("this machine forbids unprivileged user namespaces (%s): gust cannot sandbox functions without root here", why)
	}
	uid := nonrootUnusedID(t)

	// A directory the child can reach but not write: the copied test
	// binary and the echo handler are root's, read-only; a secret the
	// child must not read; and a home of the child's own, where its
	// TMPDIR and the cloud's state live.
	base := nonrootBaseDir(t)
	self, err := os.Executable()
	require.NoError(t, err)
	bin := filepath.Join(base, "lambda.test")
	nonrootCopyFile(t, self, bin, 0o555)
	echo := filepath.Join(base, "echo")
	require.NoError(t, os.WriteFile(echo, echoBinary, 0o444))
	secret := filepath.Join(base, "secret")
	require.NoError(t, os.WriteFile(secret, []byte("root's secret"), 0o600))
	home := filepath.Join(base, "home")
	tmp := filepath.Join(home, "tmp")
	require.NoError(t, os.MkdirAll(tmp, 0o700))
	for _, d := range []string{home, tmp} {
		require.NoError(t, os.Chown(d, uid, uid))
	}
	cfg, err := json.Marshal(nonrootChildConfig{State: filepath.Join(home, "state"), Echo: echo, Secret: secret})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	// The init hook takes the child before flags are parsed; were it not
	// to, the child would run this test alone, skip it (not root) and send
	// no report.
	cmd := exec.CommandContext(ctx, bin, "-test.run=^TestSandboxWithoutRoot$")
	cmd.Dir = home
	cmd.Env = []string{
		nonrootChildEnv + "=" + string(cfg),
		"HOME=" + home,
		"TMPDIR=" + tmp,
		"PATH=/usr/local/bin:/usr/bin:/bin",
	}
	// No supplementary groups: Groups is empty and set. No Pdeathsig (it
	// fires when the forking thread exits, not the test): the child exits
	// when its stdin closes, as it does when the test ends or dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	waited := false
	t.Cleanup(func() {
		if !waited {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	})

	rep := nonrootReadReport(t, stdout, &stderr)
	gust := cmd.Process.Pid

	// The child really is an unprivileged user, outside any user
	// namespace: the non-root path, not root in disguise.
	assert.Equal(t, uid, rep.Euid, "the child's euid")
	assert.Equal(t, uid, rep.Egid, "the child's egid")
	assert.Empty(t, rep.Groups, "the child's supplementary groups")
	assert.NotEmpty(t, rep.SecretErr, "the child could read a root-only file")
	gustStatus := nonrootProcStatus(t, gust)
	assert.Equal(t, nonrootIDs(uid), gustStatus["Uid"], "gust's uid as the host sees it")
	assert.Equal(t, nonrootNS(t, os.Getpid(), "user"), nonrootNS(t, gust, "user"), "gust runs in the host's user namespace")

	// What the local cloud says about itself: sandboxes, no cgroups.
	l := rep.Listing
	assert.Equal(t, lambda.IsolationSandbox, rep.Isolation, "Cloud.Isolation (error: %s)", rep.IsolationErr)
	assert.Equal(t, lambda.IsolationSandbox, l.Isolation, "the listing's isolation")
	assert.False(t, l.MemoryLimitEnforced, "gust without root has no cgroup to enforce memory limits")
	assert.NotEmpty(t, l.MemoryLimitNote, "the listing says why memory limits are not enforced")
	require.Len(t, l.Environments, len(nonrootSubTenants), "one environment per sub-tenant: %+v", l.Environments)

	seen := map[string]string{} // namespace link -> whose
	for _, sub := range nonrootSubTenants {
		t.Run(sub, func(t *testing.T) {
			// The function's own view, through the Runtime API.
			r, ok := rep.Responses[sub]
			require.True(t, ok, "no response for sub-tenant %s", sub)
			assert.Equal(t, sub, r.TenantID)
			assert.NotZero(t, r.UID, "the function runs as root inside its sandbox")
			assert.True(t, r.UID >= sandbox.FirstID && r.UID < sandbox.FirstID+sandbox.NumIDs,
				"the function's uid %d is outside the sandbox range", r.UID)
			assert.Equal(t, 1, r.PID, "the function is PID 1 of its own PID namespace")
			assert.Equal(t, sandbox.TaskDir, r.Cwd)
			assert.Equal(t, lambda.SandboxRuntimeAPI, r.Env["AWS_LAMBDA_RUNTIME_API"])

			var e *envEntry
			for i := range l.Environments {
				if l.Environments[i].SubTenant == sub {
					e = &l.Environments[i]
				}
			}
			require.NotNil(t, e, "no environment listed for sub-tenant %s", sub)
			assert.Equal(t, lambda.IsolationSandbox, e.Isolation)
			assert.Equal(t, r.UID, e.Uid, "the listed uid is the function's uid inside its namespace")
			assert.Equal(t, r.EnvironmentID, e.EnvironmentID)
			assert.False(t, e.MemoryLimitEnforced)
			require.NotZero(t, e.Pid)
			pid := e.Pid

			// From the host: the sandbox's PID 1, gust's uid, in a user
			// namespace that maps the function's uid, and only it, to
			// gust's.
			st := nonrootProcStatus(t, pid)
			assert.Equal(t, nonrootIDs(uid), st["Uid"], "the sandbox's uid on the host is gust's")
			assert.Equal(t, nonrootIDs(uid), st["Gid"], "the sandbox's gid on the host is gust's")
			nspid := strings.Fields(st["NSpid"])
			if assert.GreaterOrEqual(t, len(nspid), 2, "NSpid %q: not in a PID namespace of its own", st["NSpid"]) {
				assert.Equal(t, "1", nspid[len(nspid)-1], "NSpid")
			}
			want := fmt.Sprintf("%d %d 1", r.UID, uid)
			assert.Equal(t, want, nonrootIDMap(t, pid, "uid_map"), "uid_map")
			assert.Equal(t, want, nonrootIDMap(t, pid, "gid_map"), "gid_map")

			// No privilege of any kind.
			for _, set := range []string{"CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"} {
				assert.Equal(t, "0000000000000000", st[set], "%s: the function holds capabilities", set)
			}
			assert.Equal(t, "1", st["NoNewPrivs"], "no_new_privs")
			assert.Equal(t, "2", st["Seccomp"], "seccomp filter mode")

			// Namespaces of its own: none shared with gust or with the
			// other sub-tenant's sandbox.
			for _, ns := range []string{"user", "pid", "net", "mnt", "ipc", "uts"} {
				link := nonrootNS(t, pid, ns)
				assert.NotEqual(t, nonrootNS(t, gust, ns), link, "the sandbox shares gust's %s namespace", ns)
				if other, dup := seen[link]; dup {
					t.Errorf("the sandbox shares its %s namespace with %s", ns, other)
				}
				seen[link] = sub
			}

			// Its filesystem: a read-only root with the sandbox's own
			// directories and nothing else of the host's; /var/task
			// read-only.
			mounts := nonrootMounts(t, pid)
			for _, mp := range []string{"/", sandbox.TaskDir} {
				opts, ok := mounts[mp]
				if assert.True(t, ok, "%s is not a mount in the sandbox", mp) {
					assert.Contains(t, strings.Split(opts, ","), "ro", "%s is writable in the sandbox (%s)", mp, opts)
				}
			}
			root := fmt.Sprintf("/proc/%d/root", pid)
			entries, err := os.ReadDir(root)
			require.NoError(t, err)
			allowed := []string{"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "sbin", "tmp", "usr", "var"}
			for _, de := range entries {
				assert.Contains(t, allowed, de.Name(), "the sandbox's root shows the host's /%s", de.Name())
			}
			for _, p := range []string{base, secret, "/root", "/home", home} {
				_, err := os.Lstat(root + p)
				assert.True(t, errors.Is(err, os.ErrNotExist), "the sandbox sees the host's %s (%v)", p, err)
			}
			passwd, err := os.ReadFile(root + "/etc/passwd")
			require.NoError(t, err)
			assert.Contains(t, string(passwd), fmt.Sprintf("sbx_user:x:%d:", r.UID), "the sandbox's /etc/passwd is not its own")
			_, err = os.Stat(root + sandbox.TaskDir + "/bootstrap")
			assert.NoError(t, err, "the function's code is not at %s", sandbox.TaskDir)
		})
	}

	// Closing the child's stdin lets it close the cloud and exit; its
	// sandboxes go with it.
	require.NoError(t, stdin.Close())
	_, _ = io.Copy(io.Discard, stdout) // EOF once the child has exited
	err = cmd.Wait()
	waited = true
	require.NoError(t, err, "the child failed:\n%s", stderr.String())
	for _, e := range l.Environments {
		_, err := os.Stat(fmt.Sprintf("/proc/%d", e.Pid))
		assert.True(t, errors.Is(err, os.ErrNotExist), "sandbox %d outlived the cloud", e.Pid)
	}
}

// nonrootSubTenants are the sub-tenants the child invokes the function as,
// each in an environment of its own.
var nonrootSubTenants = []string{"alpha", "beta"}

// nonrootChildEnv, in a process's environment, makes it the child of
// TestSandboxWithoutRoot; its value is a nonrootChildConfig.
const nonrootChildEnv = "GUST_TEST_NONROOT_CHILD"

type nonrootChildConfig struct {
	State  string `json:"state"`  // the cloud's state dir (created by the child)
	Echo   string `json:"echo"`   // the echo handler
	Secret string `json:"secret"` // a root-only file the child must not read
}

// nonrootReport is what the child saw, printed on one line after
// nonrootReportPrefix.
type nonrootReport struct {
	Euid, Egid   int
	Groups       []int
	SecretErr    string // why the child could not read the secret; "" if it could
	Isolation    string
	IsolationErr string
	Responses    map[string]sample.Response // by sub-tenant
	Listing      envList
}

const nonrootReportPrefix = "gust-nonroot-report "

func init() {
	if os.Getenv(nonrootChildEnv) != "" {
		nonrootChildInit() // never returns
	}
}

// nonrootChildInit is the child: it runs the cloud, reports, waits for its
// stdin to close, closes the cloud and exits.
func nonrootChildInit() {
	if err := nonrootChild(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func nonrootChild() error {
	var cfg nonrootChildConfig
	if err := json.Unmarshal([]byte(os.Getenv(nonrootChildEnv)), &cfg); err != nil {
		return fmt.Errorf("reading the configuration: %w", err)
	}
	rep := nonrootReport{Euid: os.Geteuid(), Egid: os.Getegid(), Responses: map[string]sample.Response{}}
	var err error
	if rep.Groups, err = os.Getgroups(); err != nil {
		return err
	}
	if _, err := os.ReadFile(cfg.Secret); err != nil {
		rep.SecretErr = err.Error()
	}
	code, err := os.ReadFile(cfg.Echo)
	if err != nil {
		return err
	}

	c, err := lambda.Open(lambda.Config{StateDir: cfg.State})
	if err != nil {
		return fmt.Errorf("opening the cloud: %w", err)
	}
	defer c.Close()
	rep.Isolation, err = c.Isolation()
	if err != nil {
		rep.IsolationErr = err.Error()
		return fmt.Errorf("no sandbox without root: %w", err)
	}
	srv := httptest.NewServer(trustKeyID(c))
	defer srv.Close()

	const tenant, fn = "nonroot", "echo"
	client := awslambda.NewFromConfig(aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider(tenant, "gust", ""),
		Retryer:     func() aws.Retryer { return aws.NopRetryer{} },
	}, func(o *awslambda.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if _, err := client.CreateFunction(ctx, &awslambda.CreateFunctionInput{
		FunctionName:  aws.String(fn),
		Role:          aws.String("arn:aws:iam::000000000000:role/gust"),
		Runtime:       types.RuntimeProvidedal2023,
		Handler:       aws.String("bootstrap"),
		Code:          &types.FunctionCode{ZipFile: code},
		Timeout:       aws.Int32(30),
		TenancyConfig: &types.TenancyConfig{TenantIsolationMode: types.TenantIsolationModePerTenant},
	}); err != nil {
		return fmt.Errorf("creating the function: %w", err)
	}
	for _, sub := range nonrootSubTenants {
		out, err := client.Invoke(ctx, &awslambda.InvokeInput{
			FunctionName: aws.String(fn), TenantId: aws.String(sub), Payload: []byte(`{"env":["*"]}`),
		})
		if err != nil {
			return fmt.Errorf("invoking as %s: %w", sub, err)
		}
		if out.FunctionError != nil {
			return fmt.Errorf("invoking as %s: %s: %s", sub, *out.FunctionError, out.Payload)
		}
		var r sample.Response
		if err := json.Unmarshal(out.Payload, &r); err != nil {
			return fmt.Errorf("invoking as %s: %w: %s", sub, err, out.Payload)
		}
		rep.Responses[sub] = r
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/2015-03-31/functions/"+fn+"/"+lambda.EnvironmentsSuffix, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+tenant+"/20260101/us-east-1/lambda/aws4_request, SignedHeaders=host, Signature=0")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("listing environments: %w", err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		return fmt.Errorf("listing environments: %d %v: %s", resp.StatusCode, err, body)
	}
	if err := json.Unmarshal(body, &rep.Listing); err != nil {
		return fmt.Errorf("listing environments: %w: %s", err, body)
	}

	line, err := json.Marshal(rep)
	if err != nil {
		return err
	}
	if _, err := fmt.Printf("%s%s\n", nonrootReportPrefix, line); err != nil {
		return err
	}
	// The environments stay up, for the test to inspect, until it closes
	// our stdin.
	_, _ = io.Copy(io.Discard, os.Stdin)
	srv.Close()
	return c.Close()
}

// nonrootReadReport reads the child's report from its stdout.
func nonrootReadReport(t *testing.T, stdout io.Reader, stderr *bytes.Buffer) nonrootReport {
	t.Helper()
	sc := bufio.NewScanner(stdout)
	sc.Buffer(nil, 16<<20)
	var other []string
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), nonrootReportPrefix); ok {
			var rep nonrootReport
			require.NoError(t, json.Unmarshal([]byte(rest), &rep))
			return rep
		}
		other = append(other, sc.Text())
	}
	// stderr is complete once stdout is closed and the child has exited.
	t.Fatalf("the child sent no report (%v)\nstdout:\n%s\nstderr:\n%s", sc.Err(), strings.Join(other, "\n"), stderr.String())
	return nonrootReport{}
}

// unprivilegedUserNSForbidden says why this machine does not let an
// unprivileged user create a user namespace, or "".
func unprivilegedUserNSForbidden() string {
	for knob, forbidden := range map[string]string{
		"/proc/sys/user/max_user_namespaces":                     "0",
		"/proc/sys/kernel/unprivileged_userns_clone":             "0",
		"/proc/sys/kernel/apparmor_restrict_unprivileged_userns": "1",
	} {
		if b, err := os.ReadFile(knob); err == nil && strings.TrimSpace(string(b)) == forbidden {
			return strings.ReplaceAll(strings.TrimPrefix(knob, "/proc/sys/"), "/", ".") + " is " + forbidden
		}
	}
	return ""
}

// nonrootUnusedID returns a uid that is no user's or group's on this
// machine, also used as the gid.
func nonrootUnusedID(t *testing.T) int {
	t.Helper()
	used := map[string]bool{}
	for _, f := range []string{"/etc/passwd", "/etc/group"} {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			require.NoError(t, err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Split(line, ":"); len(fields) > 2 {
				used[fields[2]] = true
			}
		}
	}
	for id := 4242; ; id++ {
		if !used[strconv.Itoa(id)] {
			return id
		}
	}
}

// nonrootBaseDir makes a temporary directory, root's, that any user can
// reach (every directory above it is searchable) but not write.
func nonrootBaseDir(t *testing.T) string {
	t.Helper()
	for _, parent := range []string{os.TempDir(), "/tmp", "/var/tmp"} {
		if !nonrootSearchable(parent) {
			continue
		}
		dir, err := os.MkdirTemp(parent, "gust-nonroot-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		require.NoError(t, os.Chmod(dir, 0o755))
		return dir
	}
	t.Fatalf("no temporary directory that an unprivileged user can reach (TMPDIR %s)", os.TempDir())
	return ""
}

// nonrootSearchable reports whether every directory from / to dir is
// searchable by any user.
func nonrootSearchable(dir string) bool {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return false
	}
	for {
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || fi.Mode().Perm()&0o001 == 0 {
			return false
		}
		if dir == "/" {
			return true
		}
		dir = filepath.Dir(dir)
	}
}

func nonrootCopyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// nonrootProcStatus is /proc/<pid>/status as a map of its fields.
func nonrootProcStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	require.NoError(t, err)
	st := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			st[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return st
}

// nonrootIDs is a status Uid or Gid line of a process whose ids are all id.
func nonrootIDs(id int) string {
	s := strconv.Itoa(id)
	return strings.Join([]string{s, s, s, s}, " ")
}

// nonrootIDMap is a process's uid_map or gid_map, as the host sees it, its
// lines' fields single-spaced.
func nonrootIDMap(t *testing.T, pid int, file string) string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	require.NoError(t, err)
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		lines = append(lines, strings.Join(strings.Fields(line), " "))
	}
	return strings.Join(lines, "\n")
}

// nonrootNS identifies a process's namespace of a kind ("net:[4026531840]").
func nonrootNS(t *testing.T, pid int, kind string) string {
	t.Helper()
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, kind))
	require.NoError(t, err)
	return link
}

// nonrootMounts maps each mount point a process sees (relative to its own
// root) to the mount's options; the last mount on a point wins.
func nonrootMounts(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", pid))
	require.NoError(t, err)
	m := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		// id parent major:minor root mountpoint options ...
		if f := strings.Fields(line); len(f) >= 6 {
			m[f[4]] = f[5]
		}
	}
	return m
}
