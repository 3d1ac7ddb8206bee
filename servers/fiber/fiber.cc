#include "servers/fiber/fiber.h"

#include <signal.h>
#include <unistd.h>

#include <boost/context/protected_fixedsize_stack.hpp>
#include <cstdlib>
#include <cstring>
#include <memory>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define SWITCHYARD_ASAN 1
#endif

namespace switchyard {
namespace {

thread_local Fiber* t_current = nullptr;
thread_local const boost::context::stack_context* t_current_stack = nullptr;

// ASan keeps its own idea of which stack is running (for fake frames and for exceptions); it must
// be told before each switch where we are going, and after it where we came from. Without ASan
// these compile to nothing.
void StartSwitch([[maybe_unused]] void** fake_stack_save, [[maybe_unused]] const void* bottom,
                 [[maybe_unused]] std::size_t size) {
#ifdef SWITCHYARD_ASAN
  __sanitizer_start_switch_fiber(fake_stack_save, bottom, size);
#endif
}

void FinishSwitch([[maybe_unused]] void* fake_stack_save, [[maybe_unused]] const void** bottom_old,
                  [[maybe_unused]] std::size_t* size_old) {
#ifdef SWITCHYARD_ASAN
  __sanitizer_finish_switch_fiber(fake_stack_save, bottom_old, size_old);
#endif
}

const void* Bottom(const boost::context::stack_context& stack) {
  return static_cast<const char*>(stack.sp) - stack.size;
}

}  // namespace

boost::context::stack_context Fiber::GuardedStack::allocate() {
  *record = boost::context::protected_fixedsize_stack(bytes).allocate();
  return *record;
}

void Fiber::GuardedStack::deallocate(boost::context::stack_context& stack) noexcept {
#ifdef SWITCHYARD_ASAN
  // Frames the fiber left poisoned must not haunt whatever reuses these pages next.
  ASAN_UNPOISON_MEMORY_REGION(Bottom(stack), stack.size);
#endif
  boost::context::protected_fixedsize_stack(bytes).deallocate(stack);
}

bool Fiber::Resume() {
  Fiber* const previous = t_current;
  const auto* const previous_stack = t_current_stack;
  t_current = this;
  t_current_stack = &stack_;
  void* fake_stack = nullptr;
  StartSwitch(&fake_stack, Bottom(stack_), stack_.size);
  fiber_ = std::move(fiber_).resume();
  FinishSwitch(fake_stack, nullptr, nullptr);
  t_current = previous;
  t_current_stack = previous_stack;
  return static_cast<bool>(fiber_);
}

void Fiber::Suspend() {
  void* fake_stack = nullptr;
  StartSwitch(&fake_stack, scheduler_stack_bottom_, scheduler_stack_size_);
  scheduler_ = std::move(scheduler_).resume();
  FinishSwitch(fake_stack, &scheduler_stack_bottom_, &scheduler_stack_size_);
}

Fiber* Fiber::Current() { return t_current; }

void Fiber::Entered(boost::context::fiber&& scheduler) {
  FinishSwitch(nullptr, &scheduler_stack_bottom_, &scheduler_stack_size_);
  scheduler_ = std::move(scheduler);
}

boost::context::fiber Fiber::Leaving() {
  // nullptr: this stack will never run again, so ASan may drop its fake frames.
  StartSwitch(nullptr, scheduler_stack_bottom_, scheduler_stack_size_);
  return std::move(scheduler_);
}

namespace {

struct sigaction g_previous_segv {};

void OnSegv(int signal_number, siginfo_t* info, void* ucontext) {
  const auto* stack = t_current_stack;
  if (stack != nullptr) {
    // The guard page is the lowest page of the mapping; a large frame may step a little past it.
    const auto fault = reinterpret_cast<std::uintptr_t>(info->si_addr);
    const auto guard_low = reinterpret_cast<std::uintptr_t>(Bottom(*stack));
    const auto guard_high = guard_low + static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
    if (fault < guard_high && fault + (64 << 10) >= guard_low) {
      static constexpr char kMessage[] =
          "switchyard: fiber stack overflow (the fault hit a fiber stack's guard page), raise "
          "--stack-kb\n";
      [[maybe_unused]] const ssize_t n = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
      std::abort();
    }
  }
  // Not ours: hand it to the previous handler (ASan's, say), or let the default action kill us.
  if (g_previous_segv.sa_flags & SA_SIGINFO) {
    g_previous_segv.sa_sigaction(signal_number, info, ucontext);
  } else if (g_previous_segv.sa_handler != SIG_IGN && g_previous_segv.sa_handler != SIG_DFL) {
    g_previous_segv.sa_handler(signal_number);
  } else {
    signal(SIGSEGV, SIG_DFL);  // returning re-runs the faulting instruction, which now kills
  }
}

// The alternate stack of one thread, released when the thread ends.
struct AlternateSignalStack {
  AlternateSignalStack() : memory(new char[kBytes]) {
    stack_t stack{};
    stack.ss_sp = memory.get();
    stack.ss_size = kBytes;
    sigaltstack(&stack, nullptr);
  }
  ~AlternateSignalStack() {
    stack_t disable{};
    disable.ss_flags = SS_DISABLE;
    sigaltstack(&disable, nullptr);
  }
  static constexpr std::size_t kBytes = 64 << 10;
  std::unique_ptr<char[]> memory;
};

}  // namespace

void InstallStackOverflowReporter() {
  static const bool installed = [] {
    struct sigaction action {};
    action.sa_sigaction = OnSegv;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigaction(SIGSEGV, &action, &g_previous_segv);
    return true;
  }();
  (void)installed;
  stack_t current{};
  sigaltstack(nullptr, &current);
  if (current.ss_flags & SS_DISABLE) {  // keep one that is there already (ASan sets its own)
    thread_local AlternateSignalStack alternate;
  }
}

}  // namespace switchyard
