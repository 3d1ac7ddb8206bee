// The string and keyspace commands (issue: real Redis clients, unmodified), through hiredis, held
// to Redis 7.0's exact replies: every test runs against each model and against redis-server itself
// (one database, as SELECT's expectations need), with the same expectations. Only what we refuse
// by design (key expiry, transactions) is tested on the models alone.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/models.h"
#include "tests/server_process.h"

namespace switchyard::testing {
namespace {

// A reply as one line, so a script can state each expectation as text: +status, -error, :integer,
// "bulk" (bytes outside printable ASCII as \xNN), (nil), [array, ...].
std::string Render(const redisReply* reply) {
  if (reply == nullptr) return "<no reply>";
  switch (reply->type) {
    case REDIS_REPLY_STATUS:
      return "+" + std::string(reply->str, reply->len);
    case REDIS_REPLY_ERROR:
      return "-" + std::string(reply->str, reply->len);
    case REDIS_REPLY_INTEGER:
      return ":" + std::to_string(reply->integer);
    case REDIS_REPLY_NIL:
      return "(nil)";
    case REDIS_REPLY_STRING: {
      std::string text = "\"";
      for (std::size_t i = 0; i < reply->len; ++i) {
        const auto c = static_cast<unsigned char>(reply->str[i]);
        if (c >= 0x20 && c < 0x7f && c != '\\') {
          text.push_back(static_cast<char>(c));
        } else {
          char escaped[5];
          std::snprintf(escaped, sizeof escaped, "\\x%02x", c);
          text += escaped;
        }
      }
      return text + "\"";
    }
    case REDIS_REPLY_ARRAY: {
      std::string text = "[";
      for (std::size_t i = 0; i < reply->elements; ++i) {
        text += (i > 0 ? ", " : "") + Render(reply->element[i]);
      }
      return text + "]";
    }
    default:
      return "<type " + std::to_string(reply->type) + ">";
  }
}

struct Step {
  std::vector<std::string> command;
  std::string expected;  // as Render() writes it
};

class Commands : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    server_ = std::make_unique<ServerProcess>(
        GetParam(), GetParam() == "prefork" ? std::vector<std::string>{"--workers", "16"}
                                            : std::vector<std::string>{});
  }
  bool IsRedis() const { return GetParam() == kRedisServer; }
  std::uint16_t port() const { return server_->port(); }

  // Runs each step on one connection, in order, and checks its reply.
  void RunScript(const std::vector<Step>& script) {
    Client client(port());
    for (const Step& step : script) {
      std::string shown;
      for (const auto& arg : step.command) shown += (shown.empty() ? "" : " ") + arg;
      EXPECT_EQ(Render(client.Command(step.command).get()), step.expected) << shown;
    }
  }

  std::unique_ptr<ServerProcess> server_;
};

TEST_P(Commands, Counters) {
  RunScript({
      {{"INCRBY", "n", "5"}, ":5"},
      {{"INCRBY", "n", "-7"}, ":-2"},
      {{"DECR", "n"}, ":-3"},
      {{"DECRBY", "n", "3"}, ":-6"},
      {{"DECRBY", "n", "-6"}, ":0"},
      {{"INCR", "n"}, ":1"},
      {{"INCRBY", "n", "abc"}, "-ERR value is not an integer or out of range"},
      {{"INCRBY", "n", "1.5"}, "-ERR value is not an integer or out of range"},
      {{"INCRBY", "n", " 1"}, "-ERR value is not an integer or out of range"},
      {{"INCRBY", "n", "9223372036854775808"}, "-ERR value is not an integer or out of range"},
      {{"INCRBY", "n", "9223372036854775807"}, "-ERR increment or decrement would overflow"},
      {{"DECRBY", "n", "-9223372036854775808"}, "-ERR decrement would overflow"},
      {{"SET", "m", "-9223372036854775808"}, "+OK"},
      {{"DECR", "m"}, "-ERR increment or decrement would overflow"},
      {{"INCRBY", "m", "-1"}, "-ERR increment or decrement would overflow"},
      {{"GET", "n"}, "\"1\""},
      {{"SET", "s", "hello"}, "+OK"},
      {{"INCRBY", "s", "1"}, "-ERR value is not an integer or out of range"},
      {{"DECR", "s"}, "-ERR value is not an integer or out of range"},
      {{"SET", "z", "007"}, "+OK"},
      {{"INCR", "z"}, "-ERR value is not an integer or out of range"},
      {{"INCRBY", "n"}, "-ERR wrong number of arguments for 'incrby' command"},
      {{"DECR", "n", "1"}, "-ERR wrong number of arguments for 'decr' command"},
  });
}

