package sandbox

import (
	"os"
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

// runScript runs a shell script in a sandbox and returns its output.
func runScript(t *testing.T, spec Spec, script string) (string, error) {
	t.Helper()
	// Not t.TempDir: its parent is private to root, and a user namespace's
	// init runs as spec.HostID on the host.
	dir, err := os.MkdirTemp("", "sandbox-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	code := filepath.Join(dir, "code")
	if err := os.Mkdir(code, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(code, "run.sh"), []byte(script), 0o555); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "root")
	if err := os.Mkdir(root, 0o700); err != nil {
		t.Fatal(err)
	}
	if spec.UserNS {
		if err := os.Chown(root, spec.HostID, spec.HostID); err != nil {
			t.Fatal(err)
		}
	}
	outPath := filepath.Join(dir, "out")
	out, err := os.Create(outPath)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	spec.Root, spec.Code, spec.Output = root, code, out
	spec.Path, spec.Args = "/bin/sh", []string{"sh", "/var/task/run.sh"}
	spec.Env = []string{"PATH=/usr/bin:/bin"}
	if spec.ID == 0 {
		spec.ID = FirstID + 7
	}
	spec.CgroupFD = -1
	p, err := Start(&spec)
	if err != nil {
		return "", err
	}
	defer p.Close()
	if err := p.Release(); err != nil {
		p.Kill()
		p.Wait()
		return "", err
	}
	werr := p.Wait()
	b, _ := os.ReadFile(outPath)
	return string(b), werr
}

func TestSandboxBasics(t *testing.T) {
	requireSandbox(t)
	for _, userNS := range []bool{false, true} {
		t.Run(map[bool]string{false: "root", true: "userns"}[userNS], func(t *testing.T) {
			out, err := runScript(t, Spec{UserNS: userNS, HostID: FirstID + 7}, `
id -u; id -g
echo pid=$$
ls /
cat /proc/self/status | grep -E '^(CapEff|CapPrm|CapBnd|NoNewPrivs|Seccomp):'
touch /var/task/x 2>&1 || echo task-ro
echo hi > /tmp/f && cat /tmp/f
ls /root 2>&1 || true
`)
			t.Logf("out:\n%s", out)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(out, "pid=1\n") {
				t.Errorf("not PID 1")
			}
		})
	}
}

func BenchmarkStartRelease(b *testing.B) {
	requireSandbox(b)
	dir := b.TempDir()
	code := filepath.Join(dir, "code")
	os.Mkdir(code, 0o755)
	out, _ := os.Create(filepath.Join(dir, "out"))
	defer out.Close()
	for i := 0; i < b.N; i++ {
		root := filepath.Join(dir, "root"+strings.Repeat("x", 0)+string(rune('a'+i%26))+itoa(i))
		os.Mkdir(root, 0o700)
		p, err := Start(&Spec{Root: root, Code: code, Path: "/bin/true", Output: out, ID: FirstID + 1, CgroupFD: -1})
		if err != nil {
			b.Fatal(err)
		}
		ln, err := p.Listen("127.0.0.1:9001")
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Release(); err != nil {
			b.Fatal(err)
		}
		p.Wait()
		ln.Close()
		p.Close()
	}
}

func itoa(i int) string { return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+i%10))) + string(rune('0'+(i/10)%10)) + string(rune('0'+(i/100)%10)) }
