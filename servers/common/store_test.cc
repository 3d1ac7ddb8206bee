// The store's operations, one thread at a time: what each returns and stores, single-key and
// multi-key, binary keys and values, INCR's integer rules, and the memory bound (a full store loses
// nothing). Threads and processes sharing a store: store_concurrency_test.cc; processes killed
// mid-update: store_crash_test.cc.
#include "servers/common/store.h"

#include <cstdint>
#include <iostream>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "gtest/gtest.h"
#include "servers/common/store_test_util.h"

namespace switchyard::store_test {
namespace {

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

}  // namespace
}  // namespace switchyard::store_test
