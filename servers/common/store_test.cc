#include "servers/common/store.h"

#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iostream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace switchyard {
namespace {

using Status = Store::Status;
using CrashPoint = Store::CrashPoint;
using namespace std::chrono_literals;

constexpr std::size_t kMiB = 1 << 20;

std::string Read(const Store& store, std::string_view key) {
  std::string value;
  EXPECT_EQ(store.Get(key, &value), Status::kOk) << key;
  return value;
}

TEST(StoreTest, SetGetDelRoundtrip) {
  auto store = Store::Create(4 * kMiB);
  std::string value;
  EXPECT_EQ(store->Get("k", &value), Status::kNotFound);
  EXPECT_EQ(store->Set("k", "v"), Status::kOk);
  EXPECT_EQ(Read(*store, "k"), "v");
  EXPECT_EQ(store->key_count(), 1u);
  EXPECT_TRUE(store->Del("k"));
  EXPECT_FALSE(store->Del("k"));
  EXPECT_EQ(store->Get("k", &value), Status::kNotFound);
  EXPECT_EQ(store->key_count(), 0u);
}

TEST(StoreTest, BinaryKeysAndValues) {
  auto store = Store::Create(4 * kMiB);
  std::string all_bytes;
  for (int c = 0; c < 256; ++c) all_bytes.push_back(static_cast<char>(c));
  const std::string key = std::string("\0key\xff", 5) + all_bytes;
  ASSERT_EQ(store->Set(key, all_bytes), Status::kOk);
  EXPECT_EQ(Read(*store, key), all_bytes);

  // Keys differing only after an embedded NUL are distinct.
  const std::string a("a\0b", 3), b("a\0c", 3);
  ASSERT_EQ(store->Set(a, std::string("1\0", 2)), Status::kOk);
  ASSERT_EQ(store->Set(b, "2"), Status::kOk);
  EXPECT_EQ(Read(*store, a), std::string("1\0", 2));
  EXPECT_EQ(Read(*store, b), "2");
  ASSERT_EQ(store->Set("", ""), Status::kOk);  // Empty key and value are legal.
  EXPECT_EQ(Read(*store, ""), "");
  EXPECT_EQ(store->key_count(), 4u);
}

TEST(StoreTest, Overwrite) {
  auto store = Store::Create(4 * kMiB);
  for (const std::string value : {"short", "a much longer value than before", "x", "y", ""}) {
    ASSERT_EQ(store->Set("k", value), Status::kOk);
    EXPECT_EQ(Read(*store, "k"), value);
  }
  EXPECT_EQ(store->key_count(), 1u);
}

TEST(StoreTest, OneMiBValue) {
  auto store = Store::Create(8 * kMiB);
  std::string value(kMiB, '\0');
  for (std::size_t i = 0; i < value.size(); ++i) value[i] = static_cast<char>(i * 7 + i / 256);
  ASSERT_EQ(store->Set("big", value), Status::kOk);
  EXPECT_EQ(Read(*store, "big"), value);
  EXPECT_LT(store->bytes_free(), store->bytes_total() - kMiB);
}

TEST(StoreTest, IncrSemantics) {
  auto store = Store::Create(4 * kMiB);
  std::int64_t result = 0;
  EXPECT_EQ(store->Incr("missing", 5, &result), Status::kOk);
  EXPECT_EQ(result, 5);
  EXPECT_EQ(Read(*store, "missing"), "5");

  ASSERT_EQ(store->Set("ten", "10"), Status::kOk);
  EXPECT_EQ(store->Incr("ten", 1, &result), Status::kOk);
  EXPECT_EQ(result, 11);
  EXPECT_EQ(store->Incr("ten", -20, &result), Status::kOk);
  EXPECT_EQ(result, -9);
  EXPECT_EQ(Read(*store, "ten"), "-9");
  EXPECT_EQ(store->Incr("ten", -1, &result), Status::kOk);
  EXPECT_EQ(result, -10);
  EXPECT_EQ(store->Incr("ten", 10, &result), Status::kOk);
  EXPECT_EQ(Read(*store, "ten"), "0");

  const std::vector<std::string> bad_values = {"abc",
                                               " 1",
                                               "1 ",
                                               "+1",
                                               "01",
                                               "-0",
                                               "-",
                                               "",
                                               "1.5",
                                               "0x1",
                                               "9223372036854775808",
                                               "-9223372036854775809",
                                               "000000000000000000001",
                                               std::string("1\0", 2)};
  for (const std::string& bad : bad_values) {
    ASSERT_EQ(store->Set("bad", bad), Status::kOk);
    result = 42;
    EXPECT_EQ(store->Incr("bad", 1, &result), Status::kNotInteger) << '"' << bad << '"';
    EXPECT_EQ(result, 42);
    EXPECT_EQ(Read(*store, "bad"), bad);
  }

  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
  ASSERT_EQ(store->Set("max", std::to_string(kMax)), Status::kOk);
  EXPECT_EQ(store->Incr("max", 1, &result), Status::kOverflow);
  EXPECT_EQ(Read(*store, "max"), std::to_string(kMax));
  ASSERT_EQ(store->Set("min", std::to_string(kMin)), Status::kOk);
  EXPECT_EQ(store->Incr("min", -1, &result), Status::kOverflow);
  EXPECT_EQ(store->Incr("min", 0, &result), Status::kOk);
  EXPECT_EQ(result, kMin);
  EXPECT_EQ(store->Incr("min", kMax, &result), Status::kOk);
  EXPECT_EQ(result, -1);
}

TEST(StoreTest, OomLosesNothing) {
  auto store = Store::Create(kMiB, 8);
  auto value_for = [](int i) { return std::string(100 + i % 50, static_cast<char>('a' + i % 26)); };
  int stored = 0;
  while (store->Set("key:" + std::to_string(stored), value_for(stored)) == Status::kOk) ++stored;
  ASSERT_GT(stored, 1000);
  // Top up with tiny keys so even a small insert no longer fits.
  int tiny = 0;
  while (store->Set("t" + std::to_string(tiny), "") == Status::kOk) ++tiny;

  EXPECT_EQ(store->key_count(), static_cast<std::size_t>(stored + tiny));
  std::string value;
  EXPECT_EQ(store->Get("key:" + std::to_string(stored), &value), Status::kNotFound);
  for (int i = 0; i < stored; ++i)
    EXPECT_EQ(Read(*store, "key:" + std::to_string(i)), value_for(i));

  // A failing overwrite keeps the old value; a failing Incr of a new key stores nothing.
  EXPECT_EQ(store->Set("key:0", std::string(2 * kMiB, 'z')), Status::kOom);
  EXPECT_EQ(Read(*store, "key:0"), value_for(0));
  std::int64_t result = 0;
  EXPECT_EQ(store->Incr("counter-that-does-not-fit", 1, &result), Status::kOom);
  EXPECT_EQ(store->Get("counter-that-does-not-fit", &value), Status::kNotFound);

  // Freeing space makes room again. The allocator moves nothing, so enough keys go that some of
  // the holes they leave are neighbours (ten did not: the shards' bucket tables sit between them).
  const std::size_t free_before = store->bytes_free();
  for (int i = 0; i < 100; ++i) ASSERT_TRUE(store->Del("key:" + std::to_string(i)));
  EXPECT_GT(store->bytes_free(), free_before);
  EXPECT_EQ(store->Set("fresh", std::string(500, 'f')), Status::kOk);
  EXPECT_EQ(Read(*store, "fresh"), std::string(500, 'f'));
  EXPECT_EQ(store->Incr("counter-that-does-not-fit", 1, &result), Status::kOk);
}

TEST(StoreTest, SetWithConditionsAndOldValue) {
  auto store = Store::Create(4 * kMiB);
  std::string old;
  bool had_old = true;
  EXPECT_EQ(store->SetWith("k", "1", Store::SetIf::kPresent, &old, &had_old), Status::kNotWritten);
  EXPECT_FALSE(had_old);
  EXPECT_EQ(store->key_count(), 0u);
  EXPECT_EQ(store->SetWith("k", "1", Store::SetIf::kAbsent, &old, &had_old), Status::kOk);
  EXPECT_FALSE(had_old);
  EXPECT_EQ(store->SetWith("k", "2", Store::SetIf::kAbsent, &old, &had_old), Status::kNotWritten);
  EXPECT_TRUE(had_old);
  EXPECT_EQ(old, "1");
  EXPECT_EQ(store->SetWith("k", "3", Store::SetIf::kPresent, nullptr, nullptr), Status::kOk);
  EXPECT_EQ(store->SetWith("k", "4", Store::SetIf::kAlways, &old, &had_old), Status::kOk);
  EXPECT_EQ(old, "3");
  EXPECT_EQ(Read(*store, "k"), "4");
}

TEST(StoreTest, UpdateSeesTheCurrentValueAndMayDecline) {
  auto store = Store::Create(4 * kMiB);
  auto append = [&](std::string_view suffix) {
    return store->Update("k", [&](const std::string_view* current, std::string* replacement) {
      *replacement = std::string(current != nullptr ? *current : "") + std::string(suffix);
      return true;
    });
  };
  EXPECT_EQ(append("ab"), Status::kOk);
  EXPECT_EQ(append(std::string(1000, 'c')), Status::kOk);  // grows past the in-place size
  EXPECT_EQ(Read(*store, "k"), "ab" + std::string(1000, 'c'));
  std::size_t seen = 0;
  EXPECT_EQ(store->Update("k",
                          [&](const std::string_view* current, std::string*) {
                            seen = current->size();
                            return false;
                          }),
            Status::kOk);
  EXPECT_EQ(seen, 1002u);
  bool missing = false;
  store->Update("absent", [&](const std::string_view* current, std::string*) {
    missing = current == nullptr;
    return false;
  });
  EXPECT_TRUE(missing);
  EXPECT_EQ(store->key_count(), 1u);  // declining writes nothing
}

TEST(StoreTest, GetDelReturnsAndRemoves) {
  auto store = Store::Create(4 * kMiB);
  std::string value;
  EXPECT_EQ(store->GetDel("k", &value), Status::kNotFound);
  ASSERT_EQ(store->Set("k", "v"), Status::kOk);
  EXPECT_EQ(store->GetDel("k", &value), Status::kOk);
  EXPECT_EQ(value, "v");
  EXPECT_EQ(store->key_count(), 0u);
}

TEST(StoreTest, MultiKeyOperations) {
  auto store = Store::Create(4 * kMiB);
  ASSERT_EQ(store->MultiSet({{"a", "1"}, {"b", "2"}, {"a", "3"}}, false), Status::kOk);
  EXPECT_EQ(Read(*store, "a"), "3");  // the last value given for a key wins
  std::vector<std::optional<std::string>> values;
  store->MultiGet({"a", "missing", "b", "a"}, &values);
  ASSERT_EQ(values.size(), 4u);
  EXPECT_EQ(values[0], "3");
  EXPECT_FALSE(values[1].has_value());
  EXPECT_EQ(values[2], "2");
  EXPECT_EQ(values[3], "3");
  EXPECT_EQ(store->MultiSet({{"new", "x"}, {"b", "y"}}, true), Status::kNotWritten);
  EXPECT_EQ(store->CountExisting({"new"}), 0u);  // all or nothing
  EXPECT_EQ(store->MultiSet({{"new", "x"}, {"other", "y"}}, true), Status::kOk);
  EXPECT_EQ(store->CountExisting({"a", "a", "missing", "new"}), 3u);
  EXPECT_EQ(store->DelMany({"a", "a", "missing", "b"}), 2u);
  EXPECT_EQ(store->key_count(), 2u);
  store->Clear();
  EXPECT_EQ(store->key_count(), 0u);
  EXPECT_EQ(store->MultiSet({{"after", "clear"}}, false), Status::kOk);
  EXPECT_EQ(Read(*store, "after"), "clear");
}

// MSET all-or-nothing when the store is full: every byte is taken before the first write.
TEST(StoreTest, MultiSetThatDoesNotFitWritesNothing) {
  auto store = Store::Create(kMiB, 8);
  int stored = 0;
  while (store->Set("key:" + std::to_string(stored), std::string(100, 'v')) == Status::kOk)
    ++stored;
  ASSERT_EQ(store->Del("key:0"), true);  // room for a small pair, not for a large one
  const std::size_t keys = store->key_count();
  EXPECT_EQ(store->MultiSet({{"key:1", "small"}, {"huge", std::string(kMiB, 'h')}}, false),
            Status::kOom);
  EXPECT_EQ(Read(*store, "key:1"), std::string(100, 'v'));
  EXPECT_EQ(store->key_count(), keys);
  EXPECT_EQ(store->MultiSet({{"key:1", "small"}, {"key:0", "again"}}, false), Status::kOk);
  EXPECT_EQ(Read(*store, "key:1"), "small");
}

// Clear frees what the keys held: the store fills again to the same point.
TEST(StoreTest, ClearGivesBackTheMemory) {
  auto store = Store::Create(kMiB, 8);
  const std::size_t free_at_start = store->bytes_free();
  for (int i = 0; i < 2000; ++i) ASSERT_EQ(store->Set("k" + std::to_string(i), "v"), Status::kOk);
  store->Clear();
  EXPECT_EQ(store->bytes_free(), free_at_start);
}

// MSET's keys change together: a reader taking MGET of the same keys never sees them differ,
// across shards.
TEST(StoreTest, MultiSetIsAtomicForMultiGet) {
  auto store = Store::Create(16 * kMiB);
  const std::vector<std::string_view> keys = {"x", "y", "z", "w", "v", "u"};
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (int i = 0; i < 20000; ++i) {
      const std::string value = std::to_string(i);
      std::vector<std::pair<std::string_view, std::string_view>> pairs;
      for (auto key : keys) pairs.emplace_back(key, value);
      ASSERT_EQ(store->MultiSet(pairs, false), Status::kOk);
    }
    done = true;
  });
  std::vector<std::optional<std::string>> values;
  int reads = 0;
  while (!done && reads < 1'000'000) {
    store->MultiGet(keys, &values);
    ++reads;
    for (const auto& value : values) ASSERT_EQ(value, values[0]);
  }
  writer.join();
  EXPECT_GT(reads, 0);
}

