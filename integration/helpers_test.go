// Package integration holds gust's end-to-end tests: the embedded Temporal
// server, the local cloud over HTTP, real worker processes, and the gust
// binary itself. Tests that need a Docker engine skip without one.
package integration

import (
	"database/sql"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/gust-dev/gust/integration/itest"
)

func writeForeignSQLite(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	require.NoError(t, err)
	defer db.Close()
	_, err = db.Exec(`CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('keep me')`)
	require.NoError(t, err)
}

func TestMain(m *testing.M) {
	code := m.Run()
	itest.Cleanup()
	os.Exit(code)
}
