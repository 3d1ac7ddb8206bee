#include "servers/common/store.h"

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "servers/common/redis_int.h"
#include "servers/common/robust_mutex.h"

// Boost lives in /usr/include, a system directory, so its headers' own warnings are suppressed.
#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/offset_ptr.hpp>

// What a process that dies at any instant can cost.
//
// Shard locks. Each shard is a chained hash table of our own (not boost::unordered_map, whose
// inserts, erases and rehashes rewrite several links in turn and could not be repaired after a
// death halfway). Every update prepares its new memory first, then commits with one
// pointer-sized store, then tidies up:
//   insert   build the node, point it at the chain's head; commit: the head points at it; count
//   delete   commit: the previous link skips the node; count; free the node and its value
//   resize   build the new value (outside the lock when it is large); commit: the node points at
//            it; free the old value
//   rehash   build a larger bucket table whose chains use each node's other `next` link, so the
//            live chains are never touched; commit: the shard points at the new table; free the
//            old one
//   in place a same-size overwrite of up to kInPlaceBytes (INCR's counters): the new bytes go into
//            the shard's redo record first; commit: the record names its target; copy; clear it
// A death before a commit leaves the shard as it was; after it, as if the update was done. The
// next locker gets EOWNERDEAD (robust_mutex.h) and repairs the rest: it finishes a recorded
// in-place copy and recounts the keys. What can be lost: the one update the dead process was
// making (either it happened or it did not, never half), and the memory it had allocated but not
// linked or unlinked but not freed (at most a node and a value, or one bucket table); that
// memory stays allocated until the server stops. Each repair is logged and counted
// (Store::lock_recoveries()).
//
// The allocator. Boost's rbtree_best_fit guards its free-block tree with one lock for all shards.
// That lock is robust too, so a death inside it never wedges the store, but the tree itself is
// Boost's and cannot be checked or repaired: a process killed while it holds that lock (for the
// length of one allocation or free: a new key, a delete, a value that changes size) may have left
// the tree half-updated. So the first locker to find its owner dead marks the allocator damaged,
// in the lock itself (shared by every process), and from then on no process enters it again:
// writes that need new memory fail with Status::kAllocatorDamaged, memory a delete or an overwrite
// lets go is left allocated, and reads, deletes and in-place overwrites (same size, up to
// kInPlaceBytes: most INCRs) go on, until the server restarts with a fresh store. The data already
// stored stays readable: the shards never depend on the free-block tree.

namespace switchyard {
namespace {

namespace bip = boost::interprocess;

Store::CrashPoint g_crash_point = Store::CrashPoint::kNone;  // this process's, for tests

void CrashIfAt(Store::CrashPoint point) {
  if (g_crash_point != point) [[likely]]
    return;
  kill(getpid(), SIGKILL);
  for (;;) pause();  // SIGKILL is delivered before kill() returns; this only reassures the reader
}

// Keeps the compiler from moving the stores before a commit past it, or the commit before them: a
// process killed between two instructions leaves exactly the stores it executed, in program order
// (the stores of a dead thread still drain from its CPU's store buffer).
void Commit() { std::atomic_signal_fence(std::memory_order_seq_cst); }

// Thrown by the allocator's lock instead of entering a free-block tree that may be damaged. It
// crosses Boost's allocate/deallocate (neither catches, neither is noexcept, and nothing is held
// when it is thrown) and is caught in this file.
struct AllocatorDamaged {};

// The segment allocator's locks, robust (see above). Boost asks a "mutex family" for both; it
// builds this one inside the segment, where every process sees the same `damaged` flag.
struct AllocatorMutex : RobustMutex {
  AllocatorMutex() : RobustMutex(/*recursive=*/false) { t_last_built = this; }
  void lock() {
    if (damaged.load(std::memory_order_acquire)) throw AllocatorDamaged{};
    if (LockAndReportDeadOwner() && !damaged.exchange(true)) {
      std::cerr << "switchyard: store: a process died holding the allocator's lock, so the "
                   "allocator may be damaged; writes that need new memory are refused from now "
                   "on (reads, deletes and in-place overwrites go on). Restart the server to "
                   "write again.\n";
    }
    // Also for a locker that was already waiting here when the owner's death was found.
    if (damaged.load(std::memory_order_acquire)) {
      unlock();
      throw AllocatorDamaged{};
    }
    CrashIfAt(Store::CrashPoint::kAllocatorLocked);
  }