TEST(StoreTest, CreateRejectsTooFewBytes) {
  const std::size_t min_bytes = Store::MinBytes(64);
  try {
    Store::Create(4096, 64);
    FAIL() << "expected std::runtime_error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(min_bytes)), std::string::npos) << e.what();
  }
  EXPECT_THROW(Store::Create(min_bytes - 1, 64), std::runtime_error);
  EXPECT_NO_THROW(Store::Create(min_bytes, 64));
  EXPECT_THROW(Store::Create(kMiB, 0), std::invalid_argument);
}

TEST(StoreTest, OverheadPerKey) {
  auto store = Store::Create(16 * kMiB);
  constexpr int kKeys = 10000;
  const std::size_t before = store->bytes_free();
  for (int i = 0; i < kKeys; ++i) ASSERT_EQ(store->Set("k" + std::to_string(i), "v"), Status::kOk);
  const std::size_t per_key = (before - store->bytes_free()) / kKeys;
  std::cout << "bytes per small key (key <= 5 B, value 1 B): " << per_key << "\n";
  EXPECT_LT(per_key, 256u);
}

TEST(StoreTest, ConcurrentIncrFromThreads) {
  auto store = Store::Create(4 * kMiB);
  constexpr int kThreads = 8, kIncrs = 10000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&] {
      std::int64_t result;
      for (int i = 0; i < kIncrs; ++i) ASSERT_EQ(store->Incr("n", 1, &result), Status::kOk);
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(Read(*store, "n"), std::to_string(kThreads * kIncrs));
}

