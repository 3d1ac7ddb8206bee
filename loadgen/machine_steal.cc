#include "loadgen/machine_steal.h"

#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace switchyard::loadgen {

MachineSteal ParseMachineSteal(std::string_view proc_stat, long ticks_per_second) {
  MachineSteal steal;
  while (!proc_stat.empty()) {
    const std::size_t end = proc_stat.find('\n');
    std::string_view line = proc_stat.substr(0, end);
    proc_stat = end == std::string_view::npos ? std::string_view() : proc_stat.substr(end + 1);
    if (line.substr(0, 3) != "cpu") continue;
    if (line.size() > 3 && line[3] != ' ') {  // "cpu0", "cpu1", ...: one line a CPU
      ++steal.cpus;
      continue;
    }
    // "cpu  user nice system idle iowait irq softirq steal guest guest_nice"
    line.remove_prefix(3);
    for (int field = 1; field <= 8; ++field) {
      while (!line.empty() && line.front() == ' ') line.remove_prefix(1);
      unsigned long long ticks = 0;
      const auto [next, error] = std::from_chars(line.data(), line.data() + line.size(), ticks);
      if (error != std::errc()) return {};  // a kernel too old to count steal, or not /proc/stat
      line.remove_prefix(static_cast<std::size_t>(next - line.data()));
      if (field == 8) steal.seconds = static_cast<double>(ticks) / ticks_per_second;
    }
  }
  return steal;
}

MachineSteal ReadMachineSteal() {
  std::ifstream file("/proc/stat");
  std::stringstream text;
  text << file.rdbuf();
  return ParseMachineSteal(text.str(), sysconf(_SC_CLK_TCK));
}

double StealFraction(const MachineSteal& before, const MachineSteal& after, double wall_seconds) {
  if (after.cpus == 0 || wall_seconds <= 0 || after.seconds < before.seconds) return 0;
  return (after.seconds - before.seconds) / (wall_seconds * after.cpus);
}

}  // namespace switchyard::loadgen