TEST_P(Commands, IncrByFloatReadsAndFormatsAsRedis) {
  RunScript({
      {{"INCRBYFLOAT", "f", "10.5"}, "\"10.5\""},
      {{"INCRBYFLOAT", "f", "0.1"}, "\"10.6\""},
      {{"INCRBYFLOAT", "f", "-10.6"}, "\"0\""},
      {{"INCRBYFLOAT", "g", "5.0e3"}, "\"5000\""},
      {{"INCRBYFLOAT", "g", "3.0"}, "\"5003\""},
      {{"INCRBYFLOAT", "h", "0x10"}, "\"16\""},
      {{"INCRBYFLOAT", "h", "-0.25"}, "\"15.75\""},
      {{"INCRBYFLOAT", "tiny", "1e-20"}, "\"0\""},  // 17 decimals, as Redis prints
      {{"INCRBYFLOAT", "f", "abc"}, "-ERR value is not a valid float"},
      {{"INCRBYFLOAT", "f", " 1"}, "-ERR value is not a valid float"},
      {{"INCRBYFLOAT", "f", "1 "}, "-ERR value is not a valid float"},
      {{"INCRBYFLOAT", "f", ""}, "-ERR value is not a valid float"},
      {{"INCRBYFLOAT", "f", "nan"}, "-ERR value is not a valid float"},
      {{"INCRBYFLOAT", "f", "inf"}, "-ERR increment would produce NaN or Infinity"},
      {{"INCRBYFLOAT", "f", "1e5000"}, "-ERR value is not a valid float"},
      {{"SET", "s", "text"}, "+OK"},
      {{"INCRBYFLOAT", "s", "1"}, "-ERR value is not a valid float"},
      {{"SET", "i", "3"}, "+OK"},
      {{"INCRBYFLOAT", "i", "1.5"}, "\"4.5\""},
      {{"INCR", "i"}, "-ERR value is not an integer or out of range"},
      {{"INCRBYFLOAT", "f"}, "-ERR wrong number of arguments for 'incrbyfloat' command"},
      {{"INCRBYFLOAT", "f", std::string("1\0", 2)}, "-ERR value is not a valid float"},
      {{"SET", "nul", std::string("1\0", 2)}, "+OK"},
      {{"INCRBYFLOAT", "nul", "1"}, "-ERR value is not a valid float"},
  });
}

TEST_P(Commands, ConnectionNamesAndHello) {
  RunScript({
      {{"CLIENT", "GETNAME"}, "(nil)"},
      {{"CLIENT", "SETNAME", "worker-1"}, "+OK"},
      {{"CLIENT", "GETNAME"}, "\"worker-1\""},
      {{"CLIENT", "SETNAME", "a b"},
       "-ERR Client names cannot contain spaces, newlines or special characters."},
      {{"CLIENT", "GETNAME"}, "\"worker-1\""},
      {{"CLIENT", "SETNAME", ""}, "+OK"},
      {{"CLIENT", "GETNAME"}, "(nil)"},
      {{"CLIENT", "SETNAME"}, "-ERR wrong number of arguments for 'client|setname' command"},
      {{"HELLO", "1"}, "-NOPROTO unsupported protocol version"},
      {{"HELLO", "abc"}, "-ERR Protocol version is not an integer or out of range"},
      {{"HELLO", "2", "FOO"}, "-ERR Syntax error in HELLO option 'FOO'"},
  });
  Client client(port());
  Reply hello = client.Command({"HELLO", "2", "SETNAME", "named-by-hello"});
  ASSERT_EQ(hello->type, REDIS_REPLY_ARRAY);
  EXPECT_EQ(Render(hello->element[4]), "\"proto\"");
  EXPECT_EQ(Render(hello->element[5]), ":2");
  EXPECT_EQ(Render(client.Command({"CLIENT", "GETNAME"}).get()), "\"named-by-hello\"");
  // A name belongs to its connection.
  Client other(port());
  EXPECT_EQ(Render(other.Command({"CLIENT", "GETNAME"}).get()), "(nil)");
  // And ids are the server's, unique across its connections (prefork: across its processes).
  std::vector<std::unique_ptr<Client>> clients;
  std::set<long long> ids;
  for (int i = 0; i < 12; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    ids.insert(clients.back()->Command({"CLIENT", "ID"})->integer);
  }
  EXPECT_EQ(ids.size(), clients.size());
}

