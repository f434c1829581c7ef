// Package sample is gust's echo function: a small Lambda handler whose
// response describes the execution environment that ran it. The local cloud's
// tests build it as a real aws-lambda-go bootstrap, and the gust binary runs
// it in its hidden handler mode (awslambda.Start(sample.Handle)) for the demo,
// so no separate build is needed there.
//
// It depends only on the standard library and aws-lambda-go's lambdacontext,
// so importing it keeps the gust binary light.
package sample

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// Request is the echo function's input. Every field is optional; an empty
// payload just reports the environment.
type Request struct {
	// SleepMS delays the response, to hold an environment busy or to run
	// past the function's timeout.
	SleepMS int `json:"sleep_ms,omitempty"`
	// UntilFile blocks until a file exists at this path (at most a
	// minute), then removes it: lets a test hold an environment busy
	// exactly as long as it needs, and leaves nothing behind.
	UntilFile string `json:"until_file,omitempty"`
	// Exit, when non-zero, makes the process exit with this status before
	// responding: a crash mid-invocation.
	Exit int `json:"exit,omitempty"`
	// Error, when set, makes the handler return an *EchoError with this
	// message: a handled function error.
	Error string `json:"error,omitempty"`
	// Panic, when set, makes the handler panic with this message.
	Panic string `json:"panic,omitempty"`
	// Stdout and Stderr are printed before responding, to exercise log
	// capture.
	Stdout string `json:"stdout,omitempty"`
	Stderr string `json:"stderr,omitempty"`
	// Env lists environment variable names to report; "*" reports all.
	Env []string `json:"env,omitempty"`
	// WriteTmp creates a file of this name in TMPDIR, to show that /tmp is
	// per environment.
	WriteTmp string `json:"write_tmp,omitempty"`
	// AllocMB allocates and touches this many MiB, to exercise memory limits.
	AllocMB int `json:"alloc_mb,omitempty"`
	// Echo is returned as is.
	Echo json.RawMessage `json:"echo,omitempty"`
}

// Response describes the invocation and the environment that served it.
type Response struct {
	TenantID        string `json:"tenant_id"`
	RequestID       string `json:"request_id"`
	FunctionName    string `json:"function_name"`
	FunctionVersion string `json:"function_version"`
	PID             int    `json:"pid"`
	// EnvironmentID is the environment the process belongs to, as the
	// local cloud told it (GUST_ENVIRONMENT_ID); UID is the uid it runs as.
	EnvironmentID string `json:"environment_id,omitempty"`
	UID           int    `json:"uid"`
	// Invocations counts the invocations this process has served, this one
	// included: 1 means a cold start.
	Invocations int64             `json:"invocations"`
	Cwd         string            `json:"cwd"`
	TmpDir      string            `json:"tmpdir"`
	TmpFiles    []string          `json:"tmp_files"`
	Env         map[string]string `json:"env,omitempty"`
	Echo        json.RawMessage   `json:"echo,omitempty"`
}

// EchoError is the error the handler returns when asked to; the Lambda
// runtime reports its type name, "EchoError", as the errorType.
type EchoError struct{ Message string }

func (e *EchoError) Error() string { return e.Message }

// invocations is per process, so it tells environments apart from one
// another and cold starts from warm ones.
var invocations atomic.Int64

// Handle is the echo handler, with the signature aws-lambda-go's Start takes.
func Handle(ctx context.Context, ev json.RawMessage) (any, error) {
	n := invocations.Add(1)
	var req Request
	if len(ev) > 0 && string(ev) != "null" {
		if err := json.Unmarshal(ev, &req); err != nil {
			// A payload that is not an object is still echoed: the handler
			// must accept any JSON the caller sends.
			req = Request{Echo: ev}
		}
	}
	if req.Stdout != "" {
		fmt.Fprintln(os.Stdout, req.Stdout)
	}
	if req.Stderr != "" {
		fmt.Fprintln(os.Stderr, req.Stderr)
	}
	if req.AllocMB > 0 {
		b := make([]byte, req.AllocMB<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		_ = b[len(b)-1]
	}
	if req.SleepMS > 0 {
		// Sleep regardless of ctx's deadline on purpose: the platform, not
		// the handler, must enforce the timeout.
		time.Sleep(time.Duration(req.SleepMS) * time.Millisecond)
	}
	if req.UntilFile != "" {
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
			if _, err := os.Stat(req.UntilFile); err == nil {
				_ = os.Remove(req.UntilFile)
				break
			}
		}
	}
	if req.Exit != 0 {
		os.Exit(req.Exit)
	}
	if req.Panic != "" {
		panic(req.Panic)
	}
	if req.Error != "" {
		return nil, &EchoError{Message: req.Error}
	}

	tmp := os.TempDir()
	if req.WriteTmp != "" {
		if err := os.WriteFile(filepath.Join(tmp, filepath.Base(req.WriteTmp)), []byte("x"), 0o600); err != nil {
			return nil, fmt.Errorf("writing to tmp, %w", err)
		}
	}
	resp := Response{
		FunctionName:    lambdacontext.FunctionName,
		FunctionVersion: lambdacontext.FunctionVersion,
		PID:             os.Getpid(),
		EnvironmentID:   os.Getenv("GUST_ENVIRONMENT_ID"),
		UID:             os.Getuid(),
		Invocations:     n,
		TmpDir:          tmp,
		Echo:            req.Echo,
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		resp.TenantID = lc.TenantID
		resp.RequestID = lc.AwsRequestID
	}
	resp.Cwd, _ = os.Getwd()
	if entries, err := os.ReadDir(tmp); err == nil {
		resp.TmpFiles = make([]string, 0, len(entries))
		for _, e := range entries {
			resp.TmpFiles = append(resp.TmpFiles, e.Name())
		}
	}
	if len(req.Env) > 0 {
		resp.Env = map[string]string{}
		for _, k := range req.Env {
			if k == "*" {
				for _, kv := range os.Environ() {
					for i := 0; i < len(kv); i++ {
						if kv[i] == '=' {
							resp.Env[kv[:i]] = kv[i+1:]
							break
						}
					}
				}
				continue
			}
			if v, ok := os.LookupEnv(k); ok {
				resp.Env[k] = v
			}
		}
	}
	sort.Strings(resp.TmpFiles)
	return resp, nil
}
