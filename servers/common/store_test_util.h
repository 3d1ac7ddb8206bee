// What the store's tests share: store_test.cc (each operation's semantics, in one thread),
// store_concurrency_test.cc (threads and forked processes sharing one store) and
// store_crash_test.cc (processes killed in the middle of an update).
#ifndef SWITCHYARD_SERVERS_COMMON_STORE_TEST_UTIL_H_
#define SWITCHYARD_SERVERS_COMMON_STORE_TEST_UTIL_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "gtest/gtest.h"
#include "servers/common/store.h"

// The tests themselves are in this namespace too, so they see these by their short names.
namespace switchyard::store_test {

using Status = Store::Status;

inline constexpr std::size_t kMiB = 1 << 20;

// The key's value; a failed expectation when it is missing.
inline std::string Read(const Store& store, std::string_view key) {
  std::string value;
  EXPECT_EQ(store.Get(key, &value), Store::Status::kOk) << key;
  return value;
}

}  // namespace switchyard::store_test

#endif  // SWITCHYARD_SERVERS_COMMON_STORE_TEST_UTIL_H_
