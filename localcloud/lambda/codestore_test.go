package lambda_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/localcloud/lambda"
)

// codeFiles lists the code store: code/<sha256>.zip and code/<sha256>/ of
// every stored package, and anything else left there.
func codeFiles(t testing.TB, stateDir string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(stateDir, "code"))
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	slices.Sort(names)
	return names
}

// stored is what the code store holds for the packages of the given
// CodeSha256 values (base64, as the API reports them).
func stored(t testing.TB, codeSha256 ...*string) []string {
	t.Helper()
	var names []string
	for _, s := range codeSha256 {
		sum, err := base64.StdEncoding.DecodeString(aws.ToString(s))
		require.NoError(t, err)
		names = append(names, hex.EncodeToString(sum), hex.EncodeToString(sum)+".zip")
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// scriptZip returns a zip whose bootstrap is a shell script printing
// marker: distinct markers make distinct packages.
func scriptZip(t testing.TB, marker string) []byte {
	t.Helper()
	return zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\necho " + marker + "\n"})
}

func TestRejectedUploadsLeaveNothingBehind(t *testing.T) {
	h := newHarness(t, func(cfg *lambda.Config) { cfg.MaxCodeBytes = 64 << 10 })
	c := h.client("t1")
	ctx := context.Background()
	out := createFn(t, c, "keep", fnOpts{code: scriptZip(t, "keep")})
	before := codeFiles(t, h.cfg.StateDir)
	require.Equal(t, stored(t, out.CodeSha256), before)

	// Small zipped, too large unzipped: rejected only while extracting.
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	w, err := zw.Create("bootstrap")
	require.NoError(t, err)
	_, err = w.Write(make([]byte, 128<<10))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	require.Less(t, bomb.Len(), 64<<10)

	for name, code := range map[string][]byte{
		"not-zip":        []byte("just text"),
		"no-bootstrap":   zipOf(t, map[string]string{"handler": "x"}),
		"escape":         zipOf(t, map[string]string{"bootstrap": "#!/bin/sh\n", "../evil": "x"}),
		"duplicate":      zipWithEntries(t, "bootstrap", "bootstrap"),
		"too-large":      append([]byte("#!/bin/sh\n"), make([]byte, 64<<10)...),
		"unzipped-large": bomb.Bytes(),
	} {
		_, err := c.CreateFunction(ctx, &awslambda.CreateFunctionInput{FunctionName: aws.String(name),
			Role: aws.String("r"), Code: &types.FunctionCode{ZipFile: code}})
		var apiErr smithy.APIError
		require.ErrorAs(t, err, &apiErr, name)
		assert.NotEqual(t, "ServiceException", apiErr.ErrorCode(), "%s: %v", name, err)
		assert.Equal(t, before, codeFiles(t, h.cfg.StateDir), "CreateFunction %s", name)

		_, err = c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("keep"), ZipFile: code})
		require.ErrorAs(t, err, &apiErr, name)
		assert.Equal(t, before, codeFiles(t, h.cfg.StateDir), "UpdateFunctionCode %s", name)
	}

	// A dry run validates new code without keeping it.
	_, err = c.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("keep"),
		ZipFile: scriptZip(t, "dry"), DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, before, codeFiles(t, h.cfg.StateDir), "dry run")
}

func TestDeleteFunctionRemovesItsCode(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.client("tenant-a"), h.client("tenant-b")
	ctx := context.Background()
	shared := echoZip(t)
	one := createFn(t, a, "one", fnOpts{code: shared})
	createFn(t, b, "two", fnOpts{code: shared}) // another tenant, the same code
	own := createFn(t, a, "own", fnOpts{code: scriptZip(t, "own")})
	require.Equal(t, stored(t, one.CodeSha256, own.CodeSha256), codeFiles(t, h.cfg.StateDir))

	_, err := a.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("own")})
	require.NoError(t, err)
	assert.Equal(t, stored(t, one.CodeSha256), codeFiles(t, h.cfg.StateDir), "own's code is gone")

	_, err = a.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("one")})
	require.NoError(t, err)
	assert.Equal(t, stored(t, one.CodeSha256), codeFiles(t, h.cfg.StateDir), "tenant-b's two still runs it")
	r := mustInvoke(t, b, "two", "", nil)
	assert.Empty(t, r.fnError, "%v", r.errDoc)

	_, err = b.DeleteFunction(ctx, &awslambda.DeleteFunctionInput{FunctionName: aws.String("two")})
	require.NoError(t, err)
	assert.Empty(t, codeFiles(t, h.cfg.StateDir))
}