  std::atomic<bool> damaged{false};  // lock-free, so it works across processes
  // Boost keeps the allocator's header (and this mutex) private; Store::Impl picks the address up
  // from here just after it builds its segment, in the same thread.
  static thread_local AllocatorMutex* t_last_built;
};
thread_local AllocatorMutex* AllocatorMutex::t_last_built = nullptr;
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
constexpr std::uint64_t kInitialBuckets = 8;

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

std::uint64_t Hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

}  // namespace

// Placed in the segment, so every member must be process-shared and address-independent.
struct Store::Shard {
  explicit Shard(SegmentManager* manager) : segment_manager(manager) {}

  // Takes the lock, repairing the shard first if its last owner died holding it.
  std::unique_lock<RobustMutex> Lock() {
    if (mu.LockAndReportDeadOwner()) Repair();
    CrashIfAt(CrashPoint::kShardLocked);
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

  // Gives memory back, unless the allocator is damaged: then it stays allocated (see above).
  void Free(void* memory) {
    try {
      segment_manager->deallocate(memory);
    } catch (const AllocatorDamaged&) {
    }
  }

  // A new value in the segment, or null when it does not fit. Needs no lock of the shard.
  Value* NewValue(std::string_view bytes) {
    void* memory = Allocate(sizeof(Value) + bytes.size());
    if (memory == nullptr) return nullptr;
    Value* value = new (memory) Value{bytes.size()};
    std::memcpy(value->data(), bytes.data(), bytes.size());
    return value;
  }

  // Stores key=value with the strong guarantee: on kOom the shard is exactly as before. `fresh`
  // is the value already built outside the lock, or null; `node_memory` room for a new key's node
  // already taken (sizeof(Node) + key.size()), or null. Put owns both. The caller holds the lock.
  Status Put(std::uint64_t hash, std::string_view key, std::string_view value, Value* fresh,
             void* node_memory = nullptr) {
    if (Ptr<Node>* link = Find(hash, key)) {
      if (node_memory != nullptr) Free(node_memory);
      Node* node = link->get();
      Value* old = node->value.get();
      if (fresh == nullptr && old->size == value.size() && value.size() <= kInPlaceBytes) {
        OverwriteInPlace(old, value);
        return Status::kOk;
      }
      if (fresh == nullptr && (fresh = NewValue(value)) == nullptr) return Status::kOom;
      Commit();
      node->value = fresh;
      Commit();
      CrashIfAt(CrashPoint::kValueSwapped);
      Free(old);
      return Status::kOk;
    }
    if (table == nullptr || size >= table->bucket_count) Grow();
    void* memory = node_memory != nullptr ? node_memory : Allocate(sizeof(Node) + key.size());
    if (memory != nullptr && fresh == nullptr) fresh = NewValue(value);
    if (memory == nullptr || fresh == nullptr || table == nullptr) {
      if (memory != nullptr) Free(memory);
      if (fresh != nullptr) Free(fresh);
      return Status::kOom;
    }
    Node* node = new (memory) Node{{nullptr, nullptr}, fresh, hash, key.size()};
    std::memcpy(node->key(), key.data(), key.size());
    Ptr<Node>& head = table->BucketFor(hash);
    node->next[table->link] = head;
    Commit();
    CrashIfAt(CrashPoint::kInsertPrepared);
    head = node;
    Commit();
    CrashIfAt(CrashPoint::kInsertLinked);
    ++size;
    return Status::kOk;
  }

  // Removes the key if present. The caller holds the lock.
  bool Remove(std::uint64_t hash, std::string_view key) {
    Ptr<Node>* link = Find(hash, key);
    if (link == nullptr) return false;
    Node* node = link->get();
    *link = node->next[table->link];
    Commit();
    CrashIfAt(CrashPoint::kUnlinked);
    --size;
    Free(node->value.get());
    Free(node);
    return true;
  }

  // Removes every key, each with the same commit as Remove, then the bucket table.
  void RemoveAll() {
    Table* t = table.get();
    if (t == nullptr) return;
    for (std::uint64_t b = 0; b < t->bucket_count; ++b) {
      while (Node* node = t->buckets()[b].get()) {
        t->buckets()[b] = node->next[t->link];
        Commit();
        CrashIfAt(CrashPoint::kUnlinked);
        --size;
        Free(node->value.get());
        Free(node);
      }
    }
    table = nullptr;
    Commit();
    Free(t);
  }

  // Same size, so no allocation and it cannot fail; the redo record makes it all-or-nothing.
  void OverwriteInPlace(Value* target, std::string_view bytes) {
    std::memcpy(redo_bytes, bytes.data(), bytes.size());
    Commit();
    redo_target = target;  // from here on, a repair finishes the copy
    Commit();
    CrashIfAt(CrashPoint::kInPlaceLogged);
    const std::size_t half = bytes.size() / 2;
    std::memcpy(target->data(), bytes.data(), half);
    Commit();
    CrashIfAt(CrashPoint::kInPlaceHalfCopied);
    std::memcpy(target->data() + half, bytes.data() + half, bytes.size() - half);
    Commit();
    redo_target = nullptr;
  }

  // Doubles the bucket table (or makes the first). If it does not fit, chains just grow longer.
  void Grow() {
    Table* old = table.get();
    const std::uint64_t count = old == nullptr ? kInitialBuckets : old->bucket_count * 2;
    void* memory = Allocate(sizeof(Table) + count * sizeof(Ptr<Node>));
    if (memory == nullptr) return;
    Table* fresh = new (memory) Table{count, old == nullptr ? 0u : 1u - old->link};
    for (std::uint64_t b = 0; b < count; ++b) new (&fresh->buckets()[b]) Ptr<Node>();
    if (old != nullptr) {
      // Only the new table's links are written: the live chains stay as they were until the
      // commit below, whatever happens meanwhile.
      for (std::uint64_t b = 0; b < old->bucket_count; ++b) {
        for (Node* node = old->buckets()[b].get(); node; node = node->next[old->link].get()) {
          Ptr<Node>& head = fresh->BucketFor(node->hash);
          node->next[fresh->link] = head;
          head = node;
        }
      }
    }
    Commit();
    CrashIfAt(CrashPoint::kRehashBuilt);
    table = fresh;
    Commit();
    CrashIfAt(CrashPoint::kRehashSwapped);
    if (old != nullptr) Free(old);
  }

  // After a death under the lock: finish a recorded in-place copy (copying again what was
  // already copied is harmless) and recount the keys, whose count is updated after each commit.
  void Repair() {
    const bool finished_copy = redo_target != nullptr;
    if (finished_copy) {
      std::memcpy(redo_target->data(), redo_bytes, redo_target->size);
      Commit();
      redo_target = nullptr;
    }
    const std::uint64_t counted = size;
    size = 0;
    if (Table* t = table.get()) {
      for (std::uint64_t b = 0; b < t->bucket_count; ++b)
        for (Node* node = t->buckets()[b].get(); node; node = node->next[t->link].get()) ++size;
    }
    std::cerr << "switchyard: store: a process died holding a shard lock; repaired the shard ("
              << (finished_copy ? "finished its in-place write" : "no in-place write pending")
              << "; " << size << " keys, " << counted << " counted before)\n";
  }

  RobustMutex mu;
  Ptr<SegmentManager> segment_manager;
  Ptr<Table> table;        // null until the first key
  std::uint64_t size = 0;  // keys; may be off by one after a death until the repair
  // The redo record of an in-place overwrite: while redo_target is set, redo_bytes hold what it
  // must contain (its size is the target's own).
  Ptr<Value> redo_target;
  char redo_bytes[kInPlaceBytes];
};

struct Store::Impl {
  Impl(std::size_t bytes, std::size_t shards)
      : region(MapOrThrow(bytes)),
        segment(bip::create_only, region.get_address(), bytes),
        allocator_mutex(AllocatorMutex::t_last_built),
        shards(BuildShards(segment, shards)),
        shard_count(shards) {}

