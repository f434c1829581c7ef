package sandbox

import (
	"errors"
	"sync"
)

// IDs hands out the ids sandboxes run as, FirstID to FirstID+NumIDs-1, each
// to one live sandbox at a time. An id goes back with Put only once its
// sandbox's processes are gone, so two live sandboxes never share one. Ids
// are handed out round-robin, so a freed id is the last to be reused.
type IDs struct {
	mu   sync.Mutex
	used map[int]bool // guarded by mu
	next int          // guarded by mu: offset of the next id to try
}

// ErrNoIDs is returned when every id of the range is in use.
var ErrNoIDs = errors.New("sandbox: every uid of the sandbox range is in use")

// Get returns a free id.
func (a *IDs) Get() (int, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.used == nil {
		a.used = make(map[int]bool)
	}
	if len(a.used) >= NumIDs {
		return 0, ErrNoIDs
	}
	for {
		id := FirstID + a.next
		a.next = (a.next + 1) % NumIDs
		if !a.used[id] {
			a.used[id] = true
			return id, nil
		}
	}
}

// Put returns id to the range.
func (a *IDs) Put(id int) {
	a.mu.Lock()
	delete(a.used, id)
	a.mu.Unlock()
}

// InUse reports how many ids are handed out.
func (a *IDs) InUse() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.used)
}