func TestUpdateFunctionCodeRemovesUnreferencedOldCode(t *testing.T) {
	h := newHarness(t, nil)
	a, b := h.client("tenant-a"), h.client("tenant-b")
	ctx := context.Background()
	shared := scriptZip(t, "v1")
	one := createFn(t, a, "one", fnOpts{tenancy: true, code: echoZip(t)})
	createFn(t, b, "two", fnOpts{code: shared})
	three := createFn(t, b, "three", fnOpts{code: shared})
	warm := mustInvoke(t, a, "one", "s", nil)

	// one's old code is unreferenced once replaced, and removed.
	upd, err := a.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("one"), ZipFile: echoBinary})
	require.NoError(t, err)
	assert.Equal(t, stored(t, upd.CodeSha256, three.CodeSha256), codeFiles(t, h.cfg.StateDir))
	assert.NotEqual(t, aws.ToString(one.CodeSha256), aws.ToString(upd.CodeSha256))
	r := mustInvoke(t, a, "one", "s", nil)
	assert.Equal(t, "2", r.resp.FunctionVersion)
	assert.NotEqual(t, warm.envID, r.envID)

	// two's old code is three's too: kept.
	upd2, err := b.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("two"), ZipFile: scriptZip(t, "v2")})
	require.NoError(t, err)
	assert.Equal(t, stored(t, upd.CodeSha256, three.CodeSha256, upd2.CodeSha256), codeFiles(t, h.cfg.StateDir))

	// Updating to the code it already runs removes nothing.
	_, err = b.UpdateFunctionCode(ctx, &awslambda.UpdateFunctionCodeInput{FunctionName: aws.String("three"), ZipFile: shared})
	require.NoError(t, err)
	assert.Equal(t, stored(t, upd.CodeSha256, three.CodeSha256, upd2.CodeSha256), codeFiles(t, h.cfg.StateDir))

	// A configuration change keeps the code.
	_, err = b.UpdateFunctionConfiguration(ctx, &awslambda.UpdateFunctionConfigurationInput{FunctionName: aws.String("three"),
		Description: aws.String("changed")})
	require.NoError(t, err)
	assert.Equal(t, stored(t, upd.CodeSha256, three.CodeSha256, upd2.CodeSha256), codeFiles(t, h.cfg.StateDir))
}

// TestCodeInUseIsRemovedWhenItsLastEnvironmentStops: replaced code that
// a busy environment still runs stays until that environment is gone: a
// sandbox shows the stored directory itself at /var/task.
func TestCodeInUseIsRemovedWhenItsLastEnvironmentStops(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	old := createFn(t, c, "echo", fnOpts{tenancy: true, timeout: 10, code: echoZip(t)})
	release := h.holdBusy(t, "t1", "echo", "busy", 1)

	upd, err := c.UpdateFunctionCode(context.Background(), &awslambda.UpdateFunctionCodeInput{
		FunctionName: aws.String("echo"), ZipFile: echoBinary})
	require.NoError(t, err)
	assert.Equal(t, stored(t, old.CodeSha256, upd.CodeSha256), codeFiles(t, h.cfg.StateDir), "in use: kept")

	release()
	eventually(t, func() bool {
		return slices.Equal(stored(t, upd.CodeSha256), codeFiles(t, h.cfg.StateDir))
	}, "the old code is removed once its last environment is gone")
	r := mustInvoke(t, c, "echo", "busy", nil)
	assert.Equal(t, "2", r.resp.FunctionVersion)
}

func TestOpenSweepsUnreferencedCode(t *testing.T) {
	dir := t.TempDir()
	c1, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	h1 := &harness{cloud: c1, url: newServer(t, c1), cfg: lambda.Config{StateDir: dir}}
	kept := createFn(t, h1.client("t1"), "keep", fnOpts{code: scriptZip(t, "keep")})
	require.NoError(t, c1.Close())

	// What a gust that stopped at the wrong moment, or failed to remove
	// code, leaves behind; and a file the store does not know.
	codeDir := filepath.Join(dir, "code")
	orphan := hex.EncodeToString(bytes.Repeat([]byte{0xab}, 32))
	require.NoError(t, os.WriteFile(filepath.Join(codeDir, orphan+".zip"), scriptZip(t, "orphan"), 0o400))
	require.NoError(t, os.MkdirAll(filepath.Join(codeDir, orphan, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(codeDir, orphan, "bootstrap"), nil, 0o555))
	require.NoError(t, os.MkdirAll(filepath.Join(codeDir, ".extract-123", "x"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(codeDir, ".tmp-456"), nil, 0o600))
	require.NoError(t, os.WriteFile(filepath.Join(codeDir, "NOTES"), nil, 0o600))

	c2, err := lambda.Open(lambda.Config{StateDir: dir})
	require.NoError(t, err)
	defer c2.Close()
	want := append(stored(t, kept.CodeSha256), "NOTES")
	slices.Sort(want)
	assert.Equal(t, want, codeFiles(t, dir))
	h2 := &harness{cloud: c2, url: newServer(t, c2)}
	r := mustInvoke(t, h2.client("t1"), "keep", "", nil)
	assert.Equal(t, "Runtime.ExitError", r.errDoc["errorType"], "the script ran (and exited, being no runtime)")
}
