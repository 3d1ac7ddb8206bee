// The Store: its segment, and its operations, each of which locks the shards that hold its keys
// and reads or updates them (store_shard.h). What a death in the middle of one can cost is said
// in store_shard.cc, at the top.
#include "servers/common/store.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "servers/common/redis_int.h"
#include "servers/common/robust_mutex.h"
#include "servers/common/store_shard.h"

// Boost lives in /usr/include, a system directory, so its headers' own warnings are suppressed.
#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/exceptions.hpp>

namespace switchyard {
namespace {

namespace bip = boost::interprocess;

using store_internal::AllocatorDamaged;
using store_internal::AllocatorMutex;
using store_internal::kInPlaceBytes;
using store_internal::Node;
using store_internal::Ptr;
using store_internal::Segment;
using store_internal::Value;

std::uint64_t Hash(std::string_view key) { return std::hash<std::string_view>{}(key); }

}  // namespace

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
// Each key's hash, in the keys' order.
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

}  // namespace switchyard
