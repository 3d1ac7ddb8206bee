// Internal to the store: only store.cc and store_shard.cc include this header. Models use
// store.h, never this.
//
// One shard of the Store: a chained hash table of our own, with its robust lock, placed in the
// shared segment together with the segment's allocator, whose lock is robust too. The shard's code,
// and what a process that dies at any instant in it can cost, are in store_shard.cc; the Store's
// operations, which lock shards and call into them, in store.cc.
#ifndef SWITCHYARD_SERVERS_COMMON_STORE_SHARD_H_
#define SWITCHYARD_SERVERS_COMMON_STORE_SHARD_H_

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <new>
#include <string_view>

#include "servers/common/robust_mutex.h"
#include "servers/common/store.h"

// Boost lives in /usr/include, a system directory, so its headers' own warnings are suppressed.
#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/offset_ptr.hpp>

namespace switchyard {
namespace store_internal {

namespace bip = boost::interprocess;

// This process's crash point, for tests (Store::CrashAtForTest); defined in store_shard.cc.
extern Store::CrashPoint g_crash_point;

// Kills this process with SIGKILL, holding whatever it holds, if a test asked for `point`.
inline void CrashIfAt(Store::CrashPoint point) {
  if (g_crash_point != point) [[likely]]
    return;
  kill(getpid(), SIGKILL);
  for (;;) pause();  // SIGKILL is delivered before kill() returns; this only reassures the reader
}

// Thrown by the allocator's lock instead of entering a free-block tree that may be damaged. It
// crosses Boost's allocate/deallocate (neither catches, neither is noexcept, and nothing is held
// when it is thrown) and is caught in store.cc and store_shard.cc.
struct AllocatorDamaged {};

// The segment allocator's locks, robust (see store_shard.cc). Boost asks a "mutex family" for
// both; it builds this one inside the segment, where every process sees the same `damaged` flag.
struct AllocatorMutex : RobustMutex {
  AllocatorMutex() : RobustMutex(/*recursive=*/false) { t_last_built = this; }
  void lock();

  std::atomic<bool> damaged{false};  // lock-free, so it works across processes
  // Boost keeps the allocator's header (and this mutex) private; Store::Impl picks the address up
  // from here just after it builds its segment, in the same thread.
  static thread_local AllocatorMutex* t_last_built;
};
// Only for named objects and construction, which happen before any worker exists.
struct AllocatorRecursiveMutex : RobustMutex {
  AllocatorRecursiveMutex() : RobustMutex(/*recursive=*/true) {}
};
struct RobustMutexFamily {
  using mutex_type = AllocatorMutex;
  using recursive_mutex_type = AllocatorRecursiveMutex;
};

// One segment holds everything and its allocator is the memory bound. The mutex family makes it
// lock around every allocate/free (the default for an external buffer has no lock at all, which
// corrupts the heap as soon as two shards allocate at once).
using Segment = bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<RobustMutexFamily>,
                                                   bip::iset_index>;
using SegmentManager = Segment::segment_manager;

// offset_ptr stores an offset from itself, so the structures work at any mapping address; setting
// one is a single 8-byte store, which is what makes it a commit.
template <class T>
using Ptr = bip::offset_ptr<T>;

// Same-size overwrites up to this many bytes are made in place through the shard's redo record;
// longer ones allocate a new value.
constexpr std::size_t kInPlaceBytes = 64;

struct Value {
  std::uint64_t size;
  char* data() { return reinterpret_cast<char*>(this + 1); }
  std::string_view view() { return {data(), size}; }
};

struct Node {
  // A node is in the chains of one table at a time, through next[table->link]; a rehash links
  // the new table through the other one (see Store::Shard::Grow).
  Ptr<Node> next[2];
  Ptr<Value> value;
  std::uint64_t hash;
  std::uint64_t key_size;
  char* key() { return reinterpret_cast<char*>(this + 1); }
  bool Is(std::uint64_t h, std::string_view k) {
    return hash == h && std::string_view(key(), key_size) == k;
  }
};

struct Table {
  std::uint64_t bucket_count;  // a power of two
  std::uint32_t link;          // which Node::next this table's chains use
  Ptr<Node>* buckets() { return reinterpret_cast<Ptr<Node>*>(this + 1); }
  Ptr<Node>& BucketFor(std::uint64_t hash) { return buckets()[hash & (bucket_count - 1)]; }
};

}  // namespace store_internal

// Placed in the segment, so every member must be process-shared and address-independent.
struct Store::Shard {
  // The types above, by their short names.
  template <class T>
  using Ptr = store_internal::Ptr<T>;
  using Node = store_internal::Node;
  using Table = store_internal::Table;
  using Value = store_internal::Value;

  explicit Shard(store_internal::SegmentManager* manager) : segment_manager(manager) {}

  // Takes the lock, repairing the shard first if its last owner died holding it.
  std::unique_lock<RobustMutex> Lock() {
    if (mu.LockAndReportDeadOwner()) Repair();
    store_internal::CrashIfAt(CrashPoint::kShardLocked);
    return std::unique_lock<RobustMutex>(mu, std::adopt_lock);
  }

  // The link that points at the node holding `key`, or null. The caller holds the lock.
  Ptr<Node>* Find(std::uint64_t hash, std::string_view key) {
    Table* t = table.get();
    if (t == nullptr) return nullptr;
    for (Ptr<Node>* link = &t->BucketFor(hash); *link; link = &(*link)->next[t->link]) {
      if ((*link)->Is(hash, key)) return link;
    }
    return nullptr;
  }

  // Memory from the segment, or null when it does not fit. Throws AllocatorDamaged (the callers
  // make every change after their allocations, so a throw leaves the shard as it was).
  void* Allocate(std::size_t bytes) { return segment_manager->allocate(bytes, std::nothrow); }

  // Gives memory back, unless the allocator is damaged: then it stays allocated (see
  // store_shard.cc).
  void Free(void* memory);

  // A new value in the segment, or null when it does not fit. Needs no lock of the shard.
  Value* NewValue(std::string_view bytes);

  // Stores key=value with the strong guarantee: on kOom the shard is exactly as before. `fresh`
  // is the value already built outside the lock, or null; `node_memory` room for a new key's node
  // already taken (sizeof(Node) + key.size()), or null. Put owns both. The caller holds the lock.
  Status Put(std::uint64_t hash, std::string_view key, std::string_view value, Value* fresh,
             void* node_memory = nullptr);

  // Removes the key if present. The caller holds the lock.
  bool Remove(std::uint64_t hash, std::string_view key);

  // Removes every key, each with the same commit as Remove, then the bucket table.
  void RemoveAll();

  // Same size, so no allocation and it cannot fail; the redo record makes it all-or-nothing.
  void OverwriteInPlace(Value* target, std::string_view bytes);

  // Doubles the bucket table (or makes the first). If it does not fit, chains just grow longer.
  void Grow();

  // After a death under the lock: finish a recorded in-place copy (copying again what was
  // already copied is harmless) and recount the keys, whose count is updated after each commit.
  void Repair();

  RobustMutex mu;
  Ptr<store_internal::SegmentManager> segment_manager;
  Ptr<Table> table;        // null until the first key
  std::uint64_t size = 0;  // keys; may be off by one after a death until the repair
  // The redo record of an in-place overwrite: while redo_target is set, redo_bytes hold what it
  // must contain (its size is the target's own).
  Ptr<Value> redo_target;
  char redo_bytes[store_internal::kInPlaceBytes];
};

}  // namespace switchyard

#endif  // SWITCHYARD_SERVERS_COMMON_STORE_SHARD_H_
