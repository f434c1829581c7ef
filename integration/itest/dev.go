package itest

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Dev is a `gust dev` process that StartDev started. The process is
// killed when the test ends, whatever state it is in.
type Dev struct {
	// Address is the Temporal frontend's host:port.
	Address string
	// UI, Cloud and Gateway are the URLs of the Web UI, the local cloud
	// and the gateway.
	UI, Cloud, Gateway string

	cmd    *exec.Cmd
	stdout SyncBuffer
	done   chan struct{} // closed when the process has exited; err is set then
	err    error
}

// StartDev runs `gust dev` (the binary of GustBinary) on free ports for
// its frontend, Web UI, cloud and gateway, followed by args (a later flag
// overrides an earlier one, so args may turn the UI off with --ui-port 0),
// and waits until it prints that it is ready. It fails the test if gust
// dev exits first or is not ready within 90 seconds.
func StartDev(t testing.TB, args ...string) *Dev {
	t.Helper()
	port, ui, cloud, gw := FreePort(t), FreePort(t), FreePort(t), FreePort(t)
	args = append([]string{"dev", "--port", strconv.Itoa(port), "--ui-port", strconv.Itoa(ui), "--cloud-port", strconv.Itoa(cloud),
		"--gateway-port", strconv.Itoa(gw)}, args...)
	cmd := exec.Command(GustBinary(t), args...)
	pr, pw := io.Pipe()
	d := &Dev{
		Address: "127.0.0.1:" + strconv.Itoa(port), UI: "http://127.0.0.1:" + strconv.Itoa(ui),
		Cloud: "http://127.0.0.1:" + strconv.Itoa(cloud), Gateway: "http://127.0.0.1:" + strconv.Itoa(gw),
		cmd: cmd, done: make(chan struct{}),
	}
	var stderr SyncBuffer
	cmd.Stdout, cmd.Stderr = pw, &stderr
	require.NoError(t, cmd.Start())
	go func() {
		d.err = cmd.Wait()
		close(d.done)
		pw.Close()
	}()
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			d.stdout.Write([]byte(sc.Text() + "\n"))
			if strings.Contains(sc.Text(), "Press Ctrl+C") {
				close(ready)
			}
		}
	}()
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	select {
	case <-ready:
	case <-d.done:
		t.Fatalf("gust dev exited early: %v\nstderr: %s", d.err, stderr.String())
	case <-time.After(90 * time.Second):
		t.Fatalf("gust dev did not become ready; stderr: %s", stderr.String())
	}
	return d
}

// Stdout is what gust dev has printed so far.
func (d *Dev) Stdout() string { return d.stdout.String() }

// Stop sends SIGTERM and expects a clean exit (status 0) within 30
// seconds.
func (d *Dev) Stop(t testing.TB) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case <-d.done:
		require.NoError(t, d.err, "gust dev must exit 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("gust dev did not stop within 30s of SIGTERM")
	}
}

// Kill kills gust dev with SIGKILL and waits until it has exited.
func (d *Dev) Kill(t testing.TB) {
	t.Helper()
	require.NoError(t, d.cmd.Process.Kill())
	<-d.done
}

// SyncBuffer is a bytes.Buffer that a process's output may write to while
// the test reads it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
