package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// mainEnv makes the test binary run main() itself, so the test runs the program as the lead's
// switchcost will: a process of its own (which pins all its threads and re-executes itself for
// the memory children) with --quick.
const mainEnv = "SWITCHCOST_GO_TEST_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(mainEnv) != "" || os.Getenv(childEnv) != "" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runProgram runs the program with args and returns its figures.
func runProgram(t *testing.T, args ...string) []Figure {
	t.Helper()
	command := exec.Command(os.Args[0], args...)
	command.Env = append(os.Environ(), mainEnv+"=1")
	var stderr bytes.Buffer
	command.Stderr = &stderr
	out, err := command.Output()
	if err != nil {
		t.Fatalf("switchcost-go %v: %v\n%s", args, err, stderr.String())
	}
	var figures []Figure
	decoder := json.NewDecoder(bytes.NewReader(out))
	decoder.DisallowUnknownFields()
	if err := decoder.Decode(&figures); err != nil {
		t.Fatalf("output is not a JSON array of figures: %v\n%s", err, out)
	}
	return figures
}

// TestQuickFigures checks that every expected row is there with a plausible value (bounds loose
// enough for a busy 2-CPU machine: no timing comparisons) and a truthful pinned flag.
func TestQuickFigures(t *testing.T) {
	cpus, err := AllowedCPUs()
	if err != nil {
		t.Fatal(err)
	}
	figures := runProgram(t, "--quick", "--alive", "100", "--alive", "300")
	type key struct {
		operation, method string
		pinned            bool
	}
	found := map[key]Figure{}
	for _, f := range figures {
		if f.Unit != "goroutine" {
			t.Errorf("unit %q, want goroutine", f.Unit)
		}
		if f.Runs != 3 {
			t.Errorf("%s %s: %d runs, want 3 with --quick", f.Operation, f.Method, f.Runs)
		}
		if f.Spread < 0 || f.Note == "" {
			t.Errorf("%s %s: spread %v, note %q", f.Operation, f.Method, f.Spread, f.Note)
		}
		found[key{f.Operation, f.Method, f.Pinned}] = f
	}
	want := []struct {
		operation, method, unit string
		pinned                  bool
		low, high               float64
	}{
		{"switch", "chan-pingpong", "ns", true, 5, 100e3},
		{"switch", "gosched", "ns", true, 5, 100e3},
		{"create", "go+wg.Done", "ns", false, 20, 1e6},
		{"memory", "pss@100", "bytes", false, 500, 64 << 10},
		{"memory", "pss@300", "bytes", false, 500, 64 << 10},
		{"memory", "stackinuse@300", "bytes", false, 1 << 10, 16 << 10},
	}
	if len(cpus) >= 2 {
		want = append(want, struct {
			operation, method, unit string
			pinned                  bool
			low, high               float64
		}{"switch", "chan-pingpong", "ns", false, 5, 10e6})
	}
	for _, w := range want {
		f, ok := found[key{w.operation, w.method, w.pinned}]
		if !ok {
			t.Errorf("no %s %s figure", w.operation, w.method)
			continue
		}
		if f.UnitOfValue != w.unit || f.Pinned != w.pinned {
			t.Errorf("%s %s: %s pinned=%v, want %s pinned=%v", w.operation, w.method,
				f.UnitOfValue, f.Pinned, w.unit, w.pinned)
		}
		if !(f.Value >= w.low && f.Value <= w.high) {
			t.Errorf("%s %s = %v %s, not within [%v, %v]", w.operation, w.method, f.Value,
				f.UnitOfValue, w.low, w.high)
		}
		if w.operation != "memory" && !strings.Contains(f.Note, "GOMAXPROCS=") {
			t.Errorf("%s %s: the note does not say GOMAXPROCS: %q", w.operation, w.method, f.Note)
		}
		if f.Pinned != strings.Contains(f.Note, "pinned to CPU") {
			t.Errorf("%s %s: pinned=%v but the note says %q", w.operation, w.method, f.Pinned, f.Note)
		}
	}
	if len(figures) != len(want)+1 { // stackinuse@100 is not checked above
		t.Errorf("%d figures, want %d", len(figures), len(want)+1)
	}
}

// TestBadFlags checks that wrong flags end the program with status 2 and no figures.
func TestBadFlags(t *testing.T) {
	for _, args := range [][]string{{"--runs", "1"}, {"--alive", "0"}, {"--alive", "x"}, {"extra"}} {
		var out, errors bytes.Buffer
		if status := run(args, &out, &errors); status != 2 || out.Len() != 0 {
			t.Errorf("%v: status %d, output %q", args, status, out.String())
		}
	}
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{5, 1, 3, 9})
	if s.Median != 4 || s.Spread != 4 || s.Runs != 4 {
		t.Errorf("Summarize = %+v, want median 4, spread 4, 4 runs", s)
	}
}