TEST_P(Commands, StringCommands) {
  RunScript({
      {{"APPEND", "a", "hello"}, ":5"},
      {{"APPEND", "a", " world"}, ":11"},
      {{"GET", "a"}, "\"hello world\""},
      {{"STRLEN", "a"}, ":11"},
      {{"STRLEN", "missing"}, ":0"},
      {{"APPEND", "a", ""}, ":11"},
      {{"SETNX", "a", "x"}, ":0"},
      {{"SETNX", "b", "x"}, ":1"},
      {{"GETSET", "b", "y"}, "\"x\""},
      {{"GETSET", "c", "y"}, "(nil)"},
      {{"GETDEL", "c"}, "\"y\""},
      {{"GETDEL", "c"}, "(nil)"},
      {{"EXISTS", "c"}, ":0"},
      {{"MSET", "m1", "1", "m2", "2", "m1", "3"}, "+OK"},
      {{"MGET", "m1", "m2", "m3", "m1"}, "[\"3\", \"2\", (nil), \"3\"]"},
      {{"MSET", "m1"}, "-ERR wrong number of arguments for 'mset' command"},
      {{"MSET", "m1", "1", "m2"}, "-ERR wrong number of arguments for 'mset' command"},
      {{"MSETNX", "m1", "1", "m9", "9"}, ":0"},
      {{"EXISTS", "m9"}, ":0"},
      {{"MSETNX", "m8", "8", "m9", "9"}, ":1"},
      {{"MGET", "m8", "m9"}, "[\"8\", \"9\"]"},
      {{"MSETNX", "m7"}, "-ERR wrong number of arguments for 'msetnx' command"},
      {{"MGET"}, "-ERR wrong number of arguments for 'mget' command"},
      {{"GETSET", "b"}, "-ERR wrong number of arguments for 'getset' command"},
      {{"STRLEN", "a", "b"}, "-ERR wrong number of arguments for 'strlen' command"},
  });
}

TEST_P(Commands, SetOptions) {
  RunScript({
      {{"SET", "k", "v"}, "+OK"},
      {{"SET", "k", "v2", "NX"}, "(nil)"},
      {{"SET", "k", "v2", "nx", "GET"}, "\"v\""},
      {{"SET", "k", "v3", "XX", "GET"}, "\"v\""},
      {{"GET", "k"}, "\"v3\""},
      {{"SET", "k", "v4", "GET"}, "\"v3\""},
      {{"SET", "new", "v", "XX"}, "(nil)"},
      {{"SET", "new", "v", "XX", "GET"}, "(nil)"},
      {{"EXISTS", "new"}, ":0"},
      {{"SET", "new", "v", "NX", "GET"}, "(nil)"},
      {{"GET", "new"}, "\"v\""},
      {{"SET", "k", "v", "NX", "NX"}, "(nil)"},
      {{"SET", "k", "v", "NX", "XX"}, "-ERR syntax error"},
      {{"SET", "k", "v", "XX", "NX"}, "-ERR syntax error"},
      {{"SET", "k", "v", "EX"}, "-ERR syntax error"},
      {{"SET", "k", "v", "EX", "10", "PX", "5"}, "-ERR syntax error"},
      {{"SET", "k", "v", "KEEPTTL", "EX", "10"}, "-ERR syntax error"},
      {{"SET", "k", "v", "FOO"}, "-ERR syntax error"},
      {{"SET", "k"}, "-ERR wrong number of arguments for 'set' command"},
      {{"GET", "k"}, "\"v4\""},
  });
}