// Threads writing different shards still share the segment allocator; it must lock on its own.
TEST(StoreTest, ConcurrentWritesToDifferentShards) {
  auto store = Store::Create(32 * kMiB);
  constexpr int kThreads = 8, kOps = 3000, kKeysPerThread = 50;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string value;
      for (int i = 0; i < kOps; ++i) {
        const std::string key = std::to_string(t) + ":" + std::to_string(i % kKeysPerThread);
        const std::string expected(i * 37 % 3000, static_cast<char>(i));
        ASSERT_EQ(store->Set(key, expected), Status::kOk);
        ASSERT_EQ(store->Get(key, &value), Status::kOk);
        ASSERT_EQ(value, expected);
        if (i % 3 == 0 && i < kOps - kKeysPerThread) {  // The last round leaves every key set.
          ASSERT_TRUE(store->Del(key));
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(store->key_count(), static_cast<std::size_t>(kThreads * kKeysPerThread));
}

// The reason the store exists: processes forked after Create share every key.
TEST(StoreTest, ForkedChildrenShareTheStore) {
  auto store = Store::Create(16 * kMiB);
  constexpr int kChildren = 4, kIncrs = 10000, kKeysPerChild = 200;
  std::vector<pid_t> pids;
  for (int c = 0; c < kChildren; ++c) {
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      bool ok = true;
      std::int64_t result;
      for (int i = 0; i < kIncrs; ++i) ok &= store->Incr("shared", 1, &result) == Status::kOk;
      for (int k = 0; k < kKeysPerChild; ++k) {
        const std::string key = "child:" + std::to_string(c) + ":" + std::to_string(k);
        ok &= store->Set(key, key + "=value") == Status::kOk;
      }
      _exit(ok ? 0 : 1);  // Skip gtest and destructors in the child.
    }
    pids.push_back(pid);
  }
  for (pid_t pid : pids) {
    int status = 0;
    ASSERT_EQ(waitpid(pid, &status, 0), pid);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  }
  EXPECT_EQ(Read(*store, "shared"), std::to_string(kChildren * kIncrs));
  for (int c = 0; c < kChildren; ++c) {
    for (int k = 0; k < kKeysPerChild; ++k) {
      const std::string key = "child:" + std::to_string(c) + ":" + std::to_string(k);
      EXPECT_EQ(Read(*store, key), key + "=value");
    }
  }
  EXPECT_EQ(store->key_count(), 1u + kChildren * kKeysPerChild);
}

TEST(StoreTest, LargeValuesAreNeverTorn) {
  auto store = Store::Create(32 * kMiB, 4);
  constexpr std::size_t kSize = 64 * 1024;
  constexpr int kWriters = 3, kWrites = 300, kReaders = 3;
  std::atomic<int> writers_left{kWriters};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      for (int i = 0; i < kWrites; ++i) {
        // Alternate sizes too, so both the in-place and the reallocating paths race with readers.
        const std::string value(kSize - (i % 2), static_cast<char>(w * kWrites + i));
        EXPECT_EQ(store->Set("hot", value), Status::kOk);
        EXPECT_EQ(store->Set("hot" + std::to_string(i % 8), value), Status::kOk);
      }
      --writers_left;
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      std::string value;
      while (writers_left > 0) {
        if (store->Get("hot", &value) != Status::kOk) continue;
        ASSERT_GE(value.size(), kSize - 1);
        ASSERT_EQ(value.find_first_not_of(value[0]), std::string::npos) << "torn read";
      }
    });
  }
  for (auto& thread : threads) thread.join();
}

