package sandbox

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// requireSandbox skips where this machine cannot build a sandbox.
func requireSandbox(t testing.TB) {
	t.Helper()
	if err := Check(); err != nil {
		t.Skipf("no sandbox on this machine: %v", err)
	}
}

// testDirs makes a code directory holding files and an empty root, where
// a user namespace's init (running as hostID on the host) can reach them.
func testDirs(t testing.TB, files map[string]string, userNS bool, hostID int) (code, root string) {
	t.Helper()
	// Not t.TempDir: its parent is private to root.
	dir, err := os.MkdirTemp("", "sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	code = filepath.Join(dir, "code")
	root = filepath.Join(dir, "root")
	for _, d := range []string{code, root} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(code, name), []byte(body), 0o555); err != nil {
			t.Fatal(err)
		}
	}
	if userNS {
		if err := os.Chown(root, hostID, hostID); err != nil {
			t.Fatal(err)
		}
	}
	return code, root
}

// runScript runs a shell script in a sandbox and returns its output.
func runScript(t *testing.T, o Options, script string) (string, error) {
	t.Helper()
	code, root := testDirs(t, map[string]string{"run.sh": script}, o.UserNS, o.HostID)
	o.Root = root
	p, err := Start(o, &Spec{Code: code, Path: "/bin/sh", Args: []string{"sh", "/var/task/run.sh"}, Dir: TaskDir,
		Env: []string{"PATH=/usr/bin:/bin"}})
	if err != nil {
		return "", err
	}
	defer p.Close()
	out := p.Output()
	defer out.Close()
	if err := p.Release(); err != nil {
		p.Kill()
		p.Wait()
		return "", err
	}
	b, _ := io.ReadAll(out)
	return string(b), p.Wait()
}

// TestSandboxLayers checks each layer from inside, as root and in a user
// namespace (the path gust takes when it is not root).
func TestSandboxLayers(t *testing.T) {
	requireSandbox(t)
	for _, userNS := range []bool{false, true} {
		t.Run(map[bool]string{false: "root", true: "userns"}[userNS], func(t *testing.T) {
			id := FirstID + 7
			out, err := runScript(t, Options{ID: id, UserNS: userNS, HostID: id}, `
echo "uid=$(id -u) gid=$(id -g) pid=$$ cwd=$(pwd) host=$(hostname)"
echo "root=$(ls / | tr '\n' ' ')"
grep -E '^(CapEff|CapPrm|CapBnd|CapAmb|NoNewPrivs|Seccomp):' /proc/self/status | tr -s '\t' ' '
touch /var/task/x 2>/dev/null && echo task-writable || echo task-read-only
touch /usr/x 2>/dev/null && echo usr-writable || echo usr-read-only
echo hi > /tmp/f && echo "tmp=$(cat /tmp/f)"
echo "maxpid=$(ls -d /proc/[0-9]* | cut -d/ -f3 | sort -n | tail -1)"
echo "ifaces=$(ls /sys/class/net 2>/dev/null | tr '\n' ' ')"
echo "netdev=$(tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | tr '\n' ' ')"
echo "dev=$(ls /dev | tr '\n' ' ')"
echo "cgroups-not-root=$(grep -vc ':/$' /proc/self/cgroup)"
ls /root 2>/dev/null && echo root-visible
cat /etc/shadow 2>/dev/null && echo shadow-visible
true
`)
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			for _, want := range []string{
				fmt.Sprintf("uid=%d gid=%d pid=1 cwd=/var/task host=sandbox", id, id),
				"root=bin dev etc lib lib64 proc sbin tmp usr var ",
				"CapPrm: 0000000000000000", "CapEff: 0000000000000000", "CapBnd: 0000000000000000", "CapAmb: 0000000000000000",
				"NoNewPrivs: 1", "Seccomp: 2",
				"task-read-only", "usr-read-only", "tmp=hi",
				"maxpid=",              // checked below
				"cgroups-not-root=0\n", // its own cgroup namespace: no host paths
				"netdev=lo \n",
				"dev=fd full null random stderr stdin stdout urandom zero \n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("missing %q in:\n%s", want, out)
				}
			}
			// Its own pids only: the shell is 1, and the few it forks
			// follow (one or two a command); the host's run to the thousands.
			var maxPID int
			if i := strings.Index(out, "maxpid="); i >= 0 {
				fmt.Sscanf(out[i+len("maxpid="):], "%d", &maxPID)
			}
			if maxPID < 1 || maxPID > 100 {
				t.Errorf("the sandbox sees pid %d", maxPID)
			}
			for _, bad := range []string{"root-visible", "shadow-visible", "writable\n"} {
				if strings.Contains(out, bad) {
					t.Errorf("%q in:\n%s", bad, out)
				}
			}
		})
	}
}

