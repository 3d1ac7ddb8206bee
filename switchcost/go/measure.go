package main

// The harness every figure goes through, the same as switchcost/measure.{h,cc} in C++: the
// record of one figure, the repeated-median measurement, the clocks, CPU pinning and PSS.

import (
	"bufio"
	"fmt"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"
)

// Figure is one row of the results, with exactly the fields (and JSON names) of the C++ Figure.
type Figure struct {
	Unit        string  `json:"unit"`          // goroutine
	Operation   string  `json:"operation"`     // switch, create, memory
	Method      string  `json:"method"`        // chan-pingpong/gomaxprocs=1, pss@1000, ...
	Pinned      bool    `json:"pinned"`        // both sides on one CPU
	Value       float64 `json:"value"`         // median of the runs
	UnitOfValue string  `json:"unit_of_value"` // ns or bytes
	Spread      float64 `json:"spread"`        // (max - min) / 2 of the runs
	Runs        int     `json:"runs"`          // how many runs the median is taken over
	Note        string  `json:"note"`          // what a reader needs to read the figure
}

// Stats is the median and half-range of a set of runs.
type Stats struct {
	Median, Spread float64
	Runs           int
}

// Summarize returns the median and half the range of samples (not empty).
func Summarize(samples []float64) Stats {
	s := append([]float64(nil), samples...)
	sort.Float64s(s)
	n := len(s)
	median := s[n/2]
	if n%2 == 0 {
		median = (s[n/2-1] + s[n/2]) / 2
	}
	return Stats{Median: median, Spread: (s[n-1] - s[0]) / 2, Runs: n}
}

// Budget is how long one timed run lasts and how many runs a figure is the median of.
type Budget struct {
	SecondsPerRun float64
	Runs          int
}

// MeasureNs times timedRun(n), which performs n iterations and returns the seconds they took.
// As in C++: n doubles from 8 until one run lasts half the budget, is then scaled to the budget,
// and Runs runs are taken. Returns nanoseconds per operation (opsPerIteration per iteration).
func MeasureNs(b Budget, opsPerIteration float64, timedRun func(n uint64) float64) Stats {
	n := uint64(8)
	seconds := timedRun(n)
	for seconds < b.SecondsPerRun/2 && n < 1<<40 {
		n *= 2
		seconds = timedRun(n)
	}
	n = uint64(math.Max(1, float64(n)*b.SecondsPerRun/math.Max(seconds, 1e-9)))
	samples := make([]float64, 0, b.Runs)
	for run := 0; run < b.Runs; run++ {
		samples = append(samples, timedRun(n)*1e9/(float64(n)*opsPerIteration))
	}
	return Summarize(samples)
}

// ProcessCPUSeconds is the CPU time, user and system, of every thread of this process
// (CLOCK_PROCESS_CPUTIME_ID). Goroutines move between the runtime's threads, so no thread's own
// clock follows them: with GOMAXPROCS=1 and the process pinned to one CPU, the process's CPU time
// is the C++ harness's "CPU time of both sides", the wall time minus what other processes ran.
func ProcessCPUSeconds() float64 {
	const clockProcessCPUTimeID = 2
	var ts syscall.Timespec
	if _, _, errno := syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockProcessCPUTimeID,
		uintptr(unsafe.Pointer(&ts)), 0); errno != 0 {
		panic(fmt.Sprintf("clock_gettime: %v", errno))
	}
	return float64(ts.Sec) + float64(ts.Nsec)/1e9
}

// start is when the program started: WallSeconds counts from it.
var start = time.Now()

// WallSeconds is the monotonic clock in seconds since start: the clock of hand-offs between
// threads on two CPUs, where waiting for the other CPU is the cost.
func WallSeconds() float64 { return time.Since(start).Seconds() }

// cpuMask is a cpu_set_t of 1024 CPUs.
type cpuMask [16]uint64

func getAffinity(tid int) (cpuMask, error) {
	var mask cpuMask
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_GETAFFINITY, uintptr(tid),
		unsafe.Sizeof(mask), uintptr(unsafe.Pointer(&mask)))
	if errno != 0 {
		return mask, fmt.Errorf("sched_getaffinity: %v", errno)
	}
	return mask, nil
}

func setAffinity(tid int, mask *cpuMask) error {
	_, _, errno := syscall.RawSyscall(syscall.SYS_SCHED_SETAFFINITY, uintptr(tid),
		unsafe.Sizeof(*mask), uintptr(unsafe.Pointer(mask)))
	if errno != 0 {
		return fmt.Errorf("sched_setaffinity(%d): %v", tid, errno)
	}
	return nil
}

// AllowedCPUs lists the CPUs this process may run on, in order.
func AllowedCPUs() ([]int, error) {
	mask, err := getAffinity(0)
	if err != nil {
		return nil, err
	}
	var cpus []int
	for cpu := 0; cpu < 64*len(mask); cpu++ {
		if mask[cpu/64]&(1<<(cpu%64)) != 0 {
			cpus = append(cpus, cpu)
		}
	}
	return cpus, nil
}

// setProcessAffinity applies mask to every thread of the process. sched_setaffinity acts on one
// thread, and the Go runtime runs goroutines on several: each thread in /proc/self/task is set,
// and the pass is repeated until no new thread appears (a new thread inherits its creator's mask).
func setProcessAffinity(mask *cpuMask) error {
	done := map[int]bool{}
	for {
		entries, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return err
		}
		fresh := 0
		for _, entry := range entries {
			tid, err := strconv.Atoi(entry.Name())
			if err != nil || done[tid] {
				continue
			}
			// A thread that ended meanwhile (ESRCH) needs no mask.
			if err := setAffinity(tid, mask); err != nil && !strings.Contains(err.Error(), "no such process") {
				return err
			}
			done[tid] = true
			fresh++
		}
		if fresh == 0 {
			return nil
		}
	}
}

// PinProcess pins every thread of this process to cpu and returns what restores the mask it had.
func PinProcess(cpu int) (restore func() error, err error) {
	previous, err := getAffinity(0)
	if err != nil {
		return nil, err
	}
	var mask cpuMask
	mask[cpu/64] = 1 << (cpu % 64)
	if err := setProcessAffinity(&mask); err != nil {
		return nil, err
	}
	return func() error { return setProcessAffinity(&previous) }, nil
}

// PssBytes is the "Pss:" line of /proc/self/smaps_rollup, in bytes.
func PssBytes() (float64, error) {
	file, err := os.Open("/proc/self/smaps_rollup")
	if err != nil {
		return 0, err
	}
	defer file.Close()
	scanner := bufio.NewScanner(file)
	for scanner.Scan() {
		fields := strings.Fields(scanner.Text())
		if len(fields) >= 2 && fields[0] == "Pss:" {
			kb, err := strconv.ParseFloat(fields[1], 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("no Pss: in /proc/self/smaps_rollup")
}
