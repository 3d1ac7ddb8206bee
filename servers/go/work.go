// The simulated work of SY.CPU and SY.BLOCK: CPU burnt on the goroutine's own thread, and a real
// blocking system call that holds its thread (the runtime hands the thread's other work away).

package main

import (
	"syscall"
	"time"
	"unsafe"
)

// burnCPU burns d of CPU time on the calling goroutine (SY.CPU). It counts the CPU time of the
// thread running it, not wall time, so a goroutine preempted meanwhile still burns what it asked
// for; since the goroutine may move to another thread when it is preempted, a stretch during which
// the thread changed is not counted.
func burnCPU(d time.Duration) {
	budget := d.Nanoseconds()
	tid, last := threadCPU()
	var sink uint64
	for budget > 0 {
		for i := uint64(0); i < 256; i++ {
			sink += i
		}
		nowTid, now := threadCPU()
		if nowTid == tid {
			budget -= now - last
		}
		tid, last = nowTid, now
	}
	_ = sink
}

// threadCPU returns the calling thread's id and its CPU time in nanoseconds. The id is read on
// both sides of the clock, so a reading taken while the goroutine moved gets an id of -1.
func threadCPU() (int, int64) {
	var ts syscall.Timespec
	tid := syscall.Gettid()
	// CLOCK_THREAD_CPUTIME_ID = 3. RawSyscall: a short call that need not tell the scheduler.
	syscall.RawSyscall(syscall.SYS_CLOCK_GETTIME, 3, uintptr(unsafe.Pointer(&ts)), 0)
	if syscall.Gettid() != tid {
		return -1, 0
	}
	return tid, ts.Nano()
}

// blockingSleep is SY.BLOCK: nanosleep(2) through syscall.Syscall, a real blocking system call.
// The thread (M) blocks in the kernel; the runtime's sysmon sees the P stuck in a system call and
// hands it to another thread, so the other goroutines go on, on a thread more.
func blockingSleep(d time.Duration) {
	ts := syscall.NsecToTimespec(d.Nanoseconds())
	for {
		var left syscall.Timespec
		if err := syscall.Nanosleep(&ts, &left); err != syscall.EINTR {
			return
		}
		ts = left
	}
}
