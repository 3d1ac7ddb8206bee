// The metrics slot (docs/peers.md): `switchyard serve` hands the peer a shared memory file
// (--metrics-fd) and a JSON layout (--metrics-layout); the peer maps the file and counts into its
// slot with atomic adds, and serve turns the slot into the same switchyard_* series as every
// model's. Run alone, a peer has no slot, and a nil *Metrics counts nothing.
package main

import (
	"encoding/json"
	"fmt"
	"runtime/debug"
	"runtime/metrics"
	"sort"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

// Error kinds, in the order of servers/common/metrics.h; the layout names them.
const (
	errProtocol = iota
	errUnknownCommand
	errWrongArguments
	errLimit
	errOOM
	errStoreDamaged // never here: no other process can damage this store
	errKinds
)

var errorKindNames = [errKinds]string{
	"protocol", "unknown_command", "wrong_arguments", "limit", "oom", "store_damaged",
}

// layout is --metrics-layout.
type layout struct {
	Version        int              `json:"version"`
	SlotOffset     int64            `json:"slot_offset"`
	MaxCommands    int              `json:"max_commands"`
	Commands       []string         `json:"commands"`
	DurationBounds []float64        `json:"duration_bounds_seconds"`
	ErrorKinds     []string         `json:"error_kinds"`
	Fields         map[string]int64 `json:"fields"`
}

// Metrics counts into the slot. Every method may be called on a nil *Metrics, and does nothing.
type Metrics struct {
	mem []byte
	// Where each field starts in mem; looked up once, not on every count.
	requests, durationBuckets, durationNanos, errorCounts, accepted, rejected, failed, active,
	tasks, userSwitches, gcCycles, gcPauseNanos int64
	bounds  []float64
	command []int // the layout's index of each command of commandTable, then of "unknown"
	errors  [errKinds]int
}

// OpenMetrics maps the slot file fd and checks the layout against it.
func OpenMetrics(fd int, layoutJSON string) (*Metrics, error) {
	var l layout
	if err := json.Unmarshal([]byte(layoutJSON), &l); err != nil {
		return nil, fmt.Errorf("--metrics-layout: %v", err)
	}
	if l.Version != 1 {
		return nil, fmt.Errorf("--metrics-layout: version %d, not 1", l.Version)
	}
	if len(l.Commands) == 0 || len(l.Commands) > l.MaxCommands {
		return nil, fmt.Errorf("--metrics-layout: %d commands for %d places", len(l.Commands),
			l.MaxCommands)
	}
	if !sort.Float64sAreSorted(l.DurationBounds) {
		return nil, fmt.Errorf("--metrics-layout: duration bounds out of order")
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, fmt.Errorf("--metrics-fd %d: %v", fd, err)
	}
	mem, err := syscall.Mmap(fd, 0, int(st.Size), syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_SHARED)
	if err != nil {
		return nil, fmt.Errorf("--metrics-fd %d: mmap: %v", fd, err)
	}
	m := &Metrics{mem: mem, bounds: l.DurationBounds}
	commands := int64(l.MaxCommands)
	// Each field, where its offset goes, and how many 64-bit counters it holds.
	fields := []struct {
		name  string
		off   *int64
		count int64
	}{
		{"requests", &m.requests, commands},
		{"duration_buckets", &m.durationBuckets, commands * int64(len(l.DurationBounds)+1)},
		{"duration_nanos", &m.durationNanos, commands},
		{"errors", &m.errorCounts, int64(len(l.ErrorKinds))},
		{"accepted", &m.accepted, 1}, {"rejected", &m.rejected, 1}, {"failed", &m.failed, 1},
		{"active", &m.active, 1}, {"tasks", &m.tasks, 1}, {"user_switches", &m.userSwitches, 1},
		{"gc_cycles", &m.gcCycles, 1}, {"gc_pause_nanos", &m.gcPauseNanos, 1},
	}
	for _, f := range fields {
		name, count := f.name, f.count
		off, ok := l.Fields[name]
		if !ok {
			return nil, fmt.Errorf("--metrics-layout: no field %q", name)
		}
		off += l.SlotOffset
		if off < 0 || off%8 != 0 || off+8*count > int64(len(mem)) {
			return nil, fmt.Errorf("--metrics-layout: field %q at %d does not fit a %d-byte "+
				"area, 8-aligned", name, off, len(mem))
		}
		*f.off = off
	}
	index := map[string]int{}
	for i, name := range l.Commands {
		index[name] = i
	}
	unknown := len(l.Commands) - 1 // a command not listed counts as "unknown", the last entry
	for _, spec := range commandTable {
		m.command = append(m.command, lookup(index, spec.name, unknown))
	}
	m.command = append(m.command, unknown)
	for kind, name := range errorKindNames {
		m.errors[kind] = -1
		for i, n := range l.ErrorKinds {
			if n == name {
				m.errors[kind] = i
			}
		}
	}
	return m, nil
}

func lookup(index map[string]int, name string, otherwise int) int {
	if i, ok := index[name]; ok {
		return i
	}
	return otherwise
}

// counter is the i-th 64-bit counter of the field at off.
func (m *Metrics) counter(off int64, i int) *uint64 {
	return (*uint64)(unsafe.Pointer(&m.mem[off+8*int64(i)]))
}

func (m *Metrics) add(off int64, i int, n uint64) { atomic.AddUint64(m.counter(off, i), n) }

// Request counts one request of spec (nil: an unknown command) that took d.
func (m *Metrics) Request(spec *commandSpec, d time.Duration) {
	if m == nil {
		return
	}
	c := m.command[len(m.command)-1]
	if spec != nil {
		c = m.command[spec.id]
	}
	// The first bucket whose bound d does not exceed; past the last, +Inf.
	bucket := sort.SearchFloat64s(m.bounds, d.Seconds())
	m.add(m.requests, c, 1)
	m.add(m.durationBuckets, c*(len(m.bounds)+1)+bucket, 1)
	m.add(m.durationNanos, c, uint64(d.Nanoseconds()))
}

func (m *Metrics) Error(kind int) {
	if m != nil && m.errors[kind] >= 0 {
		m.add(m.errorCounts, m.errors[kind], 1)
	}
}

func (m *Metrics) Accepted() {
	if m != nil {
		m.add(m.accepted, 0, 1)
		m.add(m.active, 0, 1)
	}
}

// Closed: an admitted connection is no longer open (active is signed: adding ^0 subtracts one).
func (m *Metrics) Closed() {
	if m != nil {
		m.add(m.active, 0, ^uint64(0))
	}
}

func (m *Metrics) Rejected() {
	if m != nil {
		m.add(m.rejected, 0, 1)
	}
}

func (m *Metrics) Failed() {
	if m != nil {
		m.add(m.failed, 0, 1)
	}
}

// TaskStarted and TaskFinished count the goroutines alive serving connections.
func (m *Metrics) TaskStarted() {
	if m != nil {
		m.add(m.tasks, 0, 1)
	}
}

func (m *Metrics) TaskFinished() {
	if m != nil {
		m.add(m.tasks, 0, ^uint64(0))
	}
}

// SampleRuntime copies the runtime's own figures into the slot every interval, until stop closes:
//   - user_switches: the scheduler's goroutine switches. runtime/metrics' /sched/latencies:seconds
//     histogram takes a sample on every 8th transition of a goroutine to running (the runtime's
//     gTrackingPeriod), so its sample count times 8 estimates them, at no cost to the program.
//   - gc_cycles and gc_pause_nanos: from debug.ReadGCStats, which reads the runtime's own totals
//     (NumGC, PauseTotal) under the heap lock only. runtime.ReadMemStats gives the same exact
//     totals but stops the world to do so, which would add a pause of ours to every sample; and
//     runtime/metrics has the pauses only as a histogram (/gc/pauses:seconds), whose buckets give
//     their sum only to a few per cent.
func (m *Metrics) SampleRuntime(interval time.Duration, stop <-chan struct{}) {
	if m == nil {
		return
	}
	samples := []metrics.Sample{{Name: "/sched/latencies:seconds"}}
	var gc debug.GCStats
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		metrics.Read(samples)
		if samples[0].Value.Kind() == metrics.KindFloat64Histogram {
			var n uint64
			for _, c := range samples[0].Value.Float64Histogram().Counts {
				n += c
			}
			atomic.StoreUint64(m.counter(m.userSwitches, 0), 8*n)
		}
		debug.ReadGCStats(&gc)
		atomic.StoreUint64(m.counter(m.gcCycles, 0), uint64(gc.NumGC))
		atomic.StoreUint64(m.counter(m.gcPauseNanos, 0), uint64(gc.PauseTotal.Nanoseconds()))
		select {
		case <-stop:
			return
		case <-ticker.C:
		}
	}
}
