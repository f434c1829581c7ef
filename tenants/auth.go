package tenants

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gust-dev/gust/tenants/sigv4"
)

// lastUseEvery is how often the last use of a key is written: at most once
// a minute per key, so verifying stays a read.
const lastUseEvery = time.Minute

// maxCached bounds each cache map: unknown key ids are cached too (so
// guessing costs no SQL), and a flood of them must not grow memory
// without bound.
const maxCached = 100_000

// keyEntry is a cached access key lookup. found false caches "unknown".
type keyEntry struct {
	found     bool
	key       sigv4.Key
	principal Principal
	expires   time.Time // zero: none
	session   bool
	// lastUsed is the last use recorded (Unix nanoseconds), to write it
	// at most once per lastUseEvery.
	lastUsed atomic.Int64
}

// kidEntry is a cached token signing key lookup.
type kidEntry struct {
	found   bool
	tenant  string
	secret  []byte
	expires time.Time // zero: current key
}

// cache holds key lookups. It is dropped whole when the file's
// data_version says another connection committed, and after this
// Registry's own writes; gen counts the drops so a lookup that read the
// database before a drop does not store its stale answer after it.
type cache struct {
	mu      sync.RWMutex
	gen     uint64
	version int64
	keys    map[string]*keyEntry
	kids    map[string]*kidEntry
}

func (c *cache) reset() {
	c.gen++
	c.keys = make(map[string]*keyEntry)
	c.kids = make(map[string]*kidEntry)
}

// invalidate drops the caches.
func (r *Registry) invalidate() {
	r.cache.mu.Lock()
	r.cache.reset()
	r.cache.mu.Unlock()
}

// syncEvery is how often a lookup reads data_version. Reading it starts a
// read transaction, which takes file locks (a few syscalls); once a
// millisecond keeps verification cheap under load, and a change another
// process commits still takes effect within about a millisecond.
const syncEvery = time.Millisecond

// sync drops the caches when another connection committed since the last
// check, and returns the cache generation to store answers under. Every
// lookup calls it; it reads data_version when the last read is older than
// syncEvery and no other goroutine is reading it. This Registry's own
// writes drop the caches at once, without waiting for it.
func (r *Registry) sync() (uint64, error) {
	since := time.Since(r.opened)
	if last := r.lastSync.Load(); since-time.Duration(last) < syncEvery || !r.verMu.TryLock() {
		r.cache.mu.RLock()
		gen := r.cache.gen
		r.cache.mu.RUnlock()
		return gen, nil
	}
	var v int64
	err := r.verStmt.QueryRow().Scan(&v)
	if err == nil {
		r.lastSync.Store(int64(time.Since(r.opened)))
	}
	r.verMu.Unlock()
	if err != nil {
		return 0, fmt.Errorf("tenant registry: reading data_version: %w", err)
	}
	r.cache.mu.RLock()
	gen, cur := r.cache.gen, r.cache.version
	r.cache.mu.RUnlock()
	if v == cur {
		return gen, nil
	}
	r.cache.mu.Lock()
	if r.cache.version != v {
		r.cache.reset()
		r.cache.version = v
	}
	gen = r.cache.gen
	r.cache.mu.Unlock()
	return gen, nil
}

// lookupKey returns the cached or stored entry of an access key id.
func (r *Registry) lookupKey(id string) (*keyEntry, error) {
	gen, err := r.sync()
	if err != nil {
		return nil, err
	}
	r.cache.mu.RLock()
	e := r.cache.keys[id]
	r.cache.mu.RUnlock()
	if e == nil {
		if e, err = r.loadKey(id); err != nil {
			return nil, err
		}
		r.cache.mu.Lock()
		if r.cache.gen == gen {
			if len(r.cache.keys) >= maxCached {
				r.cache.keys = make(map[string]*keyEntry)
			}
			r.cache.keys[id] = e
		}
		r.cache.mu.Unlock()
	}
	return e, nil
}

// loadKey reads an access key id from the file: a long-term key (AKIA…)
// or temporary credentials (ASIA…).
func (r *Registry) loadKey(id string) (*keyEntry, error) {
	ctx := context.Background()
	e := &keyEntry{}
	var expires, lastUsed int64
	var err error
	if strings.HasPrefix(id, "ASIA") {
		var roleARN, sessionName string
		err = r.db.QueryRowContext(ctx, `SELECT tenant, secret, session_token, role_arn, session_name, expires
			FROM sessions WHERE access_key_id = ?`, id).
			Scan(&e.principal.Tenant, &e.key.Secret, &e.key.SessionToken, &roleARN, &sessionName, &expires)
		e.principal.RoleARN, e.principal.SessionName, e.session = roleARN, sessionName, true
	} else {
		err = r.db.QueryRowContext(ctx, `SELECT tenant, secret, expires, last_used FROM access_keys WHERE access_key_id = ?`, id).
			Scan(&e.principal.Tenant, &e.key.Secret, &expires, &lastUsed)
		e.principal.Platform = e.principal.Tenant == ""
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return &keyEntry{}, nil
	case err != nil:
		return nil, fmt.Errorf("tenant registry: reading access key: %w", err)
	}
	e.found = true
	e.key = e.key.WithCache()
	e.principal.AccessKeyID = id
	e.expires = fromDB(expires)
	e.lastUsed.Store(lastUsed)
	return e, nil
}

