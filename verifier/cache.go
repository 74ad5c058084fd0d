package verifier

import (
	"hash/maphash"
	"strings"
	"sync"
	"time"
)

// cacheShards is the number of independently locked parts of the cache.
const cacheShards = 32

// entry is a verified token. It is immutable once stored.
type entry struct {
	claims    Claims
	notAfter  time.Time // exp + leeway: valid while now is before it
	notBefore time.Time // max(iat, nbf) - leeway: valid from it on
	kid       string
	key       Key // the key that verified the signature
}

// cache maps exact token strings to verified entries. It is bounded: when a
// shard is full, inserting evicts an expired entry if one of the first few
// visited is expired, otherwise a random one (Go map iteration starts at a
// random position), which is O(1).
type cache struct {
	seed     maphash.Seed
	perShard int
	shards   [cacheShards]cacheShard
}

type cacheShard struct {
	mu sync.RWMutex
	m  map[string]*entry
	_  [40]byte // keep shards on separate cache lines
}

func newCache(size int) *cache {
	c := &cache{seed: maphash.MakeSeed(), perShard: (size + cacheShards - 1) / cacheShards}
	for i := range c.shards {
		c.shards[i].m = make(map[string]*entry)
	}
	return c
}

func (c *cache) shard(token string) *cacheShard {
	return &c.shards[maphash.String(c.seed, token)&(cacheShards-1)]
}

func (c *cache) get(token string) *entry {
	s := c.shard(token)
	s.mu.RLock()
	e := s.m[token]
	s.mu.RUnlock()
	return e
}

func (c *cache) remove(token string) {
	s := c.shard(token)
	s.mu.Lock()
	delete(s.m, token)
	s.mu.Unlock()
}

func (c *cache) put(token string, e *entry, now time.Time) {
	s := c.shard(token)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[token]; ok {
		return
	}
	if len(s.m) >= c.perShard {
		var victim string
		i := 0
		for k, old := range s.m {
			if i == 0 {
				victim = k
			}
			if !now.Before(old.notAfter) {
				victim = k
				break
			}
			if i++; i == 8 {
				break
			}
		}
		delete(s.m, victim)
	}
	// Own the key: the caller's string may be part of a larger buffer.
	s.m[strings.Clone(token)] = e
}

func (c *cache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}