  // Throws bip::bad_alloc if the tables do not fit; MinBytes() relies on that.
  static Shard* BuildShards(Segment& segment, std::size_t shards) {
    return segment.construct<Shard>(bip::anonymous_instance)[shards](segment.get_segment_manager());
  }

  static bip::mapped_region MapOrThrow(std::size_t bytes) {
    try {
      return bip::anonymous_shared_memory(bytes);
    } catch (const bip::interprocess_exception& e) {
      throw std::runtime_error("Store::Create: cannot map " + std::to_string(bytes) +
                               " bytes of anonymous shared memory: " + e.what());
    }
  }

  // Declared first so it is unmapped last, after `segment` (which owns nothing) is gone.
  bip::mapped_region region;
  Segment segment;
  AllocatorMutex* allocator_mutex;  // In the segment, like everything below.
  Shard* shards;  // In the segment; children inherit the mapping at the same address.
  std::size_t shard_count;
};

std::size_t Store::MinBytes(std::size_t shards) {
  // Measure rather than model the segment manager's header, block and alignment overheads: build
  // the tables in a roomy scratch buffer, then grow from the space they used until a segment that
  // small works too (the allocator keeps a small unusable tail, so this takes a step or two; it
  // ends by the roomy size at the latest).
  std::size_t bytes = 4096 + shards * (sizeof(Shard) + 64);
  std::vector<std::max_align_t> scratch(bytes / sizeof(std::max_align_t) + 1);
  {
    Segment segment(bip::create_only, scratch.data(), bytes);
    Impl::BuildShards(segment, shards);
    bytes -= segment.get_free_memory();
  }
  for (;; bytes += alignof(std::max_align_t)) {
    try {
      Segment segment(bip::create_only, scratch.data(), bytes);
      Impl::BuildShards(segment, shards);
      return bytes;
    } catch (const bip::interprocess_exception&) {  // bip::bad_alloc derives from it.
    }
  }
}

std::unique_ptr<Store> Store::Create(std::size_t bytes, std::size_t shards) {
  if (shards == 0) throw std::invalid_argument("Store::Create: shards must be at least 1");
  const std::size_t min_bytes = MinBytes(shards);
  if (bytes < min_bytes) {
    throw std::runtime_error("Store::Create: " + std::to_string(bytes) + " bytes cannot hold " +
                             std::to_string(shards) + " shards; need at least " +
                             std::to_string(min_bytes) + " bytes");
  }
  return std::unique_ptr<Store>(new Store(std::make_unique<Impl>(bytes, shards)));
}

Store::Store(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

Store::~Store() = default;

std::size_t Store::ShardIndex(std::uint64_t hash) const {
  // The tables pick buckets from the low bits of the same hash; multiplying and taking high bits
  // keeps the shard choice independent of those bits so no shard's keys crowd a subset of its
  // buckets.
  const std::uint64_t h = hash * 0x9E3779B97F4A7C15ull;
  return (h >> 32) % impl_->shard_count;
}

Store::Shard& Store::ShardFor(std::uint64_t hash) const { return impl_->shards[ShardIndex(hash)]; }

Store::Status Store::Get(std::string_view key, std::string* value) const {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  const auto lock = shard.Lock();
  const Ptr<Node>* link = shard.Find(hash, key);
  if (link == nullptr) return Status::kNotFound;
  const std::string_view stored = (*link)->value->view();
  value->assign(stored.data(), stored.size());
  return Status::kOk;
}

Store::Status Store::Set(std::string_view key, std::string_view value) {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  // A value too long to overwrite in place always needs new memory: allocating and copying it
  // before taking the shard lock keeps the lock for the pointer swap alone.
  try {
    Value* fresh = nullptr;
    if (value.size() > kInPlaceBytes && (fresh = shard.NewValue(value)) == nullptr) {
      return Status::kOom;
    }
    const auto lock = shard.Lock();
    return shard.Put(hash, key, value, fresh);
  } catch (const AllocatorDamaged&) {
    return Status::kAllocatorDamaged;
  }
}

bool Store::Del(std::string_view key) {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  const auto lock = shard.Lock();
  return shard.Remove(hash, key);
}

Store::Status Store::Incr(std::string_view key, std::int64_t delta, std::int64_t* result) {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  const auto lock = shard.Lock();
  std::int64_t value = 0;
  const Ptr<Node>* link = shard.Find(hash, key);
  if (link != nullptr && !ParseRedisInt64((*link)->value->view(), &value))
    return Status::kNotInteger;
  if (__builtin_add_overflow(value, delta, &value)) return Status::kOverflow;
  char digits[20];  // "-9223372036854775808" is the longest.
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  Status status;
  try {
    status = shard.Put(hash, key, std::string_view(digits, end - digits), nullptr);
  } catch (const AllocatorDamaged&) {
    return Status::kAllocatorDamaged;
  }
  if (status == Status::kOk) *result = value;
  return status;
}

Store::Status Store::SetWith(std::string_view key, std::string_view value, SetIf condition,
                             std::string* old, bool* had_old) {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  try {
    const auto lock = shard.Lock();
    const Ptr<Node>* link = shard.Find(hash, key);
    const bool exists = link != nullptr;
    if (old != nullptr) {
      *had_old = exists;
      if (exists) old->assign((*link)->value->view());
    }
    if ((condition == SetIf::kAbsent && exists) || (condition == SetIf::kPresent && !exists)) {
      return Status::kNotWritten;
    }
    return shard.Put(hash, key, value, nullptr);
  } catch (const AllocatorDamaged&) {
    return Status::kAllocatorDamaged;
  }
}

Store::Status Store::Update(std::string_view key, Edit edit, void* state) {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  try {
    const auto lock = shard.Lock();
    const Ptr<Node>* link = shard.Find(hash, key);
    std::string_view current;
    if (link != nullptr) current = (*link)->value->view();
    std::string replacement;
    if (!edit(state, link != nullptr ? &current : nullptr, &replacement)) return Status::kOk;
    return shard.Put(hash, key, replacement, nullptr);
  } catch (const AllocatorDamaged&) {
    return Status::kAllocatorDamaged;
  }
}

Store::Status Store::GetDel(std::string_view key, std::string* value) {
  const std::uint64_t hash = Hash(key);
  Shard& shard = ShardFor(hash);
  const auto lock = shard.Lock();
  const Ptr<Node>* link = shard.Find(hash, key);
  if (link == nullptr) return Status::kNotFound;
  value->assign((*link)->value->view());
  shard.Remove(hash, key);
  return Status::kOk;
}

// The locks of every shard that holds one of a command's keys, taken in shard order (the same
// order for every command, so two multi-key commands never wait for each other in a cycle).
class Store::MultiLock {
 public:
  MultiLock(const Store& store, const std::vector<std::uint64_t>& hashes) {
    std::vector<std::size_t> indexes;
    indexes.reserve(hashes.size());
    for (std::uint64_t hash : hashes) indexes.push_back(store.ShardIndex(hash));
    std::sort(indexes.begin(), indexes.end());
    indexes.erase(std::unique(indexes.begin(), indexes.end()), indexes.end());
    locks_.reserve(indexes.size());
    for (std::size_t index : indexes) locks_.push_back(store.impl_->shards[index].Lock());
  }

 private:
  std::vector<std::unique_lock<RobustMutex>> locks_;
};

namespace {
std::vector<std::uint64_t> HashAll(const std::vector<std::string_view>& keys) {
  std::vector<std::uint64_t> hashes;
  hashes.reserve(keys.size());
  for (std::string_view key : keys) hashes.push_back(Hash(key));
  return hashes;
}
}  // namespace

void Store::MultiGet(const std::vector<std::string_view>& keys,
                     std::vector<std::optional<std::string>>* values) const {
  const std::vector<std::uint64_t> hashes = HashAll(keys);
  const MultiLock lock(*this, hashes);
  values->clear();
  values->reserve(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const Ptr<Node>* link = ShardFor(hashes[i]).Find(hashes[i], keys[i]);
    if (link == nullptr) {
      values->emplace_back();
    } else {
      values->emplace_back(std::string((*link)->value->view()));
    }
  }
}

Store::Status Store::MultiSet(
    const std::vector<std::pair<std::string_view, std::string_view>>& pairs,
    bool only_if_all_absent) {
  // The last value given for a key wins: keep each key's last pair only.
  std::vector<std::pair<std::string_view, std::string_view>> last;
  std::vector<std::string_view> keys;
  for (auto it = pairs.rbegin(); it != pairs.rend(); ++it) {
    if (std::find(keys.begin(), keys.end(), it->first) != keys.end()) continue;
    keys.push_back(it->first);
    last.push_back(*it);
  }
  const std::vector<std::uint64_t> hashes = HashAll(keys);
  const MultiLock lock(*this, hashes);
  std::vector<bool> exists(keys.size());
  for (std::size_t i = 0; i < keys.size(); ++i) {
    exists[i] = ShardFor(hashes[i]).Find(hashes[i], keys[i]) != nullptr;
    if (exists[i] && only_if_all_absent) return Status::kNotWritten;
  }
  // Take all the memory first, so a store too full for every pair writes none of them.
  std::vector<Value*> values(keys.size(), nullptr);
  std::vector<void*> nodes(keys.size(), nullptr);
  bool fits = true;
  try {
    for (std::size_t i = 0; i < keys.size() && fits; ++i) {
      Shard& shard = ShardFor(hashes[i]);
      values[i] = shard.NewValue(last[i].second);
      if (!exists[i] && values[i] != nullptr) {
        if (shard.table == nullptr) shard.Grow();  // a shard's first key needs its first table
        if (shard.table != nullptr) nodes[i] = shard.Allocate(sizeof(Node) + keys[i].size());
      }
      fits = values[i] != nullptr && (exists[i] || nodes[i] != nullptr);
    }
  } catch (const AllocatorDamaged&) {
    return Status::kAllocatorDamaged;  // what was taken stays allocated, as after any damage
  }
  if (!fits) {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (values[i] != nullptr) ShardFor(hashes[i]).Free(values[i]);
      if (nodes[i] != nullptr) ShardFor(hashes[i]).Free(nodes[i]);
    }
    return Status::kOom;
  }
  for (std::size_t i = 0; i < keys.size(); ++i) {
    // Cannot fail: the value and the node are already taken (a bucket table that cannot grow
    // only makes chains longer).
    ShardFor(hashes[i]).Put(hashes[i], keys[i], last[i].second, values[i], nodes[i]);
  }
  return Status::kOk;
}

std::size_t Store::CountExisting(const std::vector<std::string_view>& keys) const {
  const std::vector<std::uint64_t> hashes = HashAll(keys);
  const MultiLock lock(*this, hashes);
  std::size_t count = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    count += ShardFor(hashes[i]).Find(hashes[i], keys[i]) != nullptr ? 1 : 0;
  }
  return count;
}

std::size_t Store::DelMany(const std::vector<std::string_view>& keys) {
  const std::vector<std::uint64_t> hashes = HashAll(keys);
  const MultiLock lock(*this, hashes);
  std::size_t deleted = 0;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    deleted += ShardFor(hashes[i]).Remove(hashes[i], keys[i]) ? 1 : 0;
  }
  return deleted;
}

