package lambda

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/gust-dev/gust/bootstrap"
)

// function is one deployed function at one version. Values are immutable
// once published: an update stores a new *function, so an invocation that
// holds one sees a consistent configuration without locks.
type function struct {
	Tenant string
	Name   string
	// UID identifies this incarnation of the function. A function deleted
	// and created again under the same name gets a new UID, so environments
	// of the old one can never serve the new one.
	UID          string
	Version      int
	CodeSHA256   string // hex, names the code in the code store
	CodeSize     int64
	LastModified time.Time
	Config       functionConfig
}

// functionConfig is the part of a function stored as JSON, so adding a
// setting needs no schema change.
type functionConfig struct {
	TimeoutSec          int               `json:"timeout_sec"`
	MemoryMB            int               `json:"memory_mb"`
	Env                 map[string]string `json:"env,omitempty"`
	MaxEnvsPerSubTenant int               `json:"max_envs_per_subtenant,omitempty"`
	Tenancy             string            `json:"tenancy,omitempty"`
	Description         string            `json:"description,omitempty"`
	Role                string            `json:"role,omitempty"`
	Runtime             string            `json:"runtime,omitempty"`
	Handler             string            `json:"handler,omitempty"`
	Tags                map[string]string `json:"tags,omitempty"`
	// EphemeralMB is the size of the environment's /tmp (Lambda's
	// EphemeralStorage.Size); 0 means DefaultEphemeralMB.
	EphemeralMB int `json:"ephemeral_mb,omitempty"`
	// Egress is the function's network egress policy in its canonical form
	// (egress.Policy.String()); "" means none.
	Egress string `json:"egress,omitempty"`
}

type fnKey struct{ tenant, name string }

// store keeps function definitions in SQLite and code on disk. It is only
// touched by control-plane calls; invocations read the in-memory copy the
// Cloud keeps.
type store struct {
	db      *sql.DB
	codeDir string
	maxCode int64
}

const schema = `
CREATE TABLE IF NOT EXISTS functions (
	tenant        TEXT NOT NULL,
	name          TEXT NOT NULL,
	uid           TEXT NOT NULL,
	version       INTEGER NOT NULL,
	code_sha256   TEXT NOT NULL,
	code_size     INTEGER NOT NULL,
	last_modified TEXT NOT NULL,
	config        TEXT NOT NULL,
	PRIMARY KEY (tenant, name)
);`

func openStore(stateDir string, maxCode int64) (*store, error) {
	codeDir := filepath.Join(stateDir, "code")
	if err := os.MkdirAll(codeDir, 0o700); err != nil {
		return nil, fmt.Errorf("creating code dir, %w", err)
	}
	dsn := "file:" + filepath.Join(stateDir, "lambda.db") + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("opening lambda.db, %w", err)
	}
	// One connection: SQLite serialises writers anyway, and a single
	// connection avoids SQLITE_BUSY between our own goroutines.
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(schema + extraSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("creating schema, %w", err)
	}
	return &store{db: db, codeDir: codeDir, maxCode: maxCode}, nil
}

func (s *store) close() error { return s.db.Close() }

func (s *store) loadAll(ctx context.Context) ([]*function, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT tenant, name, uid, version, code_sha256, code_size, last_modified, config FROM functions`)
	if err != nil {
		return nil, fmt.Errorf("loading functions, %w", err)
	}
	defer rows.Close()
	var out []*function
	for rows.Next() {
		f := &function{}
		var lm, cfg string
		if err := rows.Scan(&f.Tenant, &f.Name, &f.UID, &f.Version, &f.CodeSHA256, &f.CodeSize, &lm, &cfg); err != nil {
			return nil, fmt.Errorf("scanning function, %w", err)
		}
		f.LastModified, _ = time.Parse(time.RFC3339Nano, lm)
		if err := json.Unmarshal([]byte(cfg), &f.Config); err != nil {
			return nil, fmt.Errorf("decoding config of %s/%s, %w", f.Tenant, f.Name, err)
		}
		out = append(out, f)
	}
	return out, rows.Err()
}

// put inserts or replaces f.
func (s *store) put(ctx context.Context, f *function) error {
	cfg, err := json.Marshal(f.Config)
	if err != nil {
		return fmt.Errorf("encoding config, %w", err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT OR REPLACE INTO functions
		(tenant, name, uid, version, code_sha256, code_size, last_modified, config) VALUES (?,?,?,?,?,?,?,?)`,
		f.Tenant, f.Name, f.UID, f.Version, f.CodeSHA256, f.CodeSize, f.LastModified.UTC().Format(time.RFC3339Nano), string(cfg))
	if err != nil {
		return fmt.Errorf("storing function %s, %w", f.Name, err)
	}
	return nil
}

