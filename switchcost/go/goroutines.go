package main

// The goroutine measurements: a switch (unbuffered-channel ping-pong with GOMAXPROCS=1 pinned
// and GOMAXPROCS=2, and a runtime.Gosched yield loop), a creation, and the memory of a parked
// goroutine, each taken the way switchcost/ takes the C++ rows.

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
)

// warmUp round trips run before every timed loop, as in the C++ ping-pongs.
const warmUp = 50

// timeChanPingPong runs n round trips between this goroutine and a partner over two unbuffered
// channels and returns the seconds they took on clock. Each round trip is two switches: a send on
// an unbuffered channel to a goroutine blocked in receive hands the value over and makes it
// runnable, and the sender's own receive then blocks it, so the scheduler runs the partner.
func timeChanPingPong(n uint64, clock func() float64) float64 {
	ping := make(chan struct{})
	pong := make(chan struct{})
	done := make(chan struct{})
	go func() {
		for i := uint64(0); i < n+warmUp; i++ {
			<-ping
			pong <- struct{}{}
		}
		close(done)
	}()
	for i := 0; i < warmUp; i++ {
		ping <- struct{}{}
		<-pong
	}
	begin := clock()
	for i := uint64(0); i < n; i++ {
		ping <- struct{}{}
		<-pong
	}
	seconds := clock() - begin
	<-done
	return seconds
}

// timeGosched has two goroutines call runtime.Gosched n times each, with GOMAXPROCS=1: each call
// puts the caller on the global run queue and runs the other, one switch without a channel.
func timeGosched(n uint64) float64 {
	var ready, finished sync.WaitGroup
	ready.Add(2)
	finished.Add(2)
	gate := make(chan struct{})
	for g := 0; g < 2; g++ {
		go func() {
			ready.Done()
			<-gate
			for i := uint64(0); i < n; i++ {
				runtime.Gosched()
			}
			finished.Done()
		}()
	}
	ready.Wait()
	begin := ProcessCPUSeconds()
	close(gate)
	finished.Wait()
	return ProcessCPUSeconds() - begin
}

// createBatch is how many goroutines are started before the creator waits for them: enough that
// the creator's wait is a small share, few enough that they never pile up in memory.
const createBatch = 100

// timeCreate starts n goroutines that each call wg.Done, createBatch at a time, waiting for each
// batch, and returns the process's CPU time: with GOMAXPROCS=1 creator and created run on one P,
// so this is the whole life of a goroutine (newproc, first run, exit), like the C++ coroutine's
// new-frame+run+destroy.
func timeCreate(n uint64) float64 {
	var wg sync.WaitGroup
	var counter uint64
	begin := ProcessCPUSeconds()
	for done := uint64(0); done < n; {
		batch := n - done
		if batch > createBatch {
			batch = createBatch
		}
		wg.Add(int(batch))
		for i := uint64(0); i < batch; i++ {
			go func() {
				atomic.AddUint64(&counter, 1) // proves every goroutine ran
				wg.Done()
			}()
		}
		wg.Wait()
		done += batch
	}
	seconds := ProcessCPUSeconds() - begin
	if atomic.LoadUint64(&counter) != n {
		panic("goroutines did not run")
	}
	return seconds
}

// MeasureGoroutineSwitches returns the switch figures. The GOMAXPROCS=1 ones pin the whole
// process (every runtime thread) to the first allowed CPU and time by the process's CPU time;
// GOMAXPROCS=2 leaves the process free on its CPUs and times by the wall clock.
func MeasureGoroutineSwitches(b Budget) ([]Figure, error) {
	cpus, err := AllowedCPUs()
	if err != nil {
		return nil, err
	}
	previous := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(previous)
	var figures []Figure
	restore, err := PinProcess(cpus[0])
	if err != nil {
		return nil, err
	}
	one := MeasureNs(b, 2, func(n uint64) float64 { return timeChanPingPong(n, ProcessCPUSeconds) })
	figures = append(figures, Figure{"goroutine", "switch", "chan-pingpong", true,
		one.Median, "ns", one.Spread, one.Runs, fmt.Sprintf(
			"unbuffered-channel round trip / 2, GOMAXPROCS=1, every runtime thread pinned to CPU %d "+
				"(sched_setaffinity); process CPU time", cpus[0])})
	gosched := MeasureNs(b, 2, timeGosched)
	figures = append(figures, Figure{"goroutine", "switch", "gosched", true,
		gosched.Median, "ns", gosched.Spread, gosched.Runs, fmt.Sprintf(
			"two goroutines calling runtime.Gosched in turn (through the global run queue), "+
				"GOMAXPROCS=1, pinned to CPU %d; process CPU time", cpus[0])})
	if err := restore(); err != nil {
		return nil, err
	}

	if len(cpus) < 2 {
		fmt.Fprintln(os.Stderr, "switchcost-go: one CPU allowed: the GOMAXPROCS=2 switch is left out")
		return figures, nil
	}
	runtime.GOMAXPROCS(2)
	two := MeasureNs(b, 2, func(n uint64) float64 { return timeChanPingPong(n, WallSeconds) })
	figures = append(figures, Figure{"goroutine", "switch", "chan-pingpong", false,
		two.Median, "ns", two.Spread, two.Runs,
		"unbuffered-channel round trip / 2, GOMAXPROCS=2, unpinned, no LockOSThread: the two " +
			"goroutines may sit on two threads (a cross-thread hand-off with a wake-up) or share one " +
			"P; wall clock"})
	return figures, nil
}

