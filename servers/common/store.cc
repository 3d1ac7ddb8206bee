#include "servers/common/store.h"

#include <algorithm>
#include <charconv>
#include <functional>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>
#include <vector>

#include "servers/common/redis_int.h"

// Boost lives in /usr/include, a system directory, so its headers' own warnings are suppressed.
#include <boost/interprocess/allocators/allocator.hpp>
#include <boost/interprocess/anonymous_shared_memory.hpp>
#include <boost/interprocess/containers/string.hpp>
#include <boost/interprocess/exceptions.hpp>
#include <boost/interprocess/indexes/iset_index.hpp>
#include <boost/interprocess/managed_external_buffer.hpp>
#include <boost/interprocess/mem_algo/rbtree_best_fit.hpp>
#include <boost/interprocess/sync/interprocess_mutex.hpp>
#include <boost/interprocess/sync/mutex_family.hpp>
#include <boost/unordered_map.hpp>

namespace switchyard {
namespace {

namespace bip = boost::interprocess;

// One segment holds everything and its allocator is the memory bound. bip::managed_external_buffer
// would use rbtree_best_fit<null_mutex_family>, an allocator with no lock at all, which corrupts
// the heap as soon as two shards allocate at once. mutex_family makes it take a process-shared
// interprocess_mutex around every allocate/free, so allocations from different shards serialize
// briefly there even though the shard locks are independent. Same-length overwrites skip the
// allocator entirely (see Shard::Put).
using Segment = bip::basic_managed_external_buffer<char, bip::rbtree_best_fit<bip::mutex_family>,
                                                   bip::iset_index>;
using SegmentManager = Segment::segment_manager;
// bip::allocator holds an offset_ptr to the segment manager and hands out offset_ptrs, so the
// containers work at any mapping address.
template <class T>
using ShmAllocator = bip::allocator<T, SegmentManager>;
using ShmString = bip::basic_string<char, std::char_traits<char>, ShmAllocator<char>>;

std::string_view View(std::string_view s) { return s; }
std::string_view View(const ShmString& s) { return {s.data(), s.size()}; }

// Hashes and compares stored keys and std::string_view alike, so lookups need no allocation. The
// hash must be the same in every process sharing a map; std::hash has no per-process seed.
struct KeyHash {
  template <class K>
  std::size_t operator()(const K& k) const {
    return std::hash<std::string_view>{}(View(k));
  }
};
struct KeyEq {
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return View(a) == View(b);
  }
};

using Map = boost::unordered_map<ShmString, ShmString, KeyHash, KeyEq,
                                 ShmAllocator<std::pair<const ShmString, ShmString>>>;

}  // namespace

// Placed in the segment, so every member must be process-shared and address-independent.
struct Store::Shard {
  explicit Shard(SegmentManager* segment_manager)
      : map(0, KeyHash(), KeyEq(), Map::allocator_type(segment_manager)) {}

  // Stores key=value with the strong guarantee: on kOom the map is exactly as before. The caller
  // holds `mu`.
  Status Put(std::string_view key, std::string_view value) {
    auto it = map.find(key, KeyHash(), KeyEq());
    if (it != map.end() && it->second.size() == value.size()) {
      // Counters and fixed-size values overwrite in place: no allocation, cannot fail.
      std::copy(value.begin(), value.end(), it->second.begin());
      return Status::kOk;
    }
    try {
      // Build the new value first; only a non-throwing swap touches the existing entry.
      ShmString fresh(value.data(), value.size(), map.get_allocator());
      if (it != map.end()) {
        it->second.swap(fresh);  // The old value is freed when `fresh` goes out of scope.
      } else {
        // boost::unordered allocates the node before growing the bucket array and frees it if
        // the growth throws, so a failed insert leaves the map unchanged.
        map.emplace(ShmString(key.data(), key.size(), map.get_allocator()), std::move(fresh));
      }
      return Status::kOk;
    } catch (const bip::bad_alloc&) {  // Not derived from std::bad_alloc.
      return Status::kOom;
    } catch (const std::bad_alloc&) {
      return Status::kOom;
    } catch (const std::length_error&) {  // A value longer than the allocator's max_size().
      return Status::kOom;
    }
  }

  bip::interprocess_mutex mu;  // PTHREAD_PROCESS_SHARED on POSIX.
  Map map;
};

struct Store::Impl {
  Impl(std::size_t bytes, std::size_t shards)
      : region(MapOrThrow(bytes)),
        segment(bip::create_only, region.get_address(), bytes),
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

Store::Shard& Store::ShardFor(std::string_view key) const {
  // The maps pick buckets from the same hash; multiplying and taking high bits keeps the shard
  // choice independent of those bits so no shard's keys crowd a subset of its buckets.
  const std::uint64_t hash = std::hash<std::string_view>{}(key);
  const std::uint64_t h = hash * 0x9E3779B97F4A7C15ull;
  return impl_->shards[(h >> 32) % impl_->shard_count];
}

Store::Status Store::Get(std::string_view key, std::string* value) const {
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  const auto it = shard.map.find(key, KeyHash(), KeyEq());
  if (it == shard.map.end()) return Status::kNotFound;
  value->assign(it->second.data(), it->second.size());
  return Status::kOk;
}

Store::Status Store::Set(std::string_view key, std::string_view value) {
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  return shard.Put(key, value);
}

bool Store::Del(std::string_view key) {
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  const auto it = shard.map.find(key, KeyHash(), KeyEq());
  if (it == shard.map.end()) return false;
  shard.map.erase(it);
  return true;
}

Store::Status Store::Incr(std::string_view key, std::int64_t delta, std::int64_t* result) {
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  std::int64_t value = 0;
  const auto it = shard.map.find(key, KeyHash(), KeyEq());
  if (it != shard.map.end() && !ParseRedisInt64(View(it->second), &value))
    return Status::kNotInteger;
  if (__builtin_add_overflow(value, delta, &value)) return Status::kOverflow;
  char digits[20];  // "-9223372036854775808" is the longest.
  const auto [end, ec] = std::to_chars(digits, digits + sizeof(digits), value);
  const Status status = shard.Put(key, std::string_view(digits, end - digits));
  if (status == Status::kOk) *result = value;
  return status;
}

std::size_t Store::bytes_total() const { return impl_->segment.get_size(); }

// Reads the allocator's counters without its lock: a snapshot, good enough for stats and tests.
std::size_t Store::bytes_free() const { return impl_->segment.get_free_memory(); }

std::size_t Store::key_count() const {
  std::size_t count = 0;
  for (std::size_t i = 0; i < impl_->shard_count; ++i) {
    std::lock_guard lock(impl_->shards[i].mu);
    count += impl_->shards[i].map.size();
  }
  return count;
}

std::size_t Store::shard_count() const { return impl_->shard_count; }

}  // namespace switchyard
