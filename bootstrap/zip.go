// Package bootstrap wraps a function's executable as a Lambda deployment
// package: a zip holding it as bootstrap. The deploy activity and the local
// cloud both wrap bare executables, and must wrap them the same way, so the
// same executable has the same code hash whichever path deployed it.
package bootstrap

import (
	"archive/zip"
	"bytes"
	"fmt"
	"time"
)

// FileName is the executable's name in the package, which the provided
// runtimes (provided.al2023) run.
const FileName = "bootstrap"

// modified is the fixed timestamp of the zipped file: the zip format's
// earliest (1980-01-01), so no clock reaches the package.
var modified = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)

// Zip returns a zip holding exe as FileName, executable (mode 0755).
//
// The zip is deterministic: one entry, a fixed timestamp and mode, no
// extra fields, compressed with Deflate at archive/zip's default level.
// The same executable always gives the same bytes, and so the same
// sha256, for a given Go release; Go does not promise compress/flate's
// output across releases, so a toolchain upgrade may change a code hash
// once (TestZipIsPinned notices). Deflate rather than Store because the
// package is uploaded (to AWS, where the zipped size counts against
// Lambda's 50 MB limit) and Go executables shrink to about half.
func Zip(exe []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(exe)/2 + 512)
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: FileName, Method: zip.Deflate, Modified: modified}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return nil, fmt.Errorf("zipping bootstrap, %w", err)
	}
	if _, err := w.Write(exe); err != nil {
		return nil, fmt.Errorf("zipping bootstrap, %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("zipping bootstrap, %w", err)
	}
	return buf.Bytes(), nil
}
