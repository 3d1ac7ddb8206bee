// A stackful fiber: a function with its own stack, switched to and from in user space by
// Boost.Context (a few registers saved and restored, no system call). The fiber model's scheduler
// (fiber_server.cc) decides when each fiber runs; this class only knows how to switch.
//
// Its stack is a protected_fixedsize_stack: an mmap'd region with a PROT_NONE guard page below
// it, so running off the end faults instead of writing over a neighbour's memory, and
// InstallStackOverflowReporter turns that fault into a clear message. Every switch is announced to
// AddressSanitizer (__sanitizer_start_switch_fiber / __sanitizer_finish_switch_fiber), so ASan
// builds follow the program from stack to stack instead of reporting false errors.
#pragma once

#include <boost/context/fiber.hpp>
#include <boost/context/stack_context.hpp>
#include <cstddef>
#include <utility>

namespace switchyard {

class Fiber {
 public:
  // Prepares a fiber that will run `body` on a stack of `stack_bytes` (plus a guard page). Nothing
  // runs until Resume. `body` must not let an exception escape.
  template <typename Body>
  Fiber(std::size_t stack_bytes, Body body)
      : fiber_(std::allocator_arg, GuardedStack{stack_bytes, &stack_},
               [this, body = std::move(body)](boost::context::fiber&& scheduler) mutable {
                 Entered(std::move(scheduler));
                 {
                   Body run = std::move(body);  // its captures die on this stack, before we leave
                   run();
                 }
                 return Leaving();
               }) {}

  Fiber(const Fiber&) = delete;
  Fiber& operator=(const Fiber&) = delete;

  // From the scheduler's own stack: runs the fiber until it suspends or returns. False once it
  // has returned (its stack is then freed and the Fiber can be deleted).
  bool Resume();
  // From inside the fiber: gives the thread back to whoever called Resume.
  void Suspend();
  // The fiber running on this thread, or nullptr on the scheduler's own stack.
  static Fiber* Current();

  std::size_t stack_bytes() const { return stack_.size; }

 private:
  // protected_fixedsize_stack that also tells the Fiber where its stack is (for ASan and for the
  // overflow report).
  struct GuardedStack {
    boost::context::stack_context allocate();
    void deallocate(boost::context::stack_context& stack) noexcept;
    std::size_t bytes;
    boost::context::stack_context* record;
  };

  void Entered(boost::context::fiber&& scheduler);
  boost::context::fiber Leaving();

  boost::context::stack_context stack_;  // filled by GuardedStack before fiber_ is built
  boost::context::fiber fiber_;          // the fiber's suspended context, held by the scheduler
  boost::context::fiber scheduler_;      // the scheduler's context, held while the fiber runs
  const void* scheduler_stack_bottom_ = nullptr;  // for ASan, learnt on each switch in
  std::size_t scheduler_stack_size_ = 0;
};

// Installs (once per process) a SIGSEGV handler that recognises a fault in the guard page of the
// running fiber's stack and reports it as "fiber stack overflow, raise --stack-kb" before aborting;
// any other fault goes to the handler that was there before. Also gives the calling thread an
// alternate signal stack, without which the handler could not run on an overflowed stack: call it
// on every thread that runs fibers.
void InstallStackOverflowReporter();

}  // namespace switchyard