// --- A process killed mid-update, holding the shard lock (a prefork worker under SIGKILL) ---

// Runs `body` in a forked child and returns its wait status, or -1 if it had not ended within
// `limit` (it is then killed): the sign of a wedged store. The child exits 0 unless `body` fails.
int RunInChild(const std::function<bool()>& body, std::chrono::seconds limit = 20s) {
  const pid_t pid = fork();
  if (pid == 0) _exit(body() ? 0 : 1);  // _exit: skip gtest and destructors in the child
  int status = 0;
  for (auto deadline = std::chrono::steady_clock::now() + limit;
       std::chrono::steady_clock::now() < deadline; std::this_thread::sleep_for(2ms)) {
    if (waitpid(pid, &status, WNOHANG) == pid) return status;
  }
  kill(pid, SIGKILL);
  waitpid(pid, &status, 0);
  return -1;
}

bool KilledBySigkill(int status) {
  return status != -1 && WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
}

std::string ValueOr(const Store& store, std::string_view key, std::string_view missing) {
  std::string value;
  return store.Get(key, &value) == Status::kOk ? value : std::string(missing);
}

struct CrashCase {
  CrashPoint point;
  std::string name;
  std::function<void(Store&)> victim;  // what the child was doing when it died
  std::function<void(Store&)> check;   // what must hold afterwards
  int counter_gain = 0;                // what the victim's INCR, if any, must have added
};

