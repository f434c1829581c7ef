package lambda_test

import (
	"crypto/sha256"
	"encoding/base64"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"

	"github.com/gust-dev/gust/bootstrap"
)

// TestBareExecutableIsZippedAsTheDeployActivityZipsIt deploys the same
// executable bare (the local cloud wraps it) and as bootstrap.Zip made it
// (as gust's deploy activity sends it): one code hash, one stored package,
// and that hash is the zip's sha256.
func TestBareExecutableIsZippedAsTheDeployActivityZipsIt(t *testing.T) {
	h := newHarness(t, nil)
	c := h.client("t1")
	zipped, err := bootstrap.Zip(echoBinary)
	require.NoError(t, err)

	bare := createFn(t, c, "bare", fnOpts{code: echoBinary})
	viaZip := createFn(t, c, "zipped", fnOpts{code: zipped})

	sum := sha256.Sum256(zipped)
	require.Equal(t, base64.StdEncoding.EncodeToString(sum[:]), aws.ToString(bare.CodeSha256))
	require.Equal(t, aws.ToString(bare.CodeSha256), aws.ToString(viaZip.CodeSha256))
	require.Equal(t, stored(t, bare.CodeSha256), codeFiles(t, h.cfg.StateDir))
}
