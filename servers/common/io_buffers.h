// Connections' read and reply buffers, lent by the thread that serves them (Session uses them).
// A connection waiting for its next request holds neither: it borrows a read buffer when there is
// something to read and a reply buffer when it has something to say, and gives each back once it
// is empty. Each thread keeps a few of each, so the next connection it serves borrows without
// allocating. Redis 7.4 shares one query buffer per thread the same way, and memcached returns an
// idle connection's read buffer to a per-thread cache: an idle connection then costs its unit and
// its socket, not its buffers. A connection keeps a buffer of its own only while a request has
// arrived in part or replies wait for a client that is not reading.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace switchyard {

// A read buffer: `size` bytes, uninitialised (nothing is zeroed on the way in).
struct InputBuffer {
  std::unique_ptr<char[]> bytes;
  std::size_t size = 0;
};

namespace io_buffers {

// The size of a lent read buffer. A read that fills it makes its connection grow a buffer of its
// own by doubling, so pipelines and large values still move in large reads.
inline constexpr std::size_t kInputBytes = 4 * 1024;
// A buffer grown past this by a large request or reply is freed once empty rather than kept.
inline constexpr std::size_t kKeepBytes = 64 * 1024;

// A read buffer of kInputBytes from this thread's cache, or newly allocated.
InputBuffer TakeInput();
// A read buffer of `bytes`, for a connection whose request outgrew kInputBytes.
InputBuffer NewInput(std::size_t bytes);
// Back to this thread's cache when it is of the common size and the cache has room; else freed.
void GiveBack(InputBuffer buffer);

// An empty reply buffer from this thread's cache (it keeps the capacity it grew to), or a new one.
// `*counted` receives the capacity counted for it so far, for GiveBack.
std::string TakeOutput(std::size_t* counted);
// Back to this thread's cache, or freed if it grew past kKeepBytes or the cache is full. `counted`
// is what TakeOutput said: the growth since is counted here.
void GiveBack(std::string output, std::size_t counted);

// Where the bytes of every buffer alive (cached or lent) are counted: switchyard_io_buffer_bytes,
// in this process's metrics slot. nullptr: counted nowhere that is exported.
void CountIn(std::atomic<std::int64_t>* tally);
// Counts nowhere exported from now on, if `tally` is still where the counting goes.
void StopCountingIn(std::atomic<std::int64_t>* tally);

}  // namespace io_buffers
}  // namespace switchyard