// The store before each crash: a counter, a word overwritten in place, a value too long for that,
// and a key to delete. One shard, so every key is in the shard whose lock the victim held.
constexpr int kCounterBefore = 10;
std::unique_ptr<Store> StoreBeforeCrash() {
  auto store = Store::Create(4 * kMiB, 1);
  std::int64_t result;
  for (int i = 0; i < kCounterBefore; ++i) EXPECT_EQ(store->Incr("n", 1, &result), Status::kOk);
  EXPECT_EQ(store->Set("word", "abcdefgh"), Status::kOk);
  EXPECT_EQ(store->Set("big", std::string(100, 'x')), Status::kOk);
  EXPECT_EQ(store->Set("doomed", "d"), Status::kOk);
  return store;
}
constexpr std::size_t kKeysBefore = 4;

// Inserts k0, k1, ... until the first rehash, where the victim dies.
void InsertUntilDead(Store& store) {
  for (int i = 0; i < 10000; ++i) store.Set("k" + std::to_string(i), "v");
}
// After such a death: k0 .. k(m-1) are all there, nothing after.
void ExpectKeysUpToTheRehash(Store& store) {
  const std::size_t inserted = store.key_count() - kKeysBefore;
  EXPECT_GE(inserted, 1u);
  for (std::size_t i = 0; i < inserted; ++i) EXPECT_EQ(Read(store, "k" + std::to_string(i)), "v");
  EXPECT_EQ(ValueOr(store, "k" + std::to_string(inserted), "<none>"), "<none>");
}

