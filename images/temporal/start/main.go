// Command temporal-start is the entrypoint of gust's Temporal image. It
// prepares the SQLite database that the server's config file names, then
// replaces itself with the production server (go.temporal.io/server/cmd/
// server, unmodified), so the container runs the server as its first
// process and signals reach it.
//
// It exists because that server does neither of the two preparations
// itself: it creates the SQLite schema only with the sqlite plugin's
// setup=true attribute, which on every start runs the whole schema script
// and swallows "table exists" errors, and it never registers a namespace.
// temporal-start creates the schema once, whole or not at all, and
// registers the namespaces idempotently, straight in the database before
// the server opens it, so no client has to wait for a frontend to call
// RegisterNamespace.
package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"go.temporal.io/server/common/config"
	sqliteplugin "go.temporal.io/server/common/persistence/sql/sqlplugin/sqlite"
	sqliteschema "go.temporal.io/server/schema/sqlite"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "temporal-start: %v\n", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("temporal-start", flag.ContinueOnError)
	configFile := fs.String("config-file", "/etc/temporal/config.yaml", "the server's config file")
	server := fs.String("server", "/usr/local/bin/temporal-server", "the Temporal server binary")
	namespaces := fs.String("namespaces", "default", "comma-separated namespaces to register")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := config.Load(config.WithConfigFile(*configFile))
	if err != nil {
		return fmt.Errorf("loading %s: %w", *configFile, err)
	}
	store, ok := cfg.Persistence.DataStores[cfg.Persistence.DefaultStore]
	if !ok || store.SQL == nil || store.SQL.PluginName != sqliteplugin.PluginName {
		return fmt.Errorf("%s: the default store must be sqlite", *configFile)
	}
	if err := ensureSchema(store.SQL); err != nil {
		return err
	}
	cluster := cfg.ClusterMetadata.CurrentClusterName
	var nss []*sqliteschema.NamespaceConfig
	for _, name := range strings.Split(*namespaces, ",") {
		if name = strings.TrimSpace(name); name == "" {
			continue
		}
		ns, err := sqliteschema.NewNamespaceConfig(cluster, name, false, nil)
		if err != nil {
			return fmt.Errorf("namespace %q: %w", name, err)
		}
		nss = append(nss, ns)
	}
	// CreateNamespaces skips the namespaces that exist, so every start
	// may run it.
	if err := sqliteschema.CreateNamespaces(store.SQL, nss...); err != nil {
		return fmt.Errorf("registering namespaces: %w", err)
	}
	argv := []string{*server, "--config-file", *configFile, "--allow-no-auth", "start"}
	if err := syscall.Exec(*server, argv, os.Environ()); err != nil {
		return fmt.Errorf("starting %s: %w", *server, err)
	}
	return nil
}

// ensureSchema creates the Temporal schema in a new database file: in a
// side file renamed into place only when complete, so a container killed
// half way never leaves a database without its tables. An existing file is
// left to the server.
func ensureSchema(conf *config.SQL) error {
	path := conf.DatabaseName
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("database %s: %w", path, err)
	}
	side := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".init")
	for _, f := range []string{side, side + "-wal", side + "-shm", side + "-journal"} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("removing %s left by an interrupted start: %w", f, err)
		}
	}
	sideConf := *conf
	sideConf.DatabaseName = side
	// A rollback journal, not the configured WAL: committed, the schema is
	// all in the side file, so renaming that file moves all of it (a WAL
	// would keep part of it in a -wal file that the rename leaves behind).
	sideConf.ConnectAttributes = map[string]string{"journal_mode": "delete"}
	for k, v := range conf.ConnectAttributes {
		if k != "journal_mode" {
			sideConf.ConnectAttributes[k] = v
		}
	}
	if err := sqliteschema.SetupSchema(&sideConf); err != nil {
		return fmt.Errorf("creating the temporal schema in %s: %w", path, err)
	}
	if err := os.Rename(side, path); err != nil {
		return fmt.Errorf("creating database %s: %w", path, err)
	}
	return nil
}
