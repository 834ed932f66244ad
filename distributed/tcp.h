// TCP plumbing shared by the rendezvous and the CPU process group: a socket that closes itself,
// reads and writes bounded by a deadline, and the star of connections a job forms around
// rank 0. Internal to distributed/.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "distributed/env.h"

namespace ember::distributed::tcp {

using Clock = std::chrono::steady_clock;

/// A socket closed on scope exit.
struct Socket {
  int fd = -1;
  Socket() = default;
  explicit Socket(int f) : fd(f) {}
  Socket(Socket&& o) noexcept : fd(std::exchange(o.fd, -1)) {}
  Socket& operator=(Socket&& o) noexcept {
    std::swap(fd, o.fd);
    return *this;
  }
  ~Socket();
};

/// Sends or receives exactly n bytes before the deadline. Errors are Io: "[tag] timed out
/// waiting for <what>", "[tag] <what> closed the connection", or the system's message.
void send_all(int fd, const void* data, size_t n, Clock::time_point deadline, const char* tag, const std::string& what);
void recv_all(int fd, void* data, size_t n, Clock::time_point deadline, const char* tag, const std::string& what);

/// The connections of a job after rendezvous, and rank 0's payload. Rank 0 holds one socket
/// per other rank (links[r] for rank r, links[0] unused); every other rank holds one, to
/// rank 0 (links[0]). A world of one has none.
struct Star {
  std::vector<Socket> links;
  std::vector<uint8_t> payload;
};

/// Forms the star (see rendezvous.h for the protocol and its errors); returning is a barrier.
Star connect_star(const DistEnv& env, const std::vector<uint8_t>& payload, Clock::time_point deadline);

}  // namespace ember::distributed::tcp
