// Socket helpers shared by the models: listening, the readiness line, and plain blocking writes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace switchyard {

// Opens a listening TCP socket on bind:port (an IPv4 or IPv6 address, or a host name) with
// SO_REUSEADDR. Throws std::runtime_error("cannot listen on ADDR:PORT: reason") on failure.
int ListenTcp(const std::string& bind, std::uint16_t port, int backlog = 1024);

// The port a bound socket got (for --port 0).
std::uint16_t LocalPort(int fd);

// Prints the one line that tells scripts and tests the server is serving:
//   switchyard ready: model=coroutine port=6380 metrics_port=9180 pid=1234
void AnnounceReady(const std::string& model, std::uint16_t port, std::uint16_t metrics_port);

// Writes all of `data` to a blocking socket. MSG_NOSIGNAL: a client that went away gives EPIPE,
// never a SIGPIPE that would kill the server. False when the peer is gone.
bool SendAll(int fd, std::string_view data);

// The reply to a connection over --max-clients, sent before closing it (as Redis does).
inline constexpr std::string_view kMaxClientsReply = "-ERR max number of clients reached\r\n";

}  // namespace switchyard
