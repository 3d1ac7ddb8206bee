// The key-value store shared by every server model. It is the controlled variable of the testbed:
// prefork processes, threads, fibers and coroutines all run against this one implementation.
//
// All data lives in one anonymous MAP_SHARED mapping made by Create(), so a Store created before
// fork() is shared by every child and every thread. The mapping is split into shards, each a hash
// table guarded by its own process-shared mutex. Memory is bounded by the size of the mapping.
//
// A process may die at any instant (a prefork worker killed with SIGKILL), perhaps holding a lock
// and halfway through an update. Every lock is a robust mutex (robust_mutex.h), so the next
// locker gets it instead of hanging, and every update of a shard is ordered so that what the dead
// process left is consistent or repaired by that next locker. What a death can cost is stated in
// store_shard.cc, at the top.
#ifndef SWITCHYARD_SERVERS_COMMON_STORE_H_
#define SWITCHYARD_SERVERS_COMMON_STORE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace switchyard {

class Store {
 public:
  // kAllocatorDamaged: a process died inside the segment allocator, which may be damaged, so no
  // write that needs new memory is made any more (see store_shard.cc); nothing changed.
  // kNotWritten: a conditional write (SetIf, MultiSet's if-all-absent) found its condition false
  // and changed nothing.
  enum class Status {
    kOk,
    kNotFound,
    kOom,
    kNotInteger,
    kOverflow,
    kAllocatorDamaged,
    kNotWritten
  };

  // Maps `bytes` of anonymous shared memory and builds `shards` empty shards in it. Create it
  // before fork(): children inherit the mapping and share every key. Throws std::runtime_error with
  // a clear one-line message if the mapping fails or `bytes` is too small to hold the shard tables
  // (the message says the minimum, which MinBytes() also returns). Throws std::invalid_argument if
  // `shards` is 0.
  static std::unique_ptr<Store> Create(std::size_t bytes, std::size_t shards = kDefaultShards);

  // Enough that threads rarely meet on a lock, and few enough that a multi-key command holding
  // every shard's lock and then the allocator's stays within the 64 locks a thread that
  // ThreadSanitizer's deadlock detector follows (past them it stops the program).
  static constexpr std::size_t kDefaultShards = 32;

  // The smallest `bytes` Create() accepts for `shards` shards. Such a store holds (almost) no keys.
  static std::size_t MinBytes(std::size_t shards);

  // Unmaps this process's view of the segment. It deliberately does not destroy the shards: a
  // forked child that destroys its Store must not free data the parent and siblings still use.
  ~Store();

  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  // kOk (value copied under the lock, so never torn) or kNotFound.
  Status Get(std::string_view key, std::string* value) const;
  // kOk, kOom or kAllocatorDamaged. On either error nothing changed: an existing value stays as
  // it was.
  Status Set(std::string_view key, std::string_view value);
  // True if the key existed. Works with the allocator damaged too (the memory is then kept).
  bool Del(std::string_view key);
  // INCRBY. Atomic across every thread and process: read, add, write under the shard lock. A
  // missing key counts as 0. kNotInteger if the stored value is not a strict 64-bit decimal integer
  // (Redis string2ll rules: optional '-', no '+', no leading zeros except "0", no spaces, at most
  // 20 chars); kOverflow if the result would overflow int64; kOom or kAllocatorDamaged if it cannot
  // be stored. `*result` is written only on kOk.
  Status Incr(std::string_view key, std::int64_t delta, std::int64_t* result);

  // SET's conditions (NX, XX).
  enum class SetIf { kAlways, kAbsent, kPresent };
  // Under the key's lock: reads the previous value into `*old` (when `old` is not null; `*had_old`
  // says whether there was one), then writes `value` if `condition` holds. kOk when written,
  // kNotWritten when the condition kept it (nothing changed), kOom or kAllocatorDamaged.
  Status SetWith(std::string_view key, std::string_view value, SetIf condition, std::string* old,
                 bool* had_old);

