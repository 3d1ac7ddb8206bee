#pragma once

#include <string_view>

namespace switchyard::loadgen {

// Time the hypervisor ran something else while this (virtual) machine's CPUs wanted to run:
// "steal". On a VM a busy CPU loses it in stalls of milliseconds, which an open loop rightly
// counts in its tail; a run says how much there was, so that a tail can be read against it.
struct MachineSteal {
  double seconds = 0;  // summed over the machine's CPUs, since boot
  unsigned cpus = 0;   // 0: not known (no /proc/stat)
};

// From the text of /proc/stat: the "cpu" line's eighth figure (steal, in ticks of
// `ticks_per_second`) and the number of "cpuN" lines. Zeros when the text has no such line.
MachineSteal ParseMachineSteal(std::string_view proc_stat, long ticks_per_second);

// This machine's steal so far (zeros where /proc/stat cannot be read).
MachineSteal ReadMachineSteal();

// The share of the machine's CPU time stolen between two readings `wall_seconds` apart.
double StealFraction(const MachineSteal& before, const MachineSteal& after, double wall_seconds);

}  // namespace switchyard::loadgen
