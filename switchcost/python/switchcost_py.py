#!/usr/bin/python3
"""What Python's units cost, for `switchyard switchcost`: asyncio tasks, greenlets and threads.

Prints one JSON array of figures with exactly the fields of the C++ harness's Figure
(switchcost/measure.h): unit, operation, method, pinned, value, unit_of_value ("ns" or "bytes"),
spread, runs, note. Each figure is taken the way the C++ rows are, so that the two sit side by
side in one table:

- a timed run performs n iterations; n doubles from 8 until a run lasts half the per-run budget,
  is then scaled to the budget, and `runs` runs are taken: the figure is their median and its
  spread half their range;
- loops that run on one thread (asyncio tasks and greenlets switching, every creation but a
  thread's) are timed by that thread's CPU time, so time other processes held the CPU does not
  count; their switches are pinned to one CPU, as the C++ user-space switches are;
- two threads ping-ponging on one CPU are timed by the CPU time of both (the pair keeps the CPU
  busy, so that is the wall time less what others ran there); across two CPUs, one thread on
  each as the C++ 2-CPU rows do, by the wall clock, since waiting for a wake-up is the cost there;
- thread creation is timed by the CPU time of the whole process (creator and created);
- memory is measured in a fresh child process: growth of PSS (/proc/self/smaps_rollup) with N
  units alive and suspended, divided by N.

A runtime that cannot be imported (greenlet, uvloop) is left out with one line on stderr; the
program still exits 0 with the figures it could measure.

Run with Debian's /usr/bin/python3 (3.11), where python3-gevent brings greenlet and
python3-uvloop brings uvloop.
"""

import argparse
import asyncio
import gc
import json
import os
import subprocess
import sys
import threading
import time

try:
    import greenlet
except ImportError as error:  # reported in main(), where the figures are chosen
    greenlet = None
    GREENLET_ERROR = str(error)
try:
    import uvloop
except ImportError as error:
    uvloop = None
    UVLOOP_ERROR = str(error)

WARM_UP = 50  # round trips before every timed ping-pong, as in the C++ harness
CREATE_BATCH = 100  # tasks created before the creator yields to let them run


# ---- the harness (switchcost/measure.cc) ---------------------------------------------------------


def figure(unit, operation, method, pinned, stats, unit_of_value, note):
    """One row, with the C++ Figure's fields and JSON names."""
    return {
        "unit": unit,
        "operation": operation,
        "method": method,
        "pinned": pinned,
        "value": stats[0],
        "unit_of_value": unit_of_value,
        "spread": stats[1],
        "runs": stats[2],
        "note": note,
    }


