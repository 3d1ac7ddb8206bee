// Socket helpers shared by the models: listening, the readiness line, and plain blocking writes.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace switchyard {

// Opens a listening TCP socket on bind:port (an IPv4 or IPv6 address, or a host name) with
// SO_REUSEADDR. Throws std::runtime_error("cannot listen on ADDR:PORT: reason") on failure.
int ListenTcp(const std::string& bind, std::uint16_t port, int backlog = 1024);

// Turns Nagle's algorithm off on an accepted connection (TCP_NODELAY), as Redis does for every
// client: with it on, a small reply waits for the client to acknowledge the previous one, and a
// client that delays its ACK (Linux: at least 40 ms) turns that wait into the tail latency.
void SetNoDelay(int fd);

// The port a bound socket got (for --port 0).
std::uint16_t LocalPort(int fd);

// Whether a socket is IPv6 (for --bind ::1): Asio needs the protocol to adopt a listening socket.
bool IsIpv6Socket(int fd);

// Prints the one line that tells scripts and tests the server is serving:
//   switchyard ready: model=coroutine port=6380 metrics_port=9180 pid=1234
void AnnounceReady(const std::string& model, std::uint16_t port, std::uint16_t metrics_port);

// Writes all of `data` to a blocking socket. MSG_NOSIGNAL: a client that went away gives EPIPE,
// never a SIGPIPE that would kill the server. False when the peer is gone, or when a write would
// block and `give_up(unwritten bytes)` says not to wait (the output limit, Session::OwesTooMuch).
bool SendAll(int fd, std::string_view data,
             const std::function<bool(std::size_t)>& give_up = nullptr);

// --output-buffer-bytes, checked when a write would block: the replies a client has not read
// yet are `pending` bytes still in our buffer plus what sits unsent in the kernel's send queue
// (SIOCOUTQ). Every model writes its replies before it reads more requests, so a client that
// never reads costs bounded memory anyway; the limit decides when it is dropped instead of
// parked for ever. Always false for a limit of 0.
bool OverOutputLimit(int fd, std::size_t pending, std::size_t output_limit);

// The reply to a connection over --max-clients, sent before closing it (as Redis does).
inline constexpr std::string_view kMaxClientsReply = "-ERR max number of clients reached\r\n";

}  // namespace switchyard
