// A process killed in the middle of an update, perhaps holding a shard lock or the allocator's
// (a prefork worker under SIGKILL): the store stays usable from every other process, each update
// is done or not done, never half, and INCR stays exact. What a death may cost is stated at the top
// of store_shard.cc.
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "servers/common/store.h"
#include "servers/common/store_test_util.h"

namespace switchyard::store_test {
namespace {

using CrashPoint = Store::CrashPoint;
using namespace std::chrono_literals;

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
// Writes that allocate are left out on purpose: a death inside the allocator turns every write
// that allocates off (the test above), which would end this one's counting. So the keys exist
// before the first kill, and each counter starts at kBase, whose digits its increments never
// outgrow: every write the children make is in place.
TEST(StoreTest, IncrStaysExactWhileWritersAreKilledAtRandom) {
  auto store = Store::Create(16 * kMiB, 4);
  constexpr int kKeys = 3, kChildren = 4, kKills = 40;
  constexpr std::int64_t kBase = 1'000'000'000'000;
  for (int k = 0; k < kKeys; ++k) {
    ASSERT_EQ(store->Set("n" + std::to_string(k), std::to_string(kBase)), Status::kOk);
    ASSERT_EQ(store->Set("s" + std::to_string(k), std::string(16, 'a')), Status::kOk);
  }
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
    const std::int64_t value = std::stoll(ValueOr(*store, "n" + std::to_string(k), "0")) - kBase;
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
}  // namespace switchyard::store_test