  // Under the key's lock: `edit` sees the current value (null when the key is missing) and returns
  // true to store `*replacement`, false to leave the key as it is (a read, or an edit refused: its
  // reply is the caller's). kOk, or the write's kOom or kAllocatorDamaged (nothing changed). For
  // the commands whose new value is computed from the old: INCRBYFLOAT, APPEND, STRLEN.
  using Edit = bool (*)(void* state, const std::string_view* current, std::string* replacement);
  Status Update(std::string_view key, Edit edit, void* state);
  template <class F>  // F: bool(const std::string_view* current, std::string* replacement)
  Status Update(std::string_view key, F&& edit) {
    return Update(
        key,
        [](void* state, const std::string_view* current, std::string* replacement) {
          return (*static_cast<std::remove_reference_t<F>*>(state))(current, replacement);
        },
        &edit);
  }

  // Removes the key and returns its value: kOk, or kNotFound (GETDEL).
  Status GetDel(std::string_view key, std::string* value);

  // The multi-key operations hold every involved shard's lock at once (taken in shard order, so
  // they never deadlock), so no other client sees them half done: as in Redis, whose commands run
  // one at a time. A process killed in the middle of one (prefork) may leave it half done: each
  // key's own update is still all-or-nothing (see store_shard.cc).
  //
  // Each key's value, or nullopt where it is missing (MGET).
  void MultiGet(const std::vector<std::string_view>& keys,
                std::vector<std::optional<std::string>>* values) const;
  // Writes every pair, or none: kOk; kNotWritten when `only_if_all_absent` and a key exists
  // (MSETNX); kOom or kAllocatorDamaged when they do not all fit (all memory is taken before the
  // first write). A key given twice takes its last value, as in Redis.
  Status MultiSet(const std::vector<std::pair<std::string_view, std::string_view>>& pairs,
                  bool only_if_all_absent);
  // How many of `keys` exist, a key counted as often as it is given (EXISTS).
  std::size_t CountExisting(const std::vector<std::string_view>& keys) const;
  // Removes the keys; returns how many existed (DEL, UNLINK).
  std::size_t DelMany(const std::vector<std::string_view>& keys);
  // Removes every key, with every shard locked (FLUSHALL, FLUSHDB).
  void Clear();

  std::size_t bytes_total() const;  // Configured size.
  std::size_t bytes_free() const;   // Free in the segment now.
  std::size_t key_count() const;    // Sum over shards (locks each shard briefly).
  std::size_t shard_count() const;
  // How many times, in any process, a shard lock was found with its owner dead and its shard
  // repaired. (A death inside the allocator is logged, not counted here: see store_shard.cc.)
  std::uint64_t lock_recoveries() const;
  // True once a process has found that another died holding the segment allocator's lock: from
  // then on writes that need new memory get kAllocatorDamaged, in every process.
  bool allocator_damaged() const;

  // Test hook, for tests that fork a child to be killed. From now on this process kills itself
  // with SIGKILL when it reaches `point`, holding whatever lock it holds there, as a worker killed
  // at that instant would. kNone turns it off.
  enum class CrashPoint {
    kNone,
    kShardLocked,        // any operation, just after taking the shard lock
    kInsertPrepared,     // a new key's node built, not yet linked into its chain
    kInsertLinked,       // linked, the shard's key count not yet updated
    kValueSwapped,       // a resized value swapped in, the old one not yet freed
    kInPlaceLogged,      // an in-place overwrite's redo record written, the value untouched
    kInPlaceHalfCopied,  // half of the new bytes copied over the old
    kUnlinked,           // a deleted key unlinked, its count and memory not yet updated
    kRehashBuilt,        // a larger bucket table built, not yet swapped in
    kRehashSwapped,      // swapped in, the old table not yet freed
    kAllocatorLocked,    // inside the segment allocator's lock
  };
  static void CrashAtForTest(CrashPoint point);

 private:
  struct Impl;   // The mapping and the Boost segment; keeps Boost out of this header.
  struct Shard;  // Lives inside the segment.

  class MultiLock;

  explicit Store(std::unique_ptr<Impl> impl);
  std::size_t ShardIndex(std::uint64_t hash) const;
  Shard& ShardFor(std::uint64_t hash) const;

  std::unique_ptr<Impl> impl_;
};

}  // namespace switchyard

#endif  // SWITCHYARD_SERVERS_COMMON_STORE_H_
