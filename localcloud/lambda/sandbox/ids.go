package sandbox

import (
	"errors"
	"math/rand/v2"
	"sync"
)

// IDs hands out the ids sandboxes run as, FirstID to FirstID+NumIDs-1. Ids
// come from one pool per process, so they are unique among every live
// sandbox of the process, whichever IDs handed them out; an id goes back
// with Put only once its sandbox's processes are gone. Ids are handed out
// round-robin from a random start, so a freed id is the last to be reused
// and two gust processes on one machine are unlikely to meet.
//
// The zero IDs is ready to use; InUse counts the ids it handed out.
type IDs struct {
	mu   sync.Mutex
	mine map[int]bool // guarded by mu
}

// ErrNoIDs is returned when every id of the range is in use.
var ErrNoIDs = errors.New("sandbox: every uid of the sandbox range is in use")

// pool is the process's ids.
var pool struct {
	mu      sync.Mutex
	used    map[int]bool // guarded by mu
	next    int          // guarded by mu: offset of the next id to try
	started bool         // guarded by mu
}

// Get returns a free id.
func (a *IDs) Get() (int, error) {
	pool.mu.Lock()
	if !pool.started {
		pool.used, pool.next, pool.started = make(map[int]bool), rand.IntN(NumIDs), true
	}
	if len(pool.used) >= NumIDs {
		pool.mu.Unlock()
		return 0, ErrNoIDs
	}
	var id int
	for {
		id = FirstID + pool.next
		pool.next = (pool.next + 1) % NumIDs
		if !pool.used[id] {
			pool.used[id] = true
			break
		}
	}
	pool.mu.Unlock()
	a.mu.Lock()
	if a.mine == nil {
		a.mine = make(map[int]bool)
	}
	a.mine[id] = true
	a.mu.Unlock()
	return id, nil
}

// Put returns id to the pool.
func (a *IDs) Put(id int) {
	a.mu.Lock()
	delete(a.mine, id)
	a.mu.Unlock()
	pool.mu.Lock()
	delete(pool.used, id)
	pool.mu.Unlock()
}

// InUse reports how many ids a has handed out and not taken back.
func (a *IDs) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.mine)
}
