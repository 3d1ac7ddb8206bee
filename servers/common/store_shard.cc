// One shard of the Store: its updates, each committed with one pointer-sized store, its repair
// after a death under its lock, and the segment allocator's lock. The types are in store_shard.h;
// the Store's operations, which call in here, in store.cc.
#include "servers/common/store_shard.h"

#include <atomic>
#include <cstring>
#include <iostream>
#include <new>

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
namespace store_internal {

Store::CrashPoint g_crash_point = Store::CrashPoint::kNone;  // this process's, for tests

thread_local AllocatorMutex* AllocatorMutex::t_last_built = nullptr;

void AllocatorMutex::lock() {
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

}  // namespace store_internal

void Store::CrashAtForTest(CrashPoint point) { store_internal::g_crash_point = point; }

namespace {

using store_internal::AllocatorDamaged;
using store_internal::CrashIfAt;
using store_internal::kInPlaceBytes;

constexpr std::uint64_t kInitialBuckets = 8;

// Keeps the compiler from moving the stores before a commit past it, or the commit before them: a
// process killed between two instructions leaves exactly the stores it executed, in program order
// (the stores of a dead thread still drain from its CPU's store buffer).
void Commit() { std::atomic_signal_fence(std::memory_order_seq_cst); }

}  // namespace

void Store::Shard::Free(void* memory) {
  try {
    segment_manager->deallocate(memory);
  } catch (const AllocatorDamaged&) {
  }
}

Store::Shard::Value* Store::Shard::NewValue(std::string_view bytes) {
  void* memory = Allocate(sizeof(Value) + bytes.size());
  if (memory == nullptr) return nullptr;
  Value* value = new (memory) Value{bytes.size()};
  std::memcpy(value->data(), bytes.data(), bytes.size());
  return value;
}

Store::Status Store::Shard::Put(std::uint64_t hash, std::string_view key, std::string_view value,
                                Value* fresh, void* node_memory) {
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

bool Store::Shard::Remove(std::uint64_t hash, std::string_view key) {
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

void Store::Shard::RemoveAll() {
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

void Store::Shard::OverwriteInPlace(Value* target, std::string_view bytes) {
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

void Store::Shard::Grow() {
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

void Store::Shard::Repair() {
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
            << (finished_copy ? "finished its in-place write" : "no in-place write pending") << "; "
            << size << " keys, " << counted << " counted before)\n";
}

}  // namespace switchyard