def summarize(samples):
    """(median, half the range, count) of samples, as Summarize in measure.cc."""
    s = sorted(samples)
    n = len(s)
    median = s[n // 2] if n % 2 == 1 else (s[n // 2 - 1] + s[n // 2]) / 2
    return (median, (s[-1] - s[0]) / 2, n)


def measure_ns(budget, ops_per_iteration, timed_run):
    """Nanoseconds per operation of timed_run(n), which runs n iterations and returns seconds.

    The calibration is MeasureNs's: double n from 8 until one run lasts half the budget (which
    also warms the caches and the interpreter's specialised bytecode), scale n to the budget, then
    take budget["runs"] runs.
    """
    seconds_per_run = budget["seconds"]
    n = 8
    seconds = timed_run(n)
    while seconds < seconds_per_run / 2 and n < (1 << 40):
        n *= 2
        seconds = timed_run(n)
    n = max(1, int(n * seconds_per_run / max(seconds, 1e-9)))
    return summarize(
        [timed_run(n) * 1e9 / (n * ops_per_iteration) for _ in range(budget["runs"])]
    )


def allowed_cpus():
    """CPUs this process may run on, in order."""
    return sorted(os.sched_getaffinity(0))


class Pinned:
    """Pins the calling thread to `cpus` for a with-block and restores its mask after.

    os.sched_setaffinity(0, ...) sets the calling thread's mask (Linux's pid 0), and threads
    started inside the block inherit it, as PinCurrentThread does in C++.
    """

    def __init__(self, cpus):
        self.cpus = set(cpus)
        self.previous = None

    def __enter__(self):
        self.previous = os.sched_getaffinity(0)
        os.sched_setaffinity(0, self.cpus)
        return self

    def __exit__(self, *exc):
        os.sched_setaffinity(0, self.previous)


def pss_bytes():
    """The Pss: line of /proc/self/smaps_rollup, in bytes."""
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no Pss: in /proc/self/smaps_rollup")


# ---- asyncio tasks -----------------------------------------------------------------------------


def loops():
    """(name, factory) of each event loop to measure: asyncio's own, and uvloop's if importable."""
    found = [("asyncio", asyncio.new_event_loop)]
    if uvloop is not None:
        found.append(("uvloop", uvloop.new_event_loop))
    return found


def run_on(loop_factory, coroutine):
    """Runs coroutine to its end on a fresh loop from loop_factory and closes the loop."""
    loop = loop_factory()
    try:
        return loop.run_until_complete(coroutine)
    finally:
        loop.close()


async def future_ping_pong(n):
    """n round trips between this task and a partner, each waking the other through a Future.

    The hand-off is the one a task blocked on I/O or on a lock sees: A resolves B's future (which
    schedules B's wake-up with call_soon) and awaits its own, so the loop's next iteration runs B,
    which does the same back. One round trip is two task switches, each one pass of the event
    loop (including its zero-timeout poll) and a fresh Future. Returns the thread CPU seconds.
    """
    loop = asyncio.get_running_loop()
    inbox = [None, loop.create_future()]  # [A's, B's]

    async def partner():
        for _ in range(WARM_UP + n):
            await inbox[1]
            inbox[1] = loop.create_future()
            inbox[0].set_result(None)

    task = loop.create_task(partner())

    def round_trip():
        mine = inbox[0] = loop.create_future()
        inbox[1].set_result(None)
        return mine

    for _ in range(WARM_UP):
        await round_trip()
    begin = time.thread_time()
    for _ in range(n):
        await round_trip()
    seconds = time.thread_time() - begin
    await task
    return seconds


async def sleep0_ping_pong(n):
    """Two tasks each calling `await asyncio.sleep(0)` n times: 2n task switches.

    sleep(0) is asyncio's bare yield: the task reschedules itself with call_soon and the loop runs
    whichever task is ready next, here the other one. No Future is made, so this is the loop's
    own cost of a switch. Returns the thread CPU seconds of both tasks' loops.
    """

    async def player(rounds):
        for _ in range(rounds):
            await asyncio.sleep(0)

    await asyncio.gather(player(WARM_UP), player(WARM_UP))
    loop = asyncio.get_running_loop()
    begin = time.thread_time()
    a = loop.create_task(player(n))
    b = loop.create_task(player(n))
    await a
    await b
    return time.thread_time() - begin


async def create_tasks(n):
    """Creates n tasks of an empty coroutine, CREATE_BATCH at a time, and runs each to its end.

    After each batch the creator yields once (sleep(0)): the loop's next pass runs every task of
    the batch to completion, then the creator. The task objects are freed as their references go.
    Returns the thread CPU seconds.
    """
    loop = asyncio.get_running_loop()
    counter = [0]

    async def empty():
        counter[0] += 1

    begin = time.thread_time()
    created = 0
    while created < n:
        batch = min(CREATE_BATCH, n - created)
        for _ in range(batch):
            loop.create_task(empty())
        await asyncio.sleep(0)
        created += batch
    seconds = time.thread_time() - begin
    if counter[0] != n:
        raise RuntimeError(f"{counter[0]} of {n} tasks ran")
    return seconds


def measure_asyncio_switches(budget, cpu):
    """The asyncio-task switch figures, pinned to cpu, for each loop."""
    figures = []
    with Pinned([cpu]):
        for name, factory in loops():
            stats = measure_ns(budget, 2, lambda n: run_on(factory, future_ping_pong(n)))
            figures.append(
                figure("asyncio-task", "switch", f"future-pingpong/{name}", True, stats, "ns",
                       f"round trip / 2 between two tasks on {name}'s loop, each resolving the "
                       f"other's Future and awaiting its own; thread CPU time, pinned to CPU {cpu}"))
            stats = measure_ns(budget, 2, lambda n: run_on(factory, sleep0_ping_pong(n)))
            figures.append(
                figure("asyncio-task", "switch", f"sleep0/{name}", True, stats, "ns",
                       f"two tasks yielding with await asyncio.sleep(0) in turn on {name}'s loop; "
                       f"thread CPU time, pinned to CPU {cpu}"))
    return figures


def measure_asyncio_creation(budget):
    """The asyncio-task create figures, one per loop, unpinned as the C++ creations are."""
    figures = []
    for name, factory in loops():
        stats = measure_ns(budget, 1, lambda n: run_on(factory, create_tasks(n)))
        figures.append(
            figure("asyncio-task", "create", f"create_task+run/{name}", False, stats, "ns",
                   f"loop.create_task(empty coroutine) in batches of {CREATE_BATCH}, each run to "
                   f"its end on {name}'s loop; thread CPU time"))
    return figures


async def park_tasks(count):
    """Parks count tasks on one Future and returns the PSS growth per task."""
    loop = asyncio.get_running_loop()
    release = loop.create_future()

    async def parked():
        await release

    gc.collect()
    before = pss_bytes()
    tasks = [loop.create_task(parked()) for _ in range(count)]
    await asyncio.sleep(0)  # every task runs to its await and is suspended there
    after = pss_bytes()
    release.set_result(None)
    await asyncio.gather(*tasks)
    return (after - before) / count


# ---- greenlets ---------------------------------------------------------------------------------


def time_greenlet_switches(n):
    """n round trips between this greenlet and a partner by greenlet.switch: 2n switches.

    A switch copies the part of the C stack the greenlet used to the heap and back (greenlet's
    stack slicing) and swaps the interpreter's frame state: no loop, no hub. Returns the thread
    CPU seconds.
    """
    main = greenlet.getcurrent()

    def partner_run():
        for _ in range(n + 1):
            main.switch()

    partner = greenlet.greenlet(partner_run)
    partner.switch()  # starts it: it switches straight back, outside the timing
    begin = time.thread_time()
    for _ in range(n):
        partner.switch()
    seconds = time.thread_time() - begin
    partner.switch()  # lets it return
    if not partner.dead:
        raise RuntimeError("greenlet ping-pong went wrong")
    return seconds


def time_greenlet_creation(n):
    """Creates n greenlets, switches into each so it runs to its end; thread CPU seconds."""
    counter = [0]

    def empty():
        counter[0] += 1

    make = greenlet.greenlet
    begin = time.thread_time()
    for _ in range(n):
        make(empty).switch()
    seconds = time.thread_time() - begin
    if counter[0] != n:
        raise RuntimeError(f"{counter[0]} of {n} greenlets ran")
    return seconds


def park_greenlets(count):
    """Starts count greenlets that switch back at once, suspended; PSS growth per greenlet."""
    main = greenlet.getcurrent()

    def parked():
        main.switch()

    gc.collect()
    before = pss_bytes()
    greenlets = [greenlet.greenlet(parked) for _ in range(count)]
    for g in greenlets:
        g.switch()
    after = pss_bytes()
    for g in greenlets:
        g.switch()  # each returns
    return (after - before) / count


# ---- Python threads ----------------------------------------------------------------------------


def time_thread_ping_pong(n, cpu_a, cpu_b):
    """n round trips between this thread and a partner through two Locks: 2n switches.

    Each side releases the other's lock and blocks acquiring its own, which drops the GIL; the
    side that wakes must take the GIL back. On one CPU (cpu_a == cpu_b) that is a kernel context
    switch plus the GIL hand-over, timed by the CPU time of both threads; across two CPUs it is a
    wake-up on the other CPU, timed by the wall clock.
    """
    a_turn = threading.Lock()
    b_turn = threading.Lock()
    a_turn.acquire()
    b_turn.acquire()
    b_seconds = [0.0]
    failure = []

    def side_b():
        try:
            os.sched_setaffinity(0, {cpu_b})
            for _ in range(WARM_UP):
                b_turn.acquire()
                a_turn.release()
            begin = time.thread_time()
            for _ in range(n):
                b_turn.acquire()
                a_turn.release()
            b_seconds[0] = time.thread_time() - begin
        except BaseException as error:  # reported by the main thread
            failure.append(error)
            a_turn.release()

    with Pinned([cpu_a]):
        thread = threading.Thread(target=side_b)
        thread.start()
        for _ in range(WARM_UP):
            b_turn.release()
            a_turn.acquire()
        begin_cpu = time.thread_time()
        begin_wall = time.perf_counter()
        for _ in range(n):
            b_turn.release()
            a_turn.acquire()
        wall = time.perf_counter() - begin_wall
        a_seconds = time.thread_time() - begin_cpu
        thread.join()
    if failure:
        raise failure[0]
    return a_seconds + b_seconds[0] if cpu_a == cpu_b else wall


def time_thread_creation(n):
    """threading.Thread(target=empty).start() and join(), n times; the process's CPU seconds."""

    def empty():
        pass

    begin = time.process_time()
    for _ in range(n):
        thread = threading.Thread(target=empty)
        thread.start()
        thread.join()
    return time.process_time() - begin


def measure_thread_switches(budget, cpus):
    """python-thread switch on one CPU (pinned) and, with two CPUs allowed, across two."""
    pairs = [(cpus[0], cpus[0])]
    if len(cpus) >= 2:
        pairs.append((cpus[0], cpus[1]))
    else:
        print("switchcost-py: one CPU allowed: the 2-CPU python-thread switch is left out",
              file=sys.stderr)
    figures = []
    for cpu_a, cpu_b in pairs:
        stats = measure_ns(budget, 2, lambda n: time_thread_ping_pong(n, cpu_a, cpu_b))
        if cpu_a == cpu_b:
            note = (f"round trip / 2 through two threading.Locks, both threads pinned to CPU "
                    f"{cpu_a}: a context switch and a GIL hand-over; CPU time of both threads")
        else:
            note = (f"round trip / 2 through two threading.Locks between CPU {cpu_a} and CPU "
                    f"{cpu_b}: a cross-CPU wake-up and a GIL hand-over; wall clock")
        figures.append(figure("python-thread", "switch", "lock-pingpong", cpu_a == cpu_b, stats,
                              "ns", note))
    return figures


# ---- memory children ---------------------------------------------------------------------------


def memory_child(kind, count):
    """Runs in a fresh process: parks count units of kind and prints the PSS growth per unit."""
    if kind == "asyncio-task":
        per_unit = run_on(asyncio.new_event_loop, park_tasks(count))
    elif kind == "greenlet":
        per_unit = park_greenlets(count)
    else:
        raise SystemExit(f"unknown memory child {kind}")
    print(json.dumps({"pss": per_unit}))


def measure_memory(kind, alive, runs, note):
    """pss@N figures of kind, each the median of runs fresh child processes."""
    figures = []
    for count in alive:
        samples = []
        for _ in range(runs):
            out = subprocess.run(
                [sys.executable, os.path.abspath(__file__), "--memory-child", kind, str(count)],
                check=True, stdout=subprocess.PIPE, text=True).stdout
            samples.append(json.loads(out)["pss"])
        figures.append(figure(kind, "memory", f"pss@{count}", False, summarize(samples), "bytes",
                              f"PSS per {kind}, {count} alive, {note}"))
    return figures


# ---- the program -------------------------------------------------------------------------------


def alive_counts(text):
    """A comma list of counts for --alive."""
    counts = []
    for part in text.split(","):
        count = int(part)
        if not 1 <= count <= 100000:
            raise argparse.ArgumentTypeError(f"{count} is not a count from 1 to 100000")
        counts.append(count)
    return counts


def parse_args(argv):
    """The flags of the C++ switchcost that apply here, with its defaults."""
    parser = argparse.ArgumentParser(prog="switchcost_py.py", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="short runs and small counts (100 and 1000 alive), for CI")
    parser.add_argument("--runs", type=int, help="repeated runs per figure (default 5; 3 with --quick)")
    parser.add_argument("--run-seconds", type=float,
                        help="length of one timed run (default 0.05; 0.01 with --quick)")
    parser.add_argument("--alive", type=alive_counts, action="append",
                        help="units alive for the memory figures, repeatable or a comma list "
                             "(default 1000,10000)")
    parser.add_argument("--memory-child", nargs=2, metavar=("KIND", "COUNT"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.run_seconds is None:
        args.run_seconds = 0.01 if args.quick else 0.05
    if not 2 <= args.runs <= 1000 or not 0.001 <= args.run_seconds <= 60:
        parser.error("--runs must be 2 to 1000, --run-seconds 0.001 to 60")
    if args.alive is None:
        args.alive = [[100, 1000]] if args.quick else [[1000, 10000]]
    args.alive = sorted(count for counts in args.alive for count in counts)
    return args


def main(argv=None):
    """Measures every unit whose runtime is importable and prints the JSON array of figures."""
    args = parse_args(argv)
    if args.memory_child:
        memory_child(args.memory_child[0], int(args.memory_child[1]))
        return 0
    budget = {"seconds": args.run_seconds, "runs": args.runs}
    cpus = allowed_cpus()
    if uvloop is None:
        print(f"switchcost-py: uvloop not importable ({UVLOOP_ERROR}): its asyncio-task rows are "
              "left out (apt-get install python3-uvloop)", file=sys.stderr)
    if greenlet is None:
        print(f"switchcost-py: greenlet not importable ({GREENLET_ERROR}): the greenlet rows are "
              "left out (apt-get install python3-greenlet)", file=sys.stderr)

    def step(what):
        print(f"switchcost-py: {what}...", file=sys.stderr, flush=True)

    figures = []
    step("creation")
    figures += measure_asyncio_creation(budget)
    if greenlet is not None:
        stats = measure_ns(budget, 1, time_greenlet_creation)
        figures.append(figure("greenlet", "create", "greenlet+switch", False, stats, "ns",
                              "greenlet(empty).switch(): created, run to its end, freed; "
                              "thread CPU time. On Python 3.11 each new greenlet that runs Python "
                              "code gets its own frame data-stack chunk, an mmap and munmap: most "
                              "of the cost"))
    stats = measure_ns(budget, 1, time_thread_creation)
    figures.append(figure("python-thread", "create", "Thread.start+join", False, stats, "ns",
                          "threading.Thread(target=empty).start() and join(); CPU time of the "
                          "process (creator and created)"))

    step("switches")
    figures += measure_asyncio_switches(budget, cpus[0])
    if greenlet is not None:
        with Pinned([cpus[0]]):
            stats = measure_ns(budget, 2, time_greenlet_switches)
        figures.append(figure("greenlet", "switch", "greenlet.switch", True, stats, "ns",
                              "round trip / 2 between two greenlets switching to each other "
                              f"directly (no hub); thread CPU time, pinned to CPU {cpus[0]}"))
    figures += measure_thread_switches(budget, cpus)

    step("memory per unit")
    figures += measure_memory("asyncio-task", args.alive, args.runs,
                              "each awaiting one Future (Task, coroutine, frame) on asyncio's loop")
    if greenlet is not None:
        figures += measure_memory("greenlet", args.alive, args.runs,
                                  "each switched back to the parent at once: the greenlet, its "
                                  "saved slice of the C stack and its frame data-stack chunk "
                                  "(touched pages)")
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
