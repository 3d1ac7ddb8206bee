// The peer's own key-value store: a map split into shards, each behind its own mutex, as Go
// servers commonly shard a map to keep goroutines on different cores off one lock. It plays the
// part of servers/common/store.h for the C++ models (same semantics: binary-safe keys and values,
// every command atomic, multi-key commands holding every involved shard at once, memory bounded by
// --store-bytes with -OOM for a write that does not fit), but in this process's heap: no other
// process shares it, so none of the C++ store's repair after a dead process is needed here.
package main

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// Status is what a store operation did.
type Status int

const (
	OK         Status = iota
	NotWritten        // a conditional write's condition was false; nothing changed
	OOM               // it would take the store past --store-bytes; nothing changed
)

// SetIf is SET's condition.
type SetIf int

const (
	Always  SetIf = iota
	Absent        // NX
	Present       // XX
)

const shardCount = 32

// entryOverhead is what a key costs beyond its bytes, for --store-bytes: the map slot with its
// string and slice headers, and the allocator's rounding, roughly.
const entryOverhead = 64

type shard struct {
	mu sync.Mutex
	m  map[string][]byte
	_  [40]byte // keep neighbouring shards' locks off one cache line
}

// Store is safe for use by many goroutines. Stored values are never modified in place (a write
// replaces the slice), so a value read under the lock may be used after it is released.
type Store struct {
	seed   maphash.Seed
	limit  int64
	used   atomic.Int64
	shards [shardCount]shard
}

func NewStore(limitBytes int64) *Store {
	s := &Store{seed: maphash.MakeSeed(), limit: limitBytes}
	for i := range s.shards {
		s.shards[i].m = make(map[string][]byte)
	}
	return s
}

func cost(key string, value []byte) int64 {
	return int64(len(key) + len(value) + entryOverhead)
}

func (s *Store) shardIndex(key string) int {
	return int(maphash.String(s.seed, key) % shardCount)
}

func (s *Store) shardFor(key string) *shard { return &s.shards[s.shardIndex(key)] }

// reserve takes delta bytes of the budget (or gives them back when negative); false, and nothing
// taken, when they do not fit.
func (s *Store) reserve(delta int64) bool {
	for {
		used := s.used.Load()
		if delta > 0 && used+delta > s.limit {
			return false
		}
		if s.used.CompareAndSwap(used, used+delta) {
			return true
		}
	}
}

// put stores value under key in a locked shard, within the budget.
func (s *Store) put(sh *shard, key string, value []byte) Status {
	delta := cost(key, value)
	if old, ok := sh.m[key]; ok {
		delta -= cost(key, old)
	}
	if !s.reserve(delta) {
		return OOM
	}
	sh.m[key] = value
	return OK
}

func (s *Store) remove(sh *shard, key string) bool {
	old, ok := sh.m[key]
	if ok {
		delete(sh.m, key)
		s.reserve(-cost(key, old))
	}
	return ok
}

func (s *Store) Get(key string) ([]byte, bool) {
	sh := s.shardFor(key)
	sh.mu.Lock()
	v, ok := sh.m[key]
	sh.mu.Unlock()
	return v, ok
}

// Set writes value if the condition holds, and returns the previous value: OK, NotWritten or OOM.
func (s *Store) Set(key string, value []byte, cond SetIf) (old []byte, hadOld bool, st Status) {
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	old, hadOld = sh.m[key]
	if (cond == Absent && hadOld) || (cond == Present && !hadOld) {
		return old, hadOld, NotWritten
	}
	return old, hadOld, s.put(sh, key, value)
}

// Update runs edit under the key's lock on the current value (nil, false when missing); edit
// returns the replacement and true to store it, or false to leave the key as it is (a read, or an
// edit refused: its reply is the caller's). OK, or OOM when the replacement does not fit.
func (s *Store) Update(key string, edit func(current []byte, exists bool) ([]byte, bool)) Status {
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	current, exists := sh.m[key]
	replacement, write := edit(current, exists)
	if !write {
		return OK
	}
	return s.put(sh, key, replacement)
}

func (s *Store) GetDel(key string) ([]byte, bool) {
	sh := s.shardFor(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	v, ok := sh.m[key]
	if ok {
		s.remove(sh, key)
	}
	return v, ok
}

// lockKeys locks the shard of every key, in shard order (so two multi-key commands never
// deadlock), and returns the unlock.
func (s *Store) lockKeys(keys []string) func() {
	var wanted [shardCount]bool
	for _, k := range keys {
		wanted[s.shardIndex(k)] = true
	}
	var locked []*shard
	for i := range s.shards {
		if wanted[i] {
			s.shards[i].mu.Lock()
			locked = append(locked, &s.shards[i])
		}
	}
	return func() {
		for _, sh := range locked {
			sh.mu.Unlock()
		}
	}
}

// MultiGet returns each key's value, and whether it exists.
func (s *Store) MultiGet(keys []string) ([][]byte, []bool) {
	defer s.lockKeys(keys)()
	values, found := make([][]byte, len(keys)), make([]bool, len(keys))
	for i, k := range keys {
		values[i], found[i] = s.shardFor(k).m[k]
	}
	return values, found
}

// MultiSet writes every pair or none: OK; NotWritten when onlyIfAllAbsent and a key exists
// (MSETNX); OOM when they do not all fit (the budget is taken before the first write). A key given
// twice takes its last value, as in Redis.
func (s *Store) MultiSet(keys []string, values [][]byte, onlyIfAllAbsent bool) Status {
	defer s.lockKeys(keys)()
	last := make(map[string]int, len(keys))
	for i, k := range keys {
		last[k] = i
	}
	var delta int64
	for k, i := range last {
		old, exists := s.shardFor(k).m[k]
		if exists && onlyIfAllAbsent {
			return NotWritten
		}
		delta += cost(k, values[i])
		if exists {
			delta -= cost(k, old)
		}
	}
	if !s.reserve(delta) {
		return OOM
	}
	for k, i := range last {
		s.shardFor(k).m[k] = values[i]
	}
	return OK
}

// CountExisting counts how many of keys exist, a key counted as often as it is given (EXISTS).
func (s *Store) CountExisting(keys []string) int {
	defer s.lockKeys(keys)()
	n := 0
	for _, k := range keys {
		if _, ok := s.shardFor(k).m[k]; ok {
			n++
		}
	}
	return n
}

// Delete removes the keys and returns how many existed (DEL, UNLINK).
func (s *Store) Delete(keys []string) int {
	defer s.lockKeys(keys)()
	n := 0
	for _, k := range keys {
		if s.remove(s.shardFor(k), k) {
			n++
		}
	}
	return n
}

// Clear removes every key, with every shard locked (FLUSHALL, FLUSHDB).
func (s *Store) Clear() {
	for i := range s.shards {
		s.shards[i].mu.Lock()
	}
	for i := range s.shards {
		sh := &s.shards[i]
		for k, v := range sh.m {
			s.reserve(-cost(k, v))
		}
		sh.m = make(map[string][]byte)
	}
	for i := range s.shards {
		s.shards[i].mu.Unlock()
	}
}

// Len is the number of keys, each shard locked in turn.
func (s *Store) Len() int {
	n := 0
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		n += len(sh.m)
		sh.mu.Unlock()
	}
	return n
}
