// What a process switch pays that a thread switch does not: the address-space switch and its
// indirect cost through the TLB, measured with a working set spread over many pages (one touch a
// page, so TLB reach rather than cache size decides), with the CPU's TLB miss counts beside the
// times where the machine exposes them.
#pragma once

#include <string>
#include <vector>

#include "switchcost/measure.h"

namespace switchyard::switchcost {

// What decides how much a change of address space costs on this machine.
struct AddressSpaceFacts {
  bool pcid = false;     // "pcid" in /proc/cpuinfo's flags: TLB entries tagged by address space
  bool invpcid = false;  // "invpcid": the kernel can drop one address space's entries alone
  std::string pti;       // /sys/devices/system/cpu/vulnerabilities/meltdown, as it reads
  bool tlb_counters = false;        // perf_event_open(2) counts dTLB load misses here
  std::string tlb_counters_reason;  // why not; or, when they count, what they count
};

// Reads the flags and the Meltdown state, and probes the dTLB miss counter with
// perf_event_open(2) (a few hundred page touches, counted).
AddressSpaceFacts ReadAddressSpaceFacts();

// One line for people: what the facts mean for a process switch and a thread switch.
std::string DescribeAddressSpace(const AddressSpaceFacts& facts);

// The pinned futex ping-pong of MeasureOsSwitches between two processes and between two threads,
// each side touching one byte in each of `pages` distinct 4 KiB pages of its own buffer between
// switches ("futex+pages<N>", ns per switch); the same touches with no switch ("touch",
// "pages<N>", ns per pass); and, where facts.tlb_counters, the dTLB and iTLB misses per switch
// ("tlb-misses", "dTLB-load-misses/futex+pages<N>", count). Where the counters are not exposed it
// says so on stderr and leaves their rows out.
std::vector<Figure> MeasureTlbReach(const Budget& budget, const std::vector<int>& pages,
                                    const AddressSpaceFacts& facts);

}  // namespace switchyard::switchcost