void Store::Clear() {
  std::vector<std::unique_lock<RobustMutex>> locks;
  locks.reserve(impl_->shard_count);
  for (std::size_t i = 0; i < impl_->shard_count; ++i) locks.push_back(impl_->shards[i].Lock());
  for (std::size_t i = 0; i < impl_->shard_count; ++i) impl_->shards[i].RemoveAll();
}

std::size_t Store::bytes_total() const { return impl_->segment.get_size(); }

// Reads the allocator's counters without its lock: a snapshot, good enough for stats and tests.
std::size_t Store::bytes_free() const { return impl_->segment.get_free_memory(); }

std::size_t Store::key_count() const {
  std::size_t count = 0;
  for (std::size_t i = 0; i < impl_->shard_count; ++i) {
    const auto lock = impl_->shards[i].Lock();
    count += impl_->shards[i].size;
  }
  return count;
}

std::size_t Store::shard_count() const { return impl_->shard_count; }

std::uint64_t Store::lock_recoveries() const {
  std::uint64_t count = 0;
  for (std::size_t i = 0; i < impl_->shard_count; ++i) count += impl_->shards[i].mu.recoveries();
  return count;
}

bool Store::allocator_damaged() const {
  return impl_->allocator_mutex->damaged.load(std::memory_order_acquire);
}

void Store::CrashAtForTest(CrashPoint point) { g_crash_point = point; }

}  // namespace switchyard
