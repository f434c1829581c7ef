package sandbox

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"testing"
)

// TestInitImportsStayFew: the init takes over in a package init function,
// so every package Go initialises before it costs every sandbox's start. A
// package whose path sorts late (net, path/filepath, golang.org/x/...) lets
// most of gust's dependencies be initialised first: 60 ms and 362 packages
// in the gust binary, against 8 ms and about 100 with these imports. See
// package sys.
func TestInitImportsStayFew(t *testing.T) {
	allowed := map[string]bool{
		"encoding/binary": true, "encoding/json": true, "errors": true, "fmt": true, "io": true,
		"os": true, "runtime": true, "strconv": true, "strings": true, "syscall": true, "unsafe": true,
		"github.com/gust-dev/gust/localcloud/lambda/sandbox/internal/sys": true,
	}
	for _, dir := range []string{"internal/initproc", "internal/sys"} {
		files, err := filepath.Glob(filepath.Join(dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no sources in %s: %v", dir, err)
		}
		for _, f := range files {
			ast, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range ast.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				if !allowed[path] {
					t.Errorf("%s imports %s: the sandbox's init must import only %v", f, path, allowed)
				}
			}
		}
	}
}