TEST_P(Commands, KeyspaceCommands) {
  RunScript({
      {{"FLUSHALL"}, "+OK"},
      {{"DBSIZE"}, ":0"},
      {{"MSET", "a", "1", "b", "2", "c", "3"}, "+OK"},
      {{"DBSIZE"}, ":3"},
      {{"EXISTS", "a", "a", "b", "nope"}, ":3"},
      {{"TYPE", "a"}, "+string"},
      {{"TYPE", "nope"}, "+none"},
      {{"UNLINK", "a", "nope"}, ":1"},
      {{"DEL", "b", "b", "c"}, ":2"},
      {{"DBSIZE"}, ":0"},
      {{"SET", "x", "1"}, "+OK"},
      {{"FLUSHDB", "ASYNC"}, "+OK"},
      {{"DBSIZE"}, ":0"},
      {{"SET", "x", "1"}, "+OK"},
      {{"FLUSHALL", "sync"}, "+OK"},
      {{"EXISTS", "x"}, ":0"},
      {{"FLUSHDB", "foo"}, "-ERR syntax error"},
      {{"FLUSHALL", "ASYNC", "SYNC"}, "-ERR syntax error"},
      {{"SELECT", "0"}, "+OK"},
      {{"SELECT", "1"}, "-ERR DB index is out of range"},
      {{"SELECT", "-1"}, "-ERR DB index is out of range"},
      {{"SELECT", "abc"}, "-ERR value is not an integer or out of range"},
      {{"SELECT", "99999999999"},
       "-ERR value is out of range, value must between -2147483648 and 2147483647"},
      {{"ECHO", "hi"}, "\"hi\""},
      {{"PING"}, "+PONG"},
      {{"PING", "hi"}, "\"hi\""},
      {{"TYPE"}, "-ERR wrong number of arguments for 'type' command"},
      {{"DBSIZE", "x"}, "-ERR wrong number of arguments for 'dbsize' command"},
      {{"EXISTS"}, "-ERR wrong number of arguments for 'exists' command"},
  });
}

TEST_P(Commands, EmptyAndBinaryKeysAndValues) {
  const std::string key("k\0\r\n\xff", 5), value("\0v\r\n", 4);
  RunScript({
      {{"SET", "", "empty key"}, "+OK"},
      {{"GET", ""}, "\"empty key\""},
      {{"APPEND", "", "!"}, ":10"},
      {{"MSET", "", "", key, value}, "+OK"},
      {{"MGET", "", key}, "[\"\", \"\\x00v\\x0d\\x0a\"]"},
      {{"STRLEN", key}, ":4"},
      {{"APPEND", key, std::string("\0", 1)}, ":5"},
      {{"GETSET", key, "1"}, "\"\\x00v\\x0d\\x0a\\x00\""},
      {{"INCRBY", key, "2"}, ":3"},
      {{"INCRBYFLOAT", key, "0.5"}, "\"3.5\""},
      {{"SETNX", std::string("\0", 1), ""}, ":1"},
      {{"EXISTS", "", key, std::string("\0", 1)}, ":3"},
      {{"GETDEL", ""}, "\"\""},
      {{"SET", "v", ""}, "+OK"},
      {{"INCR", "v"}, "-ERR value is not an integer or out of range"},
      {{"INCRBYFLOAT", "v", "1"}, "-ERR value is not a valid float"},
  });
}

