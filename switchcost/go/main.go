// Command switchcost-go measures what a goroutine costs, for `switchyard switchcost`: one switch
// (channel ping-pong with GOMAXPROCS=1 and 2), one creation and the memory of a parked goroutine,
// each figure the median of repeated runs, and prints them as a JSON array of the C++ harness's
// figures (switchcost/measure.h).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
)

// aliveFlag collects --alive values: repeatable, each a comma list.
type aliveFlag []int

func (a *aliveFlag) String() string { return fmt.Sprint([]int(*a)) }

func (a *aliveFlag) Set(value string) error {
	for _, part := range strings.Split(value, ",") {
		count, err := strconv.Atoi(strings.TrimSpace(part))
		if err != nil || count < 1 || count > 100000 {
			return fmt.Errorf("%q is not a count from 1 to 100000", part)
		}
		*a = append(*a, count)
	}
	return nil
}

// run parses args, measures and writes the JSON array to out. It returns the exit status.
func run(args []string, out, errors io.Writer) int {
	flags := flag.NewFlagSet("switchcost-go", flag.ContinueOnError)
	flags.SetOutput(errors)
	quick := flags.Bool("quick", false, "short runs and small counts (100 and 1000 alive), for CI")
	runs := flags.Int("runs", 0, "repeated runs per figure (default 5; 3 with --quick)")
	runSeconds := flags.Float64("run-seconds", 0, "length of one timed run (default 0.05; 0.01 with --quick)")
	var alive aliveFlag
	flags.Var(&alive, "alive", "goroutines alive for the memory figures, repeatable or a comma list (default 1000,10000)")
	if err := flags.Parse(args); err != nil {
		return 2
	}
	if flags.NArg() > 0 {
		fmt.Fprintf(errors, "switchcost-go: unexpected argument %q\n", flags.Arg(0))
		return 2
	}
	if *runs == 0 {
		*runs = 5
		if *quick {
			*runs = 3
		}
	}
	if *runSeconds == 0 {
		*runSeconds = 0.05
		if *quick {
			*runSeconds = 0.01
		}
	}
	if *runs < 2 || *runs > 1000 || *runSeconds < 0.001 || *runSeconds > 60 {
		fmt.Fprintln(errors, "switchcost-go: --runs must be 2 to 1000, --run-seconds 0.001 to 60")
		return 2
	}
	if len(alive) == 0 {
		alive = aliveFlag{1000, 10000}
		if *quick {
			alive = aliveFlag{100, 1000}
		}
	}
	sort.Ints(alive)

	budget := Budget{SecondsPerRun: *runSeconds, Runs: *runs}
	figures := []Figure{}
	fmt.Fprintln(errors, "switchcost-go: creation...")
	figures = append(figures, MeasureGoroutineCreation(budget)...)
	fmt.Fprintln(errors, "switchcost-go: switches...")
	switches, err := MeasureGoroutineSwitches(budget)
	if err != nil {
		fmt.Fprintln(errors, "switchcost-go:", err)
		return 1
	}
	figures = append(figures, switches...)
	fmt.Fprintln(errors, "switchcost-go: memory per goroutine...")
	memory, err := MeasureGoroutineMemory(alive, *runs)
	if err != nil {
		fmt.Fprintln(errors, "switchcost-go:", err)
		return 1
	}
	figures = append(figures, memory...)

	text, err := json.MarshalIndent(figures, "", "  ")
	if err != nil {
		fmt.Fprintln(errors, "switchcost-go:", err)
		return 1
	}
	fmt.Fprintln(out, string(text))
	return 0
}

func main() {
	if count := os.Getenv(childEnv); count != "" {
		n, err := strconv.Atoi(count)
		if err == nil {
			err = childMemory(n)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "switchcost-go: memory child:", err)
			os.Exit(1)
		}
		return
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}