// Each point where a process may die in an update: the child takes the shard lock, gets that far
// and kills itself with SIGKILL. Another process must then find the shard usable at once, and the
// update either done or not done, never half; the counter stays exact.
TEST(StoreTest, ProcessKilledMidUpdateLeavesTheShardUsableAndConsistent) {
  const auto incr_n = [](Store& s) {
    std::int64_t result;
    s.Incr("n", 1, &result);
  };
  const auto nothing_else = [](Store&) {};
  const std::vector<CrashCase> cases = {
      {CrashPoint::kShardLocked, "shard locked", incr_n, nothing_else, 0},
      {CrashPoint::kInPlaceLogged, "in-place write logged", incr_n, nothing_else, 1},
      {CrashPoint::kInPlaceHalfCopied, "in-place write half done",
       [](Store& s) { s.Set("word", "ABCDEFGH"); },
       [](Store& s) { EXPECT_EQ(Read(s, "word"), "ABCDEFGH"); }},
      {CrashPoint::kInsertPrepared, "insert prepared", [](Store& s) { s.Set("new", "v"); },
       [](Store& s) {
         EXPECT_EQ(ValueOr(s, "new", "<none>"), "<none>");
         EXPECT_EQ(s.key_count(), kKeysBefore);
       }},
      {CrashPoint::kInsertLinked, "insert linked", [](Store& s) { s.Set("new", "v"); },
       [](Store& s) {
         EXPECT_EQ(Read(s, "new"), "v");
         EXPECT_EQ(s.key_count(), kKeysBefore + 1);
       }},
      {CrashPoint::kValueSwapped, "resized value swapped",
       [](Store& s) { s.Set("big", std::string(200, 'y')); },
       [](Store& s) { EXPECT_EQ(Read(s, "big"), std::string(200, 'y')); }},
      {CrashPoint::kUnlinked, "delete unlinked", [](Store& s) { s.Del("doomed"); },
       [](Store& s) {
         EXPECT_EQ(ValueOr(s, "doomed", "<none>"), "<none>");
         EXPECT_EQ(s.key_count(), kKeysBefore - 1);
       }},
      {CrashPoint::kRehashBuilt, "rehash built", InsertUntilDead, ExpectKeysUpToTheRehash},
      {CrashPoint::kRehashSwapped, "rehash swapped", InsertUntilDead, ExpectKeysUpToTheRehash},
  };
  for (const CrashCase& c : cases) {
    SCOPED_TRACE(c.name);
    auto store = StoreBeforeCrash();
    const int victim = RunInChild([&] {
      Store::CrashAtForTest(c.point);
      c.victim(*store);
      return false;  // not reached: the crash point was not hit
    });
    ASSERT_TRUE(KilledBySigkill(victim)) << "status " << victim;

    // Another process uses the shard (and the allocator) within a bounded time.
    constexpr int kIncrs = 1000;
    const int other = RunInChild([&] {
      bool ok = true;
      std::int64_t result;
      for (int i = 0; i < kIncrs; ++i) ok &= store->Incr("n", 1, &result) == Status::kOk;
      ok &= store->Set("after", std::string(300, 'a')) == Status::kOk;
      ok &= ValueOr(*store, "after", "") == std::string(300, 'a');
      ok &= store->Del("after");
      return ok;
    });
    ASSERT_EQ(other, 0) << "the shard is unusable after the death (-1: wedged)";
    c.check(*store);
    EXPECT_EQ(Read(*store, "n"), std::to_string(kCounterBefore + c.counter_gain + kIncrs));
    EXPECT_EQ(store->lock_recoveries(), 1u);
    EXPECT_EQ(store->Set("k-after", "x"), Status::kOk);
    EXPECT_EQ(Read(*store, "k-after"), "x");
  }
}

