#include "servers/common/io_buffers.h"

#include <utility>
#include <vector>

namespace switchyard::io_buffers {
namespace {

// Enough for what one thread has in flight at once: an event loop reads and answers one
// connection at a time, and a connection with a partial request keeps its own buffer meanwhile.
constexpr std::size_t kCachedPerThread = 4;

std::atomic<std::int64_t> unexported;
std::atomic<std::atomic<std::int64_t>*> tally{&unexported};

// Counted only when a buffer is allocated, freed or has grown, never on a loan: the cache makes
// those rare, so the hot path touches no shared cache line.
void Count(std::int64_t bytes) {
  if (bytes != 0)
    tally.load(std::memory_order_relaxed)->fetch_add(bytes, std::memory_order_relaxed);
}

// What a reply buffer holds on the heap: a short string lives inside the object itself.
std::int64_t HeapBytes(const std::string& output) {
  static const std::size_t inline_capacity = std::string().capacity();
  return output.capacity() > inline_capacity ? static_cast<std::int64_t>(output.capacity()) : 0;
}

struct ThreadCache {
  std::vector<InputBuffer> inputs;
  std::vector<std::string> outputs;  // empty, each with the capacity it grew to
  ~ThreadCache() {                   // a thread that ends (thread_per_conn's) frees its cache
    for (const InputBuffer& input : inputs) Count(-static_cast<std::int64_t>(input.size));
    for (const std::string& output : outputs) Count(-HeapBytes(output));
  }
};

ThreadCache& Cache() {
  thread_local ThreadCache cache;
  return cache;
}

}  // namespace

InputBuffer TakeInput() {
  auto& inputs = Cache().inputs;
  if (inputs.empty()) return NewInput(kInputBytes);
  InputBuffer buffer = std::move(inputs.back());
  inputs.pop_back();
  return buffer;
}

InputBuffer NewInput(std::size_t bytes) {
  Count(static_cast<std::int64_t>(bytes));
  return {std::make_unique_for_overwrite<char[]>(bytes), bytes};
}

void GiveBack(InputBuffer buffer) {
  if (buffer.bytes == nullptr) return;
  auto& inputs = Cache().inputs;
  if (buffer.size == kInputBytes && inputs.size() < kCachedPerThread) {
    inputs.push_back(std::move(buffer));
  } else {
    Count(-static_cast<std::int64_t>(buffer.size));
  }
}

std::string TakeOutput(std::size_t* counted) {
  auto& outputs = Cache().outputs;
  std::string output;
  if (!outputs.empty()) {
    output = std::move(outputs.back());
    outputs.pop_back();
  }
  *counted = static_cast<std::size_t>(HeapBytes(output));
  return output;
}

void GiveBack(std::string output, std::size_t counted) {
  const std::int64_t heap = HeapBytes(output);
  Count(heap - static_cast<std::int64_t>(counted));
  auto& outputs = Cache().outputs;
  if (output.capacity() <= kKeepBytes && outputs.size() < kCachedPerThread) {
    output.clear();
    outputs.push_back(std::move(output));
  } else {
    Count(-heap);
  }
}

void CountIn(std::atomic<std::int64_t>* counter) {
  tally.store(counter != nullptr ? counter : &unexported);
}

void StopCountingIn(std::atomic<std::int64_t>* counter) {
  tally.compare_exchange_strong(counter, &unexported);
}

}  // namespace switchyard::io_buffers
