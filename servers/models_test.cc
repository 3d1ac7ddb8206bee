// The registry (servers/models.cc) and what `switchyard serve` makes of it: every entry usable,
// every listing format saying the same, --model accepting exactly the registered names.
#include "servers/models.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "servers/peers.h"
#include "tests/server_process.h"

namespace switchyard {
namespace {

using testing::RunBinary;

std::string Listing(std::string_view format) {
  std::ostringstream out;
  PrintModels(out, format);
  return out.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Registry, EveryEntryIsUsable) {
  ASSERT_FALSE(Models().empty());
  std::set<std::string_view> names;
  for (const Model& model : Models()) {
    // The name is also a ctest, compose-service and Prometheus-label name.
    EXPECT_TRUE(std::regex_match(std::string(model.name), std::regex("[a-z][a-z0-9_]*")))
        << model.name;
    EXPECT_TRUE(names.insert(model.name).second) << model.name << " is registered twice";
    EXPECT_NE(model.run, nullptr) << model.name;
    EXPECT_FALSE(model.runs.empty()) << model.name;
    EXPECT_EQ(model.runs.find_first_of("\t\n"), std::string_view::npos) << model.name;
    EXPECT_EQ(FindModel(model.name), &model);
    if (model.peer != nullptr) {  // a program of its own, started and supervised by serve
      EXPECT_EQ(model.start_processes, StartPeer) << model.name;
      EXPECT_EQ(model.run, RunPeer) << model.name;
      ASSERT_NE(model.peer->command, nullptr) << model.name;
      EXPECT_NE(model.peer->command[0], nullptr) << model.name;
      EXPECT_FALSE(model.peer->package.empty()) << model.name;
      EXPECT_NE(RuntimeName(model), "c++") << model.name;
    } else {
      EXPECT_EQ(RuntimeName(model), "c++") << model.name;
    }
  }
  EXPECT_EQ(FindModel("no_such_model"), nullptr);
  EXPECT_EQ(ModelNames().size(), Models().size());
}

TEST(Registry, EveryFormatListsTheSameModels) {
  const std::vector<std::string> tsv = Lines(Listing("tsv"));
  const auto json = nlohmann::json::parse(Listing("json"));
  const std::vector<std::string> table = Lines(Listing("table"));
  ASSERT_EQ(tsv.size(), Models().size());
  ASSERT_EQ(json.size(), Models().size());
  ASSERT_EQ(table.size(), Models().size() + 1);  // a header, then a row a model
  EXPECT_EQ(table[0].rfind("model ", 0), 0u) << table[0];
  for (std::size_t i = 0; i < Models().size(); ++i) {
    const Model& model = Models()[i];
    const std::string protocol(ProtocolName(model.protocol));
    const std::string scheduler(SchedulerName(model.scheduler));
    const std::string runtime(RuntimeName(model));
    EXPECT_EQ(tsv[i], std::string(model.name) + "\t" + protocol + "\t" + scheduler + "\t" +
                          std::string(model.runs) + "\t" + runtime);
    EXPECT_EQ(json[i]["name"], model.name);
    EXPECT_EQ(json[i]["protocol"], protocol);
    EXPECT_EQ(json[i]["scheduled_by"], scheduler);
    EXPECT_EQ(json[i]["runs"], model.runs);
    EXPECT_EQ(json[i]["runtime"], runtime);
    EXPECT_EQ(table[i + 1].rfind(std::string(model.name) + " ", 0), 0u) << table[i + 1];
    EXPECT_NE(table[i + 1].find(std::string(model.runs)), std::string::npos) << table[i + 1];
  }
  EXPECT_THROW(Listing("yaml"), std::invalid_argument);
}

TEST(Registry, ServeListsItAndAcceptsExactlyItsNames) {
  std::string output;
  for (const std::string format : {"table", "tsv", "json"}) {
    EXPECT_EQ(RunBinary({"serve", "--list-models", "--format", format}, &output), 0) << output;
    EXPECT_EQ(output, Listing(format));
  }
  EXPECT_EQ(RunBinary({"serve", "--list-models"}, &output), 0);
  EXPECT_EQ(output, Listing("table"));
  EXPECT_EQ(RunBinary({"serve", "--list-models", "--format", "yaml"}, &output), 2);
  EXPECT_NE(output.find("--format"), std::string::npos) << output;

  // --model names every registered model when it refuses one, and --model stays required.
  EXPECT_EQ(RunBinary({"serve", "--model", "no_such_model"}, &output), 2);
  for (const Model& model : Models()) {
    EXPECT_NE(output.find(std::string(model.name)), std::string::npos) << output;
  }
  EXPECT_EQ(RunBinary({"serve", "--port", "0"}, &output), 2);
  EXPECT_NE(output.find("--model is required"), std::string::npos) << output;
}

}  // namespace
}  // namespace switchyard