// A death inside the segment allocator (Boost's, which cannot be checked or repaired): from then
// on, in every process, no write enters the allocator again. Writes that need new memory are
// refused with kAllocatorDamaged and change nothing; reads, deletes and in-place overwrites go on.
TEST(StoreTest, DeathInsideTheAllocatorRefusesOnlyWritesThatNeedMemory) {
  auto store = StoreBeforeCrash();
  EXPECT_FALSE(store->allocator_damaged());
  const int victim = RunInChild([&] {
    Store::CrashAtForTest(CrashPoint::kAllocatorLocked);
    store->Set("new", "v");
    return false;  // not reached
  });
  ASSERT_TRUE(KilledBySigkill(victim)) << "status " << victim;

  // Another process finds the death, within a bounded time, and is refused.
  const int finder = RunInChild([&] {
    return store->Set("after", std::string(300, 'a')) == Status::kAllocatorDamaged &&
           store->allocator_damaged();
  });
  ASSERT_EQ(finder, 0) << "-1: wedged";
  EXPECT_TRUE(store->allocator_damaged()) << "the flag is not shared with this process";

  std::int64_t result = 0;
  // Refused, nothing changed: a new key, a value that changes size, an INCR that adds a digit.
  EXPECT_EQ(store->Set("new", "v"), Status::kAllocatorDamaged);
  EXPECT_EQ(ValueOr(*store, "new", "<none>"), "<none>");
  EXPECT_EQ(store->Set("big", std::string(200, 'y')), Status::kAllocatorDamaged);
  EXPECT_EQ(Read(*store, "big"), std::string(100, 'x'));
  EXPECT_EQ(store->Set("n", "99"), Status::kOk);  // same size as "10": in place
  EXPECT_EQ(store->Incr("n", 1, &result), Status::kAllocatorDamaged);
  EXPECT_EQ(Read(*store, "n"), "99");
  EXPECT_EQ(store->Incr("fresh-counter", 1, &result), Status::kAllocatorDamaged);
  // Served: reads, in-place overwrites, INCRs that keep their length, deletes (memory kept).
  EXPECT_EQ(store->Set("word", "ABCDEFGH"), Status::kOk);
  EXPECT_EQ(Read(*store, "word"), "ABCDEFGH");
  EXPECT_EQ(store->Set("n", "10"), Status::kOk);
  EXPECT_EQ(store->Incr("n", 1, &result), Status::kOk);
  EXPECT_EQ(result, 11);
  const std::size_t free_before = store->bytes_free();
  EXPECT_TRUE(store->Del("doomed"));
  EXPECT_EQ(ValueOr(*store, "doomed", "<none>"), "<none>");
  EXPECT_EQ(store->bytes_free(), free_before) << "a delete freed memory into the damaged allocator";
  EXPECT_EQ(store->key_count(), kKeysBefore - 1);
}

