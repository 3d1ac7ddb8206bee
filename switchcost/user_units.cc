#include "switchcost/user_units.h"

#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include <boost/context/fiber.hpp>
#include <boost/context/fixedsize_stack.hpp>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <memory>
#include <new>
#include <stdexcept>
#include <string>

#include "switchcost/os_units.h"

namespace switchyard::switchcost {
namespace {

namespace ctx = boost::context;

// ---- baselines --------------------------------------------------------------------------------

// noipa: neither inlined nor analysed across the call, so the loop really calls it.
[[gnu::noipa]] void OpaqueCall(std::uint64_t* counter) { ++*counter; }

double TimeCalls(std::uint64_t n) {
  std::uint64_t counter = 0;
  const ThreadCpuTimer timer;
  for (std::uint64_t i = 0; i < n; ++i) OpaqueCall(&counter);
  const double seconds = timer.Seconds();
  if (counter != n) throw std::logic_error("calls were skipped");
  return seconds;
}

// getppid through syscall(2), not a vDSO function, so every call enters the kernel.
double TimeSyscalls(std::uint64_t n) {
  const ThreadCpuTimer timer;
  for (std::uint64_t i = 0; i < n; ++i) syscall(SYS_getppid);
  return timer.Seconds();
}

// ---- Boost.Context fibers ---------------------------------------------------------------------

// Two fibers (this thread's own context and `partner`) resume each other 2n times. A resume
// saves the callee-saved registers and the stack pointer on the current stack and loads the
// other's: no kernel entry, no signal mask.
double TimeFiberSwitches(std::uint64_t n) {
  std::uint64_t counter = 0;
  ctx::fiber partner{[&counter, n](ctx::fiber&& main) {
    for (std::uint64_t i = 0; i <= n; ++i) {
      ++counter;
      main = std::move(main).resume();
    }
    return std::move(main);
  }};
  partner = std::move(partner).resume();  // starts it: outside the timing
  const ThreadCpuTimer timer;
  for (std::uint64_t i = 0; i < n; ++i) partner = std::move(partner).resume();
  const double seconds = timer.Seconds();
  partner = std::move(partner).resume();  // lets it return, which destroys it
  if (partner || counter != n + 1) throw std::logic_error("fiber ping-pong went wrong");
  return seconds;
}

// ---- ucontext ---------------------------------------------------------------------------------

// makecontext passes only int arguments, so the partner finds its state here.
struct UcontextPingPong {
  ucontext_t main{};
  ucontext_t partner{};
  std::uint64_t rounds = 0;
};
thread_local UcontextPingPong* current_ping_pong = nullptr;

void UcontextPartner() {
  UcontextPingPong& state = *current_ping_pong;
  for (std::uint64_t i = 0; i <= state.rounds; ++i) swapcontext(&state.partner, &state.main);
  // Returning resumes uc_link, the main context.
}

// Like the fiber ping-pong, but swapcontext also saves and restores the signal mask, which takes
// a system call (rt_sigprocmask) on every switch.
double TimeUcontextSwitches(std::uint64_t n) {
  UcontextPingPong state;
  state.rounds = n;
  std::vector<char> stack(64 << 10);
  getcontext(&state.partner);
  state.partner.uc_stack.ss_sp = stack.data();
  state.partner.uc_stack.ss_size = stack.size();
  state.partner.uc_link = &state.main;
  makecontext(&state.partner, UcontextPartner, 0);
  current_ping_pong = &state;
  swapcontext(&state.main, &state.partner);  // starts it: outside the timing
  const ThreadCpuTimer timer;
  for (std::uint64_t i = 0; i < n; ++i) swapcontext(&state.main, &state.partner);
  const double seconds = timer.Seconds();
  swapcontext(&state.main, &state.partner);  // lets it return through uc_link
  current_ping_pong = nullptr;
  return seconds;
}

// ---- C++20 coroutines -------------------------------------------------------------------------

// Frame bytes of the last coroutine allocated: the compiler decides a frame's size, so it is
// measured where the frame is allocated.
thread_local std::size_t last_frame_bytes = 0;

// A coroutine that starts suspended and stays suspended at its end until destroyed.
struct Coroutine {
  struct promise_type {
    static void* operator new(std::size_t bytes) {
      last_frame_bytes = bytes;
      return ::operator new(bytes);
    }
    static void operator delete(void* frame) { ::operator delete(frame); }
    Coroutine get_return_object() {
      return Coroutine{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() noexcept { return {}; }
    std::suspend_always final_suspend() noexcept { return {}; }
    void return_void() {}
    void unhandled_exception() { std::terminate(); }
  };
  explicit Coroutine(std::coroutine_handle<promise_type> h) : handle(h) {}
  Coroutine(Coroutine&& other) noexcept : handle(std::exchange(other.handle, {})) {}
  Coroutine& operator=(Coroutine&&) = delete;
  ~Coroutine() {
    if (handle) handle.destroy();
  }
  std::coroutine_handle<promise_type> handle;
};

// Suspends the running coroutine and resumes `target` in its place: symmetric transfer, a jump
// from one frame to the other on the same stack, with nothing saved but what a call saves.
struct TransferTo {
  std::coroutine_handle<> target;
  bool await_ready() const noexcept { return false; }
  std::coroutine_handle<> await_suspend(std::coroutine_handle<>) const noexcept { return target; }
  void await_resume() const noexcept {}
};

// Transfers to *partner `batch` times, then suspends back to whoever resumed it; forever, until
// destroyed. Returning to the resumer after each batch bounds the stack even where the compiler
// does not turn symmetric transfer into a tail call (GCC without optimisation).
Coroutine Player(const std::coroutine_handle<>* partner, std::uint64_t batch,
                 std::uint64_t* counter) {
  for (;;) {
    for (std::uint64_t i = 0; i < batch; ++i) {
      ++*counter;
      co_await TransferTo{*partner};
    }
    co_await std::suspend_always{};
  }
}

constexpr std::uint64_t kTransferBatch = 1024;

// A transfers to B and B back to A, kTransferBatch times each, then A returns here: n times.
double TimeCoroutineSwitches(std::uint64_t n) {
  std::uint64_t counter = 0;
  std::coroutine_handle<> a_handle, b_handle;
  Coroutine a = Player(&b_handle, kTransferBatch, &counter);
  Coroutine b = Player(&a_handle, ~std::uint64_t{0}, &counter);
  a_handle = a.handle;
  b_handle = b.handle;
  const ThreadCpuTimer timer;
  for (std::uint64_t i = 0; i < n; ++i) a.handle.resume();
  const double seconds = timer.Seconds();
  if (counter != 2 * n * kTransferBatch) throw std::logic_error("coroutine ping-pong failed");
  return seconds;
}

Coroutine Empty(std::uint64_t* counter) {
  ++*counter;
  co_return;
}

Coroutine Parked() { co_await std::suspend_always{}; }

}  // namespace

std::vector<Figure> MeasureUserSwitches(const Budget& budget) {
  PinCurrentThread pin({AllowedCpus()[0]});
  std::vector<Figure> figures;
  auto add = [&](const char* unit, const char* method, double ops_per_iteration,
                 const std::function<double(std::uint64_t)>& timed_run, const std::string& note) {
    const Stats stats = MeasureNs(budget, ops_per_iteration, timed_run);
    figures.push_back(
        {unit, "switch", method, true, stats.median, "ns", stats.spread, stats.runs, note});
  };
  add("coroutine", "symmetric-transfer", 2 * kTransferBatch, TimeCoroutineSwitches,
      "co_await whose await_suspend returns the other coroutine's handle");
  add("fiber", "boost-fiber", 2, TimeFiberSwitches,
      "boost::context::fiber::resume (fcontext: callee-saved registers + stack pointer)");
  add("ucontext", "swapcontext", 2, TimeUcontextSwitches,
      "glibc swapcontext: all registers, stack pointer and the signal mask (a system call)");
  add("call", "noinline-call", 1, TimeCalls, "a call the compiler can neither inline nor elide");
  add("syscall", "getppid", 1, TimeSyscalls, "syscall(SYS_getppid): kernel entry and exit");
  return figures;
}

std::vector<Figure> MeasureUserCreation(const Budget& budget) {
  std::vector<Figure> figures;
  const Stats coroutine = MeasureNs(budget, 1, [](std::uint64_t n) {
    std::uint64_t counter = 0;
    const ThreadCpuTimer timer;
    for (std::uint64_t i = 0; i < n; ++i) {
      Coroutine c = Empty(&counter);
      c.handle.resume();  // runs it to its final suspend; the destructor destroys the frame
    }
    const double seconds = timer.Seconds();
    if (counter != n) throw std::logic_error("coroutines did not run");
    return seconds;
  });
  figures.push_back({"coroutine", "create", "new-frame+run+destroy", false, coroutine.median, "ns",
                     coroutine.spread, coroutine.runs,
                     "frame of " + std::to_string(last_frame_bytes) +
                         " bytes allocated with operator new, run to its end, destroyed"});

  const std::size_t stack = ctx::fixedsize_stack::traits_type::default_size();
  const Stats fiber = MeasureNs(budget, 1, [](std::uint64_t n) {
    std::uint64_t counter = 0;
    const ThreadCpuTimer timer;
    for (std::uint64_t i = 0; i < n; ++i) {
      ctx::fiber f{[&counter](ctx::fiber&& main) {
        ++counter;
        return std::move(main);
      }};
      f = std::move(f).resume();  // runs it to its end, which frees its stack
    }
    const double seconds = timer.Seconds();
    if (counter != n) throw std::logic_error("fibers did not run");
    return seconds;
  });
  figures.push_back({"fiber", "create", "boost-fiber", false, fiber.median, "ns", fiber.spread,
                     fiber.runs,
                     "fixedsize_stack of " + std::to_string(stack >> 10) +
                         " KiB (malloc), run to its end, destroyed"});
  return figures;
}

namespace {

// With `count` fibers started and suspended: growth of PSS / count.
std::vector<double> FiberMemory(int count, std::size_t stack_bytes) {
  const double before = static_cast<double>(PssBytes());
  std::vector<ctx::fiber> fibers;
  fibers.reserve(count);
  for (int i = 0; i < count; ++i) {
    ctx::fiber f{std::allocator_arg, ctx::fixedsize_stack(stack_bytes), [](ctx::fiber&& main) {
                   main = std::move(main).resume();
                   return std::move(main);
                 }};
    fibers.push_back(std::move(f).resume());
  }
  const double after = static_cast<double>(PssBytes());
  for (ctx::fiber& f : fibers) f = std::move(f).resume();  // each returns and frees its stack
  return {(after - before) / count};
}

// With `count` coroutines started and suspended: growth of PSS / count, and the frame size.
std::vector<double> CoroutineMemory(int count) {
  const double before = static_cast<double>(PssBytes());
  std::vector<Coroutine> coroutines;
  coroutines.reserve(count);
  for (int i = 0; i < count; ++i) {
    coroutines.push_back(Parked());
    coroutines.back().handle.resume();
  }
  const double after = static_cast<double>(PssBytes());
  return {(after - before) / count, static_cast<double>(last_frame_bytes)};
}

void AddFigure(std::vector<Figure>& figures, const std::string& unit, const std::string& method,
               const std::string& note, std::vector<double> samples) {
  const Stats stats = Summarize(std::move(samples));
  figures.push_back(
      {unit, "memory", method, false, stats.median, "bytes", stats.spread, stats.runs, note});
}

}  // namespace

std::vector<Figure> MeasureUserMemory(const std::vector<int>& alive, int runs) {
  std::vector<Figure> figures;
  const std::size_t default_stack = ctx::fixedsize_stack::traits_type::default_size();
  for (std::size_t stack : {std::size_t{16} << 10, default_stack}) {
    const std::string size = std::to_string(stack >> 10) + "KiB";
    const std::string name = stack == default_stack ? "default" : size;
    for (int count : alive) {
      std::vector<double> pss;
      for (int run = 0; run < runs; ++run) {
        pss.push_back(RunInChild([&] { return FiberMemory(count, stack); }).at(0));
      }
      AddFigure(figures, "fiber", "stack-" + name + "/pss@" + std::to_string(count),
                "PSS per fiber, " + std::to_string(count) + " alive, " + size +
                    " fixedsize_stack (malloc); only touched pages count",
                pss);
    }
  }
  for (int count : alive) {
    std::vector<double> pss, frame;
    for (int run = 0; run < runs; ++run) {
      const std::vector<double> values = RunInChild([&] { return CoroutineMemory(count); });
      pss.push_back(values.at(0));
      frame.push_back(values.at(1));
    }
    AddFigure(figures, "coroutine", "pss@" + std::to_string(count),
              "PSS per coroutine, " + std::to_string(count) + " alive (frames from malloc)", pss);
    if (count == alive.back()) {
      AddFigure(figures, "coroutine", "frame-bytes",
                "bytes the compiler asked operator new for, one frame", frame);
    }
  }
  return figures;
}

}  // namespace switchyard::switchcost
