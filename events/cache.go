package events

import (
	"container/list"
	"sync"
)

// cache is a bounded least-recently-used map from a tenant's instance to
// its owner. Keys include the tenant: an instance id learned for one
// tenant never answers for another's queue.
type cache struct {
	mu    sync.Mutex
	size  int
	order *list.List // of *entry, most recently used first
	items map[key]*list.Element
}

type key struct{ tenant, id string }

type entry struct {
	key   key
	owner owner
}

func newCache(size int) *cache {
	return &cache{size: size, order: list.New(), items: map[key]*list.Element{}}
}

func (c *cache) get(tenant, id string) (owner, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[key{tenant, id}]
	if !ok {
		return owner{}, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*entry).owner, true
}

func (c *cache) put(tenant, id string, o owner) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key{tenant, id}
	if e, ok := c.items[k]; ok {
		e.Value.(*entry).owner = o
		c.order.MoveToFront(e)
		return
	}
	c.items[k] = c.order.PushFront(&entry{key: k, owner: o})
	for c.order.Len() > c.size {
		oldest := c.order.Back()
		c.order.Remove(oldest)
		delete(c.items, oldest.Value.(*entry).key)
	}
}

func (c *cache) entries() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