func TestSandboxFailures(t *testing.T) {
	requireSandbox(t)
	code, root := testDirs(t, map[string]string{"data": "x"}, false, 0)
	p, err := Start(Options{Root: root, ID: FirstID}, &Spec{Code: code, Path: "/var/task/missing"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	defer p.Output().Close()
	if err := p.Release(); err == nil || !strings.Contains(err.Error(), "exec /var/task/missing") {
		t.Errorf("Release of a missing program: %v", err)
	}
	p.Wait()

	if _, err := Prepare(Options{Root: root, ID: 0}); err == nil {
		t.Error("Prepare with uid 0 succeeded")
	}
}

// BenchmarkSandbox compares, in one run, a plain process start with a
// sandbox's: built from nothing, and from one prepared ahead of need (what
// the local cloud keeps warm).
func BenchmarkSandbox(b *testing.B) {
	requireSandbox(b)
	code, root := testDirs(b, nil, false, 0)
	b.Run("plain", func(b *testing.B) {
		for b.Loop() {
			cmd := exec.Command("/bin/true")
			if err := cmd.Start(); err != nil {
				b.Fatal(err)
			}
			_ = cmd.Wait()
		}
	})
	run := func(b *testing.B, p *Process) {
		if err := p.Configure(&Spec{Code: code, Path: "/bin/true"}); err != nil {
			b.Fatal(err)
		}
		ln, err := p.Listen("127.0.0.1:9001")
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Release(); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		_ = p.Wait()
		ln.Close()
		p.Output().Close()
		p.Close()
		b.StartTimer()
	}
	b.Run("sandbox", func(b *testing.B) {
		for b.Loop() {
			p, err := Prepare(Options{Root: root, ID: FirstID + 1})
			if err != nil {
				b.Fatal(err)
			}
			run(b, p)
		}
	})
	b.Run("sandbox-prepared", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			p, err := Prepare(Options{Root: root, ID: FirstID + 1})
			if err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			run(b, p)
		}
	})
}

// TestIDsAreUniqueAcrossOwners: two clouds in one process (two IDs) never
// hand out the same id while it is live.
func TestIDsAreUniqueAcrossOwners(t *testing.T) {
	var a, b IDs
	owner := map[int]*IDs{}
	for i := 0; i < 1000; i++ {
		for _, ids := range []*IDs{&a, &b} {
			id, err := ids.Get()
			if err != nil {
				t.Fatal(err)
			}
			if id < FirstID || id >= FirstID+NumIDs || owner[id] != nil {
				t.Fatalf("id %d handed out twice or out of range", id)
			}
			owner[id] = ids
		}
	}
	if a.InUse() != 1000 || b.InUse() != 1000 {
		t.Errorf("in use: %d and %d, want 1000 each", a.InUse(), b.InUse())
	}
	for id, ids := range owner {
		ids.Put(id)
	}
	if a.InUse() != 0 || b.InUse() != 0 {
		t.Errorf("still in use: %d and %d", a.InUse(), b.InUse())
	}
}
