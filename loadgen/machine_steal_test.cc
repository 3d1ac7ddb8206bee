#include "loadgen/machine_steal.h"

#include <gtest/gtest.h>

namespace switchyard::loadgen {
namespace {

// The head of a real /proc/stat from a 2-CPU VM (the figures are ticks of 1/100 s).
constexpr std::string_view kProcStat =
    "cpu  2772831 108030 1259892 3486453 15626 0 256162 65181 0 0\n"
    "cpu0 1391552 54133 631202 1740099 7812 0 130540 33498 0 0\n"
    "cpu1 1381279 53897 628690 1746354 7814 0 125622 31683 0 0\n"
    "intr 123456 0 0\n"
    "ctxt 987654\n";

TEST(MachineSteal, ReadsTheCpuLinesStealAndCountsTheCpus) {
  const MachineSteal steal = ParseMachineSteal(kProcStat, 100);
  EXPECT_DOUBLE_EQ(steal.seconds, 651.81);
  EXPECT_EQ(steal.cpus, 2u);
}

TEST(MachineSteal, GivesNothingForTextWithoutAStealFigure) {
  EXPECT_EQ(ParseMachineSteal("cpu  1 2 3 4\ncpu0 1 2 3 4\n", 100).cpus, 0u);
  EXPECT_EQ(ParseMachineSteal("", 100).cpus, 0u);
  EXPECT_EQ(ParseMachineSteal("not proc stat\n", 100).cpus, 0u);
}

TEST(MachineSteal, FractionIsTheShareOfAllTheCpusTime) {
  const MachineSteal before{10.0, 2}, after{10.5, 2};
  EXPECT_DOUBLE_EQ(StealFraction(before, after, 5.0), 0.05);  // 0.5 s of 2 CPUs x 5 s
  EXPECT_EQ(StealFraction(before, after, 0.0), 0.0);
  EXPECT_EQ(StealFraction(after, before, 5.0), 0.0);  // never negative
  EXPECT_EQ(StealFraction({}, {}, 5.0), 0.0);         // not known
}

TEST(MachineSteal, ThisMachinesReadingOnlyGrows) {
  const MachineSteal first = ReadMachineSteal();
  const MachineSteal second = ReadMachineSteal();
  EXPECT_GT(first.cpus, 0u);  // Linux: /proc/stat is there
  EXPECT_GE(second.seconds, first.seconds);
}

}  // namespace
}  // namespace switchyard::loadgen
