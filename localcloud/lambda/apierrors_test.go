package lambda_test

import (
	"archive/zip"
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// zipWithEntries returns a zip of the named entries in order, duplicates
// included (archive/zip writes what it is given). Names ending in "/" are
// directories; files hold a shell script.
func zipWithEntries(t testing.TB, names ...string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, name := range names {
		w, err := zw.Create(name)
		require.NoError(t, err)
		if !strings.HasSuffix(name, "/") {
			_, err = w.Write([]byte("#!/bin/sh\n"))
			require.NoError(t, err)
		}
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestAmbiguousZipEntriesAreInvalid(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	ctx := context.Background()
	for name, entries := range map[string][]string{
		"two-bootstraps":   {"bootstrap", "bootstrap"},
		"cleaned-same":     {"a/../bootstrap", "bootstrap"},
		"dot-same":         {"bootstrap", "./bootstrap"},
		"lib-twice":        {"bootstrap", "lib/x.so", "lib//x.so"},
		"dir-twice":        {"bootstrap", "lib/", "lib/"},
		"file-then-dir":    {"bootstrap", "lib", "lib/x.so"},
		"dir-then-file":    {"bootstrap", "lib/x.so", "lib"},
		"file-then-subdir": {"bootstrap", "lib", "lib/sub/"},
		"file-at-root":     {"bootstrap", "lib/.."},
	} {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: zipWithEntries(t, entries...)}})
		var ip *types.InvalidParameterValueException
		require.ErrorAs(t, err, &ip, name)
		var re *awshttp.ResponseError
		require.ErrorAs(t, err, &re, name)
		assert.Equal(t, http.StatusBadRequest, re.HTTPStatusCode(), name)
		assert.NotContains(t, ip.ErrorMessage(), h.cfg.StateDir, name)
		if name == "two-bootstraps" || name == "cleaned-same" {
			assert.Equal(t, `code zip has more than one entry named "bootstrap"`, ip.ErrorMessage(), name)
		}
	}

	// Directories named before, after or without their files are fine.
	createFn(t, c, "dirs", fnOpts{code: zipWithEntries(t, "lib/", "lib/x.so", "bootstrap", "share/doc/a", "share/", "./")})
}

// syncBuffer is a bytes.Buffer safe for a logger and a test to share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var incidentRE = regexp.MustCompile(`\(incident ([0-9a-f]{8})\)$`)

// requireHiddenInternalError checks that err is a ServiceException that
// names an incident but no path, and that the log has the full error under
// that incident.
func requireHiddenInternalError(t *testing.T, stateDir string, logs *syncBuffer, err error) {
	t.Helper()
	var se *types.ServiceException
	require.ErrorAs(t, err, &se)
	msg := se.ErrorMessage()
	assert.NotContains(t, msg, "/", "no path in %q", msg)
	m := incidentRE.FindStringSubmatch(msg)
	require.NotNil(t, m, "an incident id in %q", msg)
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "incident="+m[1]) {
			assert.Contains(t, line, stateDir, "the log has the full error")
			return
		}
	}
	t.Fatalf("incident %s is not in the log:\n%s", m[1], logs.String())
}

func TestInternalErrorsHideMachinePaths(t *testing.T) {
	var logs syncBuffer
	h := newHarness(t, func(cfg *lambda.Config) {
		cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
		// No sandboxes prepared in the background: the test replaces the
		// environments' directory they are made in, and must not race them.
		cfg.WarmSandboxes = -1
	})
	c := h.client("t1")
	createFn(t, c, "echo", fnOpts{tenancy: true})

	// A bootstrap that cannot be executed is the function's error, and
	// says why without the environment's path.
	createFn(t, c, "broken", fnOpts{code: []byte("#!/nonexistent/interpreter\n")})
	r := mustInvoke(t, c, "broken", "", nil)
	assert.Equal(t, "Runtime.InvalidEntrypoint", r.errDoc["errorType"])
	assert.Contains(t, r.errDoc["errorMessage"], "bootstrap: no such file or directory")
	assert.NotContains(t, r.errDoc["errorMessage"], h.cfg.StateDir)

	// With the environments' directory a file, no environment can start.
	envs := filepath.Join(h.cfg.StateDir, "envs")
	require.NoError(t, os.RemoveAll(envs))
	require.NoError(t, os.WriteFile(envs, nil, 0o600))
	_, err := invoke(t, c, "echo", "s", nil)
	requireHiddenInternalError(t, h.cfg.StateDir, &logs, err)

	// With the code store a file, no code can be stored.
	code := filepath.Join(h.cfg.StateDir, "code")
	require.NoError(t, os.RemoveAll(code))
	require.NoError(t, os.WriteFile(code, nil, 0o600))
	_, err = c.CreateFunction(context.Background(), &awslambda.CreateFunctionInput{FunctionName: aws.String("new"),
		Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: scriptZip(t, "new")}})
	requireHiddenInternalError(t, h.cfg.StateDir, &logs, err)
}