func (s *store) delete(ctx context.Context, tenant, name string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM functions WHERE tenant = ? AND name = ?`, tenant, name); err != nil {
		return fmt.Errorf("deleting function %s, %w", name, err)
	}
	return nil
}

// Code storage. A package is normalised to a zip (a bare executable becomes
// a zip holding it as bootstrap), stored as code/<sha256>.zip, and extracted
// once into code/<sha256>/ from which environments link or copy it. Nothing
// refers back to the caller's files, so editing the source after a deploy
// changes nothing.

// putCode validates and stores a package and returns its hex sha256 and
// size. Errors are *apiError: bad code is the caller's fault.
func (s *store) putCode(pkg []byte) (string, int64, error) {
	if len(pkg) == 0 {
		return "", 0, errInvalidParameter("code is empty: send a zip with bootstrap at its root, or an executable")
	}
	// Checked before wrapping, so an oversized executable is refused
	// without compressing it; unpack bounds the unzipped size.
	if int64(len(pkg)) > s.maxCode {
		return "", 0, errTooLarge("code package is %d bytes, more than the %d allowed", len(pkg), s.maxCode)
	}
	if isExecutable(pkg) {
		var err error
		// Wrapped as gust's deploy activity wraps one, so an executable
		// has one code hash whichever way it was deployed.
		if pkg, err = bootstrap.Zip(pkg); err != nil {
			return "", 0, err
		}
	}
	sum := sha256.Sum256(pkg)
	sha := hex.EncodeToString(sum[:])
	dir := filepath.Join(s.codeDir, sha)
	zipPath := dir + ".zip"
	_, dirErr := os.Stat(dir)
	_, zipErr := os.Stat(zipPath)
	if dirErr == nil && zipErr == nil {
		return sha, int64(len(pkg)), nil // already stored and extracted
	}
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		return "", 0, errInvalidParameter("code is neither a zip file nor an executable (ELF or #!): %v", err)
	}
	// Unpack, which validates, before storing anything: a rejected package
	// leaves nothing behind.
	tmp, err := s.unpack(zr)
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	wroteZip := false
	if zipErr != nil {
		if err := writeFileAtomic(zipPath, pkg, 0o400); err != nil {
			return "", 0, err
		}
		wroteZip = true
	}
	if err := publishCode(tmp, dir); err != nil {
		if wroteZip {
			// Callers hold Cloud.ctl, so no other putCode of this code
			// can have come to rely on the zip meanwhile.
			_ = os.Remove(zipPath)
		}
		return "", 0, err
	}
	return sha, int64(len(pkg)), nil
}

// codePath returns the extracted code of sha, extracting it again from the
// stored zip if the directory went missing.
func (s *store) codePath(sha string) (string, error) {
	dir := filepath.Join(s.codeDir, sha)
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	zr, err := zip.OpenReader(filepath.Join(s.codeDir, sha+".zip"))
	if err != nil {
		return "", fmt.Errorf("opening stored code %s, %w", sha, err)
	}
	defer zr.Close()
	tmp, err := s.unpack(&zr.Reader)
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := publishCode(tmp, dir); err != nil {
		return "", err
	}
	return dir, nil
}

// unpack unpacks zr into a new temporary directory in the code store and
// returns it; the caller publishes it (publishCode) and removes what is
// left. On error nothing is left. It refuses anything that could escape
// the directory (absolute paths, "..", symlinks and other special files)
// and anything ambiguous: two entries of one name, or a name that is both
// a file and a directory. All of these are the package's fault, so they
// are *apiError; only the machine's own failures are not.
func (s *store) unpack(zr *zip.Reader) (_ string, err error) {
	tmp, err := os.MkdirTemp(s.codeDir, ".extract-")
	if err != nil {
		return "", fmt.Errorf("creating extraction dir, %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	// kinds records each cleaned name: an entry's ('f' file, 'd'
	// directory) or a directory only implied by an entry below it ('i').
	kinds := make(map[string]byte, len(zr.File))
	var total uint64
	hasBootstrap := false
	for _, f := range zr.File {
		name := f.Name
		clean := path.Clean(name)
		if strings.HasPrefix(name, "/") || clean == ".." || strings.HasPrefix(clean, "../") || strings.Contains(name, "\\") {
			return "", errInvalidParameter("code zip entry %q escapes the package root", name)
		}
		if strings.ContainsRune(name, 0) {
			return "", errInvalidParameter("code zip entry %q has a NUL byte in its name", name)
		}
		mode := f.Mode()
		if clean == "." {
			if mode.IsDir() {
				continue // the root itself
			}
			return "", errInvalidParameter("code zip entry %q names the package root, not a file", name)
		}
		if !mode.IsDir() && !mode.IsRegular() {
			return "", errInvalidParameter("code zip entry %q is not a regular file (symlinks are not supported)", name)
		}
		if err := claimName(kinds, clean, mode.IsDir()); err != nil {
			return "", err
		}
		if mode.IsDir() {
			if err := os.MkdirAll(filepath.Join(tmp, clean), 0o755); err != nil {
				return "", fmt.Errorf("extracting %s, %w", name, err)
			}
			continue
		}
		total += f.UncompressedSize64
		if total > uint64(s.maxCode) {
			return "", errTooLarge("unzipped code is more than the %d bytes allowed", s.maxCode)
		}
		perm := os.FileMode(0o444)
		if clean == "bootstrap" {
			hasBootstrap = true
			perm = 0o555 // Lambda needs it executable; zips made on Windows lose the bit
		} else if mode&0o111 != 0 {
			perm = 0o555
		}
		dst := filepath.Join(tmp, clean)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return "", fmt.Errorf("extracting %s, %w", name, err)
		}
		if err := extractFile(f, dst, perm, s.maxCode); err != nil {
			return "", err
		}
	}
	if !hasBootstrap {
		return "", errInvalidParameter("code zip has no bootstrap file at its root (the provided.al2023 runtime contract)")
	}
	return tmp, nil
}

// claimName records the cleaned entry name clean in kinds, refusing a
// second entry of that name and a name used both as a file and as a
// directory: unpacked, one would silently replace or break the other.
func claimName(kinds map[string]byte, clean string, isDir bool) error {
	switch kinds[clean] {
	case 'f', 'd':
		return errInvalidParameter("code zip has more than one entry named %q", clean)
	case 'i':
		if !isDir {
			return errInvalidParameter("code zip entry %q is both a file and a directory", clean)
		}
	}
	for dir := path.Dir(clean); dir != "."; dir = path.Dir(dir) {
		switch kinds[dir] {
		case 'f':
			return errInvalidParameter("code zip entry %q is both a file and a directory", dir)
		case 0:
			kinds[dir] = 'i'
		}
	}
	kinds[clean] = 'f'
	if isDir {
		kinds[clean] = 'd'
	}
	return nil
}

// publishCode makes the unpacked tmp the extracted code dir, atomically.
func publishCode(tmp, dir string) error {
	if err := os.Rename(tmp, dir); err != nil {
		if _, statErr := os.Stat(dir); statErr == nil {
			return nil // a concurrent extraction of the same code won the race
		}
		return fmt.Errorf("publishing extracted code, %w", err)
	}
	return nil
}

// removeCode deletes the stored zip and the extracted directory of sha. The
// caller holds Cloud.ctl, has checked that no function refers to sha (every
// putCode runs under ctl, and a function refers to its code from the moment
// it is published under ctl, so no deploy can be relying on it), and has
// locked sha in the pool, which no environment uses (releaseCode).
//
// Running environments would survive the removal either way: populateTask
// gives each its own task directory of hard links or copies (a sandbox
// shows that directory at /var/task), which outlive the cache's names. The
// lock is what keeps an environment that is starting from finding its
// code half gone.
func (s *store) removeCode(sha string) error {
	if !isSHA256Hex(sha) {
		return fmt.Errorf("removing code: %q is not a sha256", sha)
	}
	dir := filepath.Join(s.codeDir, sha)
	// The zip first: without it codePath cannot re-extract the directory.
	if err := os.Remove(dir + ".zip"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("removing code, %w", err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing code, %w", err)
	}
	return nil
}

// sweepCode removes the stored code of every sha256 not in keep, and what
// interrupted writes left (.extract-* and .tmp-*). Names it does not know
// are left alone. The caller holds Cloud.ctl.
func (s *store) sweepCode(keep map[string]bool) error {
	entries, err := os.ReadDir(s.codeDir)
	if err != nil {
		return fmt.Errorf("sweeping code, %w", err)
	}
	var errs []error
	for _, e := range entries {
		name := e.Name()
		if strings.HasPrefix(name, ".extract-") || strings.HasPrefix(name, ".tmp-") {
			if err := os.RemoveAll(filepath.Join(s.codeDir, name)); err != nil {
				errs = append(errs, fmt.Errorf("sweeping code, %w", err))
			}
			continue
		}
		if sha := strings.TrimSuffix(name, ".zip"); isSHA256Hex(sha) && !keep[sha] {
			if err := os.RemoveAll(filepath.Join(s.codeDir, name)); err != nil {
				errs = append(errs, fmt.Errorf("sweeping code, %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

func isSHA256Hex(s string) bool {
	if len(s) != 2*sha256.Size {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func extractFile(f *zip.File, dst string, perm os.FileMode, limit int64) error {
	rc, err := f.Open()
	if err != nil {
		return errInvalidParameter("reading code zip entry %q: %v", f.Name, err)
	}
	defer rc.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("extracting %s, %w", f.Name, err)
	}
	// The header's size can lie; bound what is actually written.
	n, err := io.Copy(out, io.LimitReader(rc, limit+1))
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		// Writing failed (a full disk, say): the machine's fault, and
		// the error names its paths.
		return fmt.Errorf("extracting %s, %w", f.Name, err)
	}
	if err != nil {
		return errInvalidParameter("reading code zip entry %q: %v", f.Name, err)
	}
	if n > limit {
		return errTooLarge("code zip entry %q is more than the %d bytes allowed", f.Name, limit)
	}
	return os.Chmod(dst, perm)
}

// isExecutable reports whether b looks like a bare executable rather than a
// zip: an ELF binary or a script with a #! line.
func isExecutable(b []byte) bool {
	return bytes.HasPrefix(b, []byte("\x7fELF")) || bytes.HasPrefix(b, []byte("#!"))
}

func writeFileAtomic(name string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".tmp-")
	if err != nil {
		return fmt.Errorf("storing %s, %w", filepath.Base(name), err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("storing %s, %w", filepath.Base(name), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("storing %s, %w", filepath.Base(name), err)
	}
	if err := os.Chmod(tmp.Name(), perm); err != nil {
		return fmt.Errorf("storing %s, %w", filepath.Base(name), err)
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return fmt.Errorf("storing %s, %w", filepath.Base(name), err)
	}
	return nil
}

// newID returns prefix followed by 16 random hex digits.
func newID(prefix string) string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return prefix + hex.EncodeToString(b[:])
}
