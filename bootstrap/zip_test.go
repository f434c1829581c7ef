package bootstrap

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"strings"
	"testing"
)

func testExe() []byte { return []byte("#!/bin/sh\n" + strings.Repeat("echo gust\n", 1000)) }

func TestZipIsDeterministic(t *testing.T) {
	a, err := Zip(testExe())
	if err != nil {
		t.Fatal(err)
	}
	b, err := Zip(testExe())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Fatal("zipping the same executable twice gave different packages")
	}
	c, err := Zip(append(testExe(), '\n'))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a, c) {
		t.Fatal("different executables gave the same package")
	}
}

// TestZipIsPinned pins the package of a fixed executable. The hash is the
// one gust's deploy activity produced before the local cloud shared this
// zipper (activities.BootstrapZip, Deflate), so functions deployed through
// gust keep their code hash. A failure after a Go upgrade means
// compress/flate's output changed: code hashes change once with it, and
// the new value belongs here after checking nothing else changed.
func TestZipIsPinned(t *testing.T) {
	z, err := Zip(testExe())
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(z)
	if got, want := hex.EncodeToString(sum[:]), "37d0f9c847508689930ec69214fa09a364e1fa4f95ceb87123eb474dc84d848b"; got != want {
		t.Fatalf("sha256 of the package is %s, want %s", got, want)
	}
}

func TestZipHoldsTheExecutableAsBootstrap(t *testing.T) {
	exe := testExe()
	z, err := Zip(exe)
	if err != nil {
		t.Fatal(err)
	}
	if len(z) >= len(exe) {
		t.Errorf("package is %d bytes for a %d byte executable: not compressed", len(z), len(exe))
	}
	zr, err := zip.NewReader(bytes.NewReader(z), int64(len(z)))
	if err != nil {
		t.Fatal(err)
	}
	if len(zr.File) != 1 {
		t.Fatalf("package has %d files, want 1", len(zr.File))
	}
	f := zr.File[0]
	if f.Name != FileName || f.Method != zip.Deflate {
		t.Errorf("entry %q method %d, want %q Deflate", f.Name, f.Method, FileName)
	}
	if mode := f.Mode(); mode.Perm() != 0o755 || !mode.IsRegular() {
		t.Errorf("mode %v, want a regular file with 0755", mode)
	}
	rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, exe) {
		t.Error("unzipped bootstrap differs from the executable")
	}
}