// MeasureGoroutineCreation returns the creation figure, with GOMAXPROCS=1 (unpinned, as the C++
// creation figures are).
func MeasureGoroutineCreation(b Budget) []Figure {
	previous := runtime.GOMAXPROCS(1)
	defer runtime.GOMAXPROCS(previous)
	stats := MeasureNs(b, 1, timeCreate)
	return []Figure{{"goroutine", "create", "go+wg.Done", false, stats.Median, "ns", stats.Spread,
		stats.Runs, fmt.Sprintf("go func(){...; wg.Done()} in batches of %d, each waited for: "+
			"creation, first run and exit; GOMAXPROCS=1, process CPU time", createBatch)}}
}

// childEnv names the environment variable that makes this program a memory child: its value is
// the number of goroutines to park.
const childEnv = "SWITCHCOST_GO_MEMORY_CHILD"

// memoryResult is what a memory child prints: per goroutine, the growth of PSS and of the
// runtime's StackInuse.
type memoryResult struct {
	Pss        float64 `json:"pss"`
	StackInuse float64 `json:"stack_inuse"`
}

// childMemory parks count goroutines, each blocked receiving on one channel, and prints the
// growth of PSS and StackInuse per goroutine as JSON. It runs in a fresh process, as the C++
// memory figures do, so that nothing measured before has grown the heap.
func childMemory(count int) error {
	runtime.GC()
	debug.FreeOSMemory()
	var stats runtime.MemStats
	runtime.ReadMemStats(&stats)
	stackBefore := float64(stats.StackInuse)
	pssBefore, err := PssBytes()
	if err != nil {
		return err
	}
	release := make(chan struct{})
	var started, ended sync.WaitGroup
	started.Add(count)
	ended.Add(count)
	for i := 0; i < count; i++ {
		go func() {
			started.Done()
			<-release
			ended.Done()
		}()
	}
	started.Wait()
	pssAfter, err := PssBytes()
	if err != nil {
		return err
	}
	runtime.ReadMemStats(&stats)
	stackAfter := float64(stats.StackInuse)
	close(release)
	ended.Wait()
	return json.NewEncoder(os.Stdout).Encode(memoryResult{
		Pss:        (pssAfter - pssBefore) / float64(count),
		StackInuse: (stackAfter - stackBefore) / float64(count),
	})
}

// runMemoryChild runs this program again as a memory child for count goroutines.
func runMemoryChild(count int) (memoryResult, error) {
	var result memoryResult
	self, err := os.Executable()
	if err != nil {
		return result, err
	}
	command := exec.Command(self)
	command.Env = append(os.Environ(), childEnv+"="+strconv.Itoa(count))
	command.Stderr = os.Stderr
	out, err := command.Output()
	if err != nil {
		return result, fmt.Errorf("memory child for %d goroutines: %v", count, err)
	}
	err = json.Unmarshal(out, &result)
	return result, err
}

// MeasureGoroutineMemory returns, for each count alive, PSS and StackInuse per parked goroutine,
// each the median of runs fresh processes.
func MeasureGoroutineMemory(alive []int, runs int) ([]Figure, error) {
	var figures []Figure
	for _, count := range alive {
		var pss, stack []float64
		for run := 0; run < runs; run++ {
			result, err := runMemoryChild(count)
			if err != nil {
				return nil, err
			}
			pss = append(pss, result.Pss)
			stack = append(stack, result.StackInuse)
		}
		at := "@" + strconv.Itoa(count)
		p := Summarize(pss)
		figures = append(figures, Figure{"goroutine", "memory", "pss" + at, false, p.Median,
			"bytes", p.Spread, p.Runs, fmt.Sprintf("PSS per goroutine, %d alive, each blocked "+
				"receiving on a channel (G struct, stack, heap growth)", count)})
		s := Summarize(stack)
		figures = append(figures, Figure{"goroutine", "memory", "stackinuse" + at, false, s.Median,
			"bytes", s.Spread, s.Runs, fmt.Sprintf("growth of runtime.MemStats.StackInuse per "+
				"goroutine, %d alive: the stack the runtime gave each (2 KiB at start in Go 1.19)",
				count)})
	}
	return figures, nil
}