// SigningKey implements sigv4.KeyStore. A key that does not exist, or has
// expired (checked against the clock on every call), is an error for
// which sigv4.IsUnknownKey is true.
func (r *Registry) SigningKey(accessKeyID string) (sigv4.Key, error) {
	e, err := r.usableKey(accessKeyID)
	if err != nil {
		return sigv4.Key{}, err
	}
	return e.key, nil
}

func (r *Registry) usableKey(id string) (*keyEntry, error) {
	e, err := r.lookupKey(id)
	if err != nil {
		return nil, err
	}
	if !e.found {
		return nil, sigv4.UnknownKeyError()
	}
	if !e.expires.IsZero() && !r.now().Before(e.expires) {
		if e.session {
			r.purgeLater()
		}
		return nil, sigv4.UnknownKeyError()
	}
	return e, nil
}

// Authenticate verifies req with SigV4 against the registry and returns
// who signed it. body is the whole body. Errors are *sigv4.Error (a
// failure of the file is KindInternal). It records the key's last use at
// most once a minute, off the request path.
func (r *Registry) Authenticate(req *http.Request, body []byte) (Principal, sigv4.Signed, error) {
	var used *keyEntry
	v := sigv4.Verifier{
		Keys: sigv4.KeyStoreFunc(func(id string) (sigv4.Key, error) {
			e, err := r.usableKey(id)
			if err != nil {
				return sigv4.Key{}, err
			}
			used = e
			return e.key, nil
		}),
		Now:     r.now,
		MaxSkew: r.maxSkew,
	}
	signed, err := v.Verify(req, body)
	if err != nil {
		return Principal{}, sigv4.Signed{}, err
	}
	if !used.session {
		r.noteUse(used, signed.AccessKeyID)
	}
	return used.principal, signed, nil
}

// touch is one last-use record for the background writer.
type touch struct {
	accessKeyID, tenant string
	at                  int64
}

// noteUse queues a last-use record when the key's last one is older than
// lastUseEvery. It never blocks: when the queue is full the record is
// dropped and the next use a minute later tries again.
func (r *Registry) noteUse(e *keyEntry, id string) {
	now := r.now().UnixNano()
	last := e.lastUsed.Load()
	if now-last < int64(lastUseEvery) || !e.lastUsed.CompareAndSwap(last, now) {
		return
	}
	select {
	case r.touches <- touch{accessKeyID: id, tenant: e.principal.Tenant, at: now}:
	default:
	}
}

// purgeLater asks the background writer to remove expired credentials.
func (r *Registry) purgeLater() {
	select {
	case r.touches <- touch{}:
	default:
	}
}

// recordLastUse writes queued last-use records in batches, and purges
// expired credentials when asked, until Close.
func (r *Registry) recordLastUse() {
	defer r.wg.Done()
	for {
		var first touch
		select {
		case first = <-r.touches:
		case <-r.done:
			// Flush what is queued, then stop.
			for {
				select {
				case t := <-r.touches:
					r.writeTouches([]touch{t})
				default:
					return
				}
			}
		}
		batch := []touch{first}
	drain:
		for len(batch) < 256 {
			select {
			case t := <-r.touches:
				batch = append(batch, t)
			default:
				break drain
			}
		}
		r.writeTouches(batch)
	}
}

func (r *Registry) writeTouches(batch []touch) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Errors are dropped: a lost last-use record is harmless, and the key
	// records again a minute later.
	_ = r.write(ctx, func(tx *sql.Tx) error {
		purge := false
		for _, t := range batch {
			if t.accessKeyID == "" {
				purge = true
				continue
			}
			if _, err := tx.ExecContext(ctx, `UPDATE access_keys SET last_used = ? WHERE access_key_id = ? AND last_used < ?`, t.at, t.accessKeyID, t.at); err != nil {
				return err
			}
			if t.tenant != "" {
				if _, err := tx.ExecContext(ctx, `UPDATE tenants SET last_used = ? WHERE name = ? AND last_used < ?`, t.at, t.tenant, t.at); err != nil {
					return err
				}
			}
		}
		if purge {
			_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE expires <= ?`, toDB(r.now()))
			return err
		}
		return nil
	})
}