TEST_P(Commands, CommandDescribesWhatIsServed) {
  Client client(port());
  Reply all = client.Command({"COMMAND"});
  ASSERT_EQ(all->type, REDIS_REPLY_ARRAY);
  Reply count = client.Command({"COMMAND", "COUNT"});
  ASSERT_EQ(count->type, REDIS_REPLY_INTEGER);
  EXPECT_EQ(static_cast<std::size_t>(count->integer), all->elements);
  // Every command this suite uses is described, with Redis's own arity and key positions.
  Reply info = client.Command({"COMMAND", "INFO", "get", "mset", "incrbyfloat", "nosuch"});
  ASSERT_EQ(info->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(info->elements, 4u);
  const auto head = [](const redisReply* entry) {
    std::string text;
    for (std::size_t i : {0, 1, 3, 4, 5}) text += Render(entry->element[i]) + " ";
    return text;
  };
  EXPECT_EQ(head(info->element[0]), "\"get\" :2 :1 :1 :1 ");
  EXPECT_EQ(head(info->element[1]), "\"mset\" :-3 :1 :-1 :2 ");
  EXPECT_EQ(head(info->element[2]), "\"incrbyfloat\" :3 :1 :1 :1 ");
  EXPECT_EQ(Render(info->element[3]), "(nil)");
  for (const char* name :
       {"incrby", "decr", "decrby", "append", "strlen", "setnx", "getset", "getdel", "mget",
        "msetnx", "exists", "unlink", "type", "dbsize", "flushdb", "flushall", "select", "echo"}) {
    Reply one = client.Command({"COMMAND", "INFO", name});
    ASSERT_EQ(one->type, REDIS_REPLY_ARRAY);
    EXPECT_EQ(one->element[0]->type, REDIS_REPLY_ARRAY) << name << " is not described";
  }
  // DOCS: name, then the doc's fields (a flat map in RESP2), with the summary Redis gives.
  Reply docs = client.Command({"COMMAND", "DOCS", "get"});
  ASSERT_EQ(docs->type, REDIS_REPLY_ARRAY);
  ASSERT_EQ(docs->elements, 2u);
  EXPECT_EQ(Render(docs->element[0]), "\"get\"");
  const redisReply* fields = docs->element[1];
  ASSERT_GE(fields->elements, 2u);
  EXPECT_EQ(Render(fields->element[0]), "\"summary\"");
  EXPECT_EQ(Render(fields->element[1]), "\"Get the value of a key\"");
  EXPECT_EQ(Render(client.Command({"COMMAND", "COUNT", "x"}).get()),
            "-ERR wrong number of arguments for 'command|count' command");
  EXPECT_EQ(Render(client.Command({"COMMAND", "NOSUCH"}).get()),
            "-ERR unknown subcommand 'NOSUCH'. Try COMMAND HELP.");
}

// What we refuse by design answers a clear error, and the connection goes on (models only: Redis
// serves these).
TEST_P(Commands, ExpiryAndTransactionsAreRefusedClearly) {
  if (IsRedis()) GTEST_SKIP() << "redis-server serves key expiry and transactions";
  const std::string expiry =
      ": key expiry (EX, PX, EXAT, PXAT, KEEPTTL) is not supported; keys stay until deleted";
  RunScript({
      {{"SET", "k", "v", "EX", "10"}, "-ERR SET EX" + expiry},
      {{"SET", "k", "v", "px", "10", "NX"}, "-ERR SET px" + expiry},
      {{"SET", "k", "v", "EXAT", "1"}, "-ERR SET EXAT" + expiry},
      {{"SET", "k", "v", "PXAT", "1"}, "-ERR SET PXAT" + expiry},
      {{"SET", "k", "v", "KEEPTTL"}, "-ERR SET KEEPTTL" + expiry},
      {{"EXISTS", "k"}, ":0"},  // refused, not half done
      {{"MULTI"}, "-ERR unknown command 'MULTI', with args beginning with: "},
      {{"SET", "k", "v"}, "+OK"},  // not queued: there is no transaction
      {{"EXEC"}, "-ERR unknown command 'EXEC', with args beginning with: "},
      {{"GET", "k"}, "\"v\""},
  });
}

// INCRBY and DECRBY from many connections (prefork: many processes) lose no update.
TEST_P(Commands, CountersFromManyConnectionsLoseNoUpdate) {
  constexpr int kConnections = 16, kRounds = 200;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kConnections; ++t) {
    threads.emplace_back([&] {
      Client client(port());
      for (int i = 0; i < kRounds; ++i) {
        if (client.Command({"INCRBY", "n", "3"})->type != REDIS_REPLY_INTEGER) ++failures;
        if (client.Command({"DECRBY", "n", "1"})->type != REDIS_REPLY_INTEGER) ++failures;
        if (client.Command({"INCRBYFLOAT", "f", "0.5"})->type != REDIS_REPLY_STRING) ++failures;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  RunScript({{{"GET", "n"}, "\"" + std::to_string(2 * kConnections * kRounds) + "\""},
             {{"GET", "f"}, "\"" + std::to_string(kConnections * kRounds / 2) + "\""}});
}

// MSET's keys change together for every other client: MGET never sees them differ, while
// writers on other connections (prefork: other processes) rewrite them all.
TEST_P(Commands, MSetIsAtomicForEveryConnection) {
  constexpr int kWriters = 3, kReaders = 3, kRounds = 300;
  const std::vector<std::string> keys = {"k1", "k2", "k3", "k4", "k5", "k6", "k7", "k8"};
  std::atomic<int> torn{0}, failures{0};
  std::vector<std::thread> threads;
  for (int w = 0; w < kWriters; ++w) {
    threads.emplace_back([&, w] {
      Client client(port());
      for (int i = 0; i < kRounds; ++i) {
        std::vector<std::string> command = {"MSET"};
        for (const auto& key : keys) {
          command.push_back(key);
          command.push_back(std::to_string(w) + ":" + std::to_string(i));
        }
        if (Render(client.Command(command).get()) != "+OK") ++failures;
      }
    });
  }
  for (int r = 0; r < kReaders; ++r) {
    threads.emplace_back([&] {
      Client client(port());
      std::vector<std::string> command = {"MGET"};
      command.insert(command.end(), keys.begin(), keys.end());
      for (int i = 0; i < kRounds; ++i) {
        Reply reply = client.Command(command);
        if (reply->type != REDIS_REPLY_ARRAY || reply->elements != keys.size()) {
          ++failures;
          continue;
        }
        for (std::size_t k = 1; k < keys.size(); ++k) {
          if (Render(reply->element[k]) != Render(reply->element[0])) {
            ++torn;
            break;
          }
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(torn.load(), 0) << "MGET saw an MSET half done";
}

// MSETNX is all or nothing: connections racing for overlapping keys, exactly one wins each round,
// and only the winner's keys exist.
TEST_P(Commands, MSetNxLetsExactlyOneRacerWin) {
  constexpr int kRacers = 6, kRounds = 40;
  std::vector<std::vector<int>> wins(kRounds, std::vector<int>(kRacers, 0));
  std::vector<std::thread> threads;
  for (int t = 0; t < kRacers; ++t) {
    threads.emplace_back([&, t] {
      Client client(port());
      for (int round = 0; round < kRounds; ++round) {
        const std::string prefix = "r" + std::to_string(round) + ":";
        Reply reply = client.Command({"MSETNX", prefix + "own" + std::to_string(t), "x",
                                      prefix + "shared", std::to_string(t)});
        wins[round][t] = reply->type == REDIS_REPLY_INTEGER ? static_cast<int>(reply->integer) : -1;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  Client client(port());
  for (int round = 0; round < kRounds; ++round) {
    int winner = -1, winners = 0;
    for (int t = 0; t < kRacers; ++t) {
      ASSERT_NE(wins[round][t], -1) << "round " << round << ": not an integer reply";
      if (wins[round][t] == 1) winner = t, ++winners;
    }
    ASSERT_EQ(winners, 1) << "round " << round;
    const std::string prefix = "r" + std::to_string(round) + ":";
    EXPECT_EQ(Render(client.Command({"GET", prefix + "shared"}).get()),
              "\"" + std::to_string(winner) + "\"");
    for (int t = 0; t < kRacers; ++t) {
      EXPECT_EQ(client.Command({"EXISTS", prefix + "own" + std::to_string(t)})->integer,
                t == winner ? 1 : 0);
    }
  }
}

// FLUSHALL empties the store for every connection (prefork: every process's view).
TEST_P(Commands, FlushAllIsSeenByEveryConnection) {
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(port()));
    EXPECT_EQ(Render(clients.back()->Command({"SET", "key" + std::to_string(i), "v"}).get()),
              "+OK");
  }
  EXPECT_EQ(Render(clients[0]->Command({"DBSIZE"}).get()), ":8");
  EXPECT_EQ(Render(clients[3]->Command({"FLUSHALL"}).get()), "+OK");
  for (auto& client : clients) {
    EXPECT_EQ(Render(client->Command({"DBSIZE"}).get()), ":0");
    EXPECT_EQ(Render(client->Command({"GET", "key0"}).get()), "(nil)");
  }
}

std::vector<std::string> ModelsAndRedis() {
  std::vector<std::string> all = ModelNames("resp");
  all.push_back(kRedisServer);
  return all;
}

INSTANTIATE_TEST_SUITE_P(Models, Commands, ::testing::ValuesIn(ModelsAndRedis()),
                         [](const auto& info) {
                           std::string name = info.param;
                           for (char& c : name) c = c == '-' ? '_' : c;
                           return name;
                         });

}  // namespace
}  // namespace switchyard::testing