// Processes hammer INCR and same-size SETs on a few keys while this one kills them with SIGKILL at
// random moments. The counters must equal the increments acknowledged plus at most one a kill
// (applied, then killed before it was acknowledged), and the store must keep answering.
// Resizing writes are left out on purpose: a death inside the allocator turns every write that
// allocates off (the test above), which would end this one's counting.
TEST(StoreTest, IncrStaysExactWhileWritersAreKilledAtRandom) {
  auto store = Store::Create(16 * kMiB, 4);
  constexpr int kKeys = 3, kChildren = 4, kKills = 40;
  // One acknowledged-increment count per key, in memory the children share.
  auto* acked = static_cast<std::atomic<std::int64_t>*>(
      mmap(nullptr, sizeof(std::atomic<std::int64_t>) * kKeys, PROT_READ | PROT_WRITE,
           MAP_SHARED | MAP_ANONYMOUS, -1, 0));
  ASSERT_NE(acked, MAP_FAILED);
  for (int k = 0; k < kKeys; ++k) new (&acked[k]) std::atomic<std::int64_t>(0);
  auto start_writer = [&](int seed) {
    const pid_t pid = fork();
    if (pid == 0) {
      std::int64_t result;
      for (unsigned i = seed;; ++i) {
        const int k = static_cast<int>(i % kKeys);
        if (store->Incr("n" + std::to_string(k), 1, &result) == Status::kOk) ++acked[k];
        store->Set("s" + std::to_string(k), std::string(16, static_cast<char>('a' + i % 26)));
      }
    }
    return pid;
  };
  std::vector<pid_t> writers;
  for (int c = 0; c < kChildren; ++c) writers.push_back(start_writer(c));
  std::srand(42);
  for (int kill_number = 0; kill_number < kKills; ++kill_number) {
    std::this_thread::sleep_for(std::chrono::microseconds(2000 + std::rand() % 5000));
    const std::size_t victim = std::rand() % writers.size();
    kill(writers[victim], SIGKILL);
    waitpid(writers[victim], nullptr, 0);
    writers[victim] = start_writer(1000 + kill_number);
  }
  // Stop the rest the same way: they are killed too.
  for (pid_t pid : writers) {
    kill(pid, SIGKILL);
    waitpid(pid, nullptr, 0);
  }
  const int kills = kKills + kChildren;
  // Every key in a bounded time, from another process, in case a lock is stuck.
  const int reader = RunInChild([&] {
    std::string value;
    for (int k = 0; k < kKeys; ++k) store->Get("n" + std::to_string(k), &value);
    return true;
  });
  ASSERT_EQ(reader, 0) << "the store is wedged";
  std::int64_t total_acked = 0, total = 0;
  for (int k = 0; k < kKeys; ++k) {
    const std::int64_t value = std::stoll(ValueOr(*store, "n" + std::to_string(k), "0"));
    EXPECT_GE(value, acked[k].load()) << "an acknowledged increment was lost";
    total += value;
    total_acked += acked[k].load();
    EXPECT_EQ(ValueOr(*store, "s" + std::to_string(k), "").size(), 16u);
  }
  EXPECT_LE(total - total_acked, kills);
  EXPECT_GT(total_acked, kKills) << "the writers hardly ran";
  std::cout << "increments acknowledged: " << total_acked << ", applied: " << total
            << ", kills: " << kills << ", shard repairs: " << store->lock_recoveries() << "\n";
  munmap(acked, sizeof(std::atomic<std::int64_t>) * kKeys);
}

}  // namespace
}  // namespace switchyard
