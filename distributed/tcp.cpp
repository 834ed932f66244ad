#include "distributed/tcp.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <thread>

#include "runtime/error.h"

namespace ember::distributed::tcp {

Socket::~Socket() {
  if (fd >= 0) ::close(fd);
}

namespace {


constexpr const char* kTag = "rendezvous";
constexpr uint32_t kMagic = 0x524d4245;  // "EMBR"
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxPayload = 1 << 20;


std::string where(const DistEnv& env) { return str_cat(env.master_addr, ":", env.master_port); }

int remaining_ms(Clock::time_point deadline) {
  const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left <= 0 ? 0 : static_cast<int>(std::min<int64_t>(left, 1 << 30));
}

// Waits until fd is ready for `events`; false at the deadline.
bool wait_ready(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    const int r = ::poll(&p, 1, remaining_ms(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

void send_all(int fd, const void* data, size_t n, Clock::time_point deadline, const char* tag, const std::string& what) {
  const char* p = static_cast<const char*>(data);
  while (n > 0) {
    EMBER_CHECK(wait_ready(fd, POLLOUT, deadline), Io, "[", tag, "] timed out sending to ", what);
    const ssize_t k = ::send(fd, p, n, MSG_NOSIGNAL);
    if (k < 0 && errno == EINTR) continue;
    EMBER_CHECK(k > 0, Io, "[", tag, "] sending to ", what, " failed: ", std::strerror(errno));
    p += k;
    n -= static_cast<size_t>(k);
  }
}

void recv_all(int fd, void* data, size_t n, Clock::time_point deadline, const char* tag, const std::string& what) {
  char* p = static_cast<char*>(data);
  while (n > 0) {
    EMBER_CHECK(wait_ready(fd, POLLIN, deadline), Io, "[", tag, "] timed out waiting for ", what);
    const ssize_t k = ::recv(fd, p, n, 0);
    if (k < 0 && errno == EINTR) continue;
    EMBER_CHECK(k != 0, Io, "[", tag, "] ", what, " closed the connection");
    EMBER_CHECK(k > 0, Io, "[", tag, "] reading from ", what, " failed: ", std::strerror(errno));
    p += k;
    n -= static_cast<size_t>(k);
  }
}

namespace {

void send_u32(int fd, uint32_t v, Clock::time_point deadline, const std::string& what) {
  const uint32_t n = htonl(v);
  send_all(fd, &n, 4, deadline, kTag, what);
}

uint32_t recv_u32(int fd, Clock::time_point deadline, const std::string& what) {
  uint32_t n = 0;
  recv_all(fd, &n, 4, deadline, kTag, what);
  return ntohl(n);
}

// The answer rank 0 sends each peer: status 0 and the payload, or status 1 and a message.
void send_reply(int fd, uint32_t status, const void* data, size_t n, Clock::time_point deadline,
                const std::string& what) {
  send_u32(fd, status, deadline, what);
  send_u32(fd, static_cast<uint32_t>(n), deadline, what);
  send_all(fd, data, n, deadline, kTag, what);
}

Star serve(const DistEnv& env, const std::vector<uint8_t>& payload, Clock::time_point deadline) {
  EMBER_CHECK(payload.size() <= kMaxPayload, InvalidArgument, "[rendezvous] payload of ", payload.size(),
              " bytes exceeds ", kMaxPayload);
  Socket listener(::socket(AF_INET6, SOCK_STREAM, 0));
  bool v6 = listener.fd >= 0;
  if (!v6) listener = Socket(::socket(AF_INET, SOCK_STREAM, 0));
  EMBER_CHECK(listener.fd >= 0, Io, "[rendezvous] cannot create a socket: ", std::strerror(errno));
  const int one = 1, zero = 0;
  ::setsockopt(listener.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  int bound = -1;
  if (v6) {
    ::setsockopt(listener.fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);  // IPv4 peers too
    sockaddr_in6 a{};
    a.sin6_family = AF_INET6;
    a.sin6_addr = in6addr_any;
    a.sin6_port = htons(static_cast<uint16_t>(env.master_port));
    bound = ::bind(listener.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  } else {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_ANY);
    a.sin_port = htons(static_cast<uint16_t>(env.master_port));
    bound = ::bind(listener.fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  }
  EMBER_CHECK(bound == 0, Io, "[rendezvous] rank 0 cannot listen on port ", env.master_port, ": ",
              std::strerror(errno), " (another job on this port? set MASTER_PORT)");
  EMBER_CHECK(::listen(listener.fd, 128) == 0, Io, "[rendezvous] listen failed: ", std::strerror(errno));

  std::vector<Socket> peers(static_cast<size_t>(env.world_size));
  int arrived = 1;
  while (arrived < env.world_size) {
    if (!wait_ready(listener.fd, POLLIN, deadline)) {
      std::string missing;
      for (int r = 1; r < env.world_size; ++r)
        if (peers[static_cast<size_t>(r)].fd < 0) missing += (missing.empty() ? "" : ", ") + std::to_string(r);
      throw_error(ErrorCode::Io, str_cat("[rendezvous] timed out on ", where(env), " after ", arrived, " of ",
                                         env.world_size, " ranks arrived; missing ranks: ", missing));
    }
    Socket peer(::accept(listener.fd, nullptr, nullptr));
    if (peer.fd < 0) continue;
    const std::string what = "a peer";
    uint32_t header[4] = {};
    try {
      // A rank sends its header as soon as it connects; a connection that stays silent (a
      // health check, a scanner) is given a few seconds, not the whole rendezvous.
      const Clock::time_point header_deadline = std::min(deadline, Clock::now() + std::chrono::seconds(5));
      for (uint32_t& v : header) v = recv_u32(peer.fd, header_deadline, what);
    } catch (const Error&) {
      continue;  // a connection that closed early: the timeout reports the rank if it was one
    }
    // A connection that is not an ember rank (a port scanner, a stale job) is dropped.
    if (header[0] != kMagic) continue;
    const uint32_t version = header[1], rank = header[2], world = header[3];
    std::string problem;
    if (version != kVersion) problem = str_cat("protocol version ", version, ", rank 0 speaks ", kVersion);
    else if (world != static_cast<uint32_t>(env.world_size))
      problem = str_cat("rank ", rank, " has world size ", world, ", rank 0 has ", env.world_size);
    else if (rank == 0 || rank >= world) problem = str_cat("rank ", rank, " is out of range 1..", world - 1);
    else if (peers[rank].fd >= 0) problem = str_cat("rank ", rank, " arrived twice");
    if (!problem.empty()) {
      send_reply(peer.fd, 1, problem.data(), problem.size(), deadline, what);
      throw_error(ErrorCode::InvalidArgument, "[rendezvous] " + problem);
    }
    const int one = 1;  // collectives send small messages: no Nagle delay
    ::setsockopt(peer.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    peers[rank] = std::move(peer);
    ++arrived;
  }
  for (int r = 1; r < env.world_size; ++r)
    send_reply(peers[static_cast<size_t>(r)].fd, 0, payload.data(), payload.size(), deadline,
               str_cat("rank ", r));
  return Star{std::move(peers), payload};
}

Socket connect_to(const DistEnv& env, Clock::time_point deadline) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  std::string last = "no attempt";
  for (;;) {
    addrinfo* found = nullptr;
    const int rc = ::getaddrinfo(env.master_addr.c_str(), std::to_string(env.master_port).c_str(), &hints, &found);
    if (rc != 0) {
      last = ::gai_strerror(rc);
    } else {
      for (addrinfo* a = found; a; a = a->ai_next) {
        // Non-blocking, so that an unanswered SYN (a filtered host) ends at the deadline, not
        // at the kernel's two-minute connect timeout; reads and writes poll first anyway.
        Socket s(::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK, a->ai_protocol));
        if (s.fd < 0) continue;
        int err = ::connect(s.fd, a->ai_addr, a->ai_addrlen) == 0 ? 0 : errno;
        if (err == EINPROGRESS) {
          err = ETIMEDOUT;
          if (wait_ready(s.fd, POLLOUT, std::min(deadline, Clock::now() + std::chrono::seconds(5)))) {
            socklen_t len = sizeof err;
            if (::getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
          }
        }
        if (err == 0) {
          ::freeaddrinfo(found);
          const int one = 1;
          ::setsockopt(s.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          return s;
        }
        last = std::strerror(err);
      }
      ::freeaddrinfo(found);
    }
    // Rank 0 may not be listening yet: retry until the deadline.
    EMBER_CHECK(remaining_ms(deadline) > 0, Io, "[rendezvous] rank ", env.rank, " could not reach rank 0 at ",
                where(env), " before the timeout (last error: ", last, ")");
    std::this_thread::sleep_for(std::chrono::milliseconds(std::min(100, remaining_ms(deadline))));
  }
}

Star join(const DistEnv& env, Clock::time_point deadline) {
  Socket s = connect_to(env, deadline);
  const std::string what = str_cat("rank 0 at ", where(env));
  for (uint32_t v : {kMagic, kVersion, static_cast<uint32_t>(env.rank), static_cast<uint32_t>(env.world_size)})
    send_u32(s.fd, v, deadline, what);
  const uint32_t status = recv_u32(s.fd, deadline, what);
  const uint32_t n = recv_u32(s.fd, deadline, what);
  EMBER_CHECK(n <= kMaxPayload, Io, "[rendezvous] ", what, " announced ", n, " bytes, more than ", kMaxPayload);
  std::vector<uint8_t> data(n);
  recv_all(s.fd, data.data(), n, deadline, kTag, what);
  if (status != 0)
    throw_error(ErrorCode::InvalidArgument,
                str_cat("[rendezvous] rank 0 refused rank ", env.rank, ": ", std::string(data.begin(), data.end())));
  Star star;
  star.links.push_back(std::move(s));
  star.payload = std::move(data);
  return star;
}

}  // namespace

Star connect_star(const DistEnv& env, const std::vector<uint8_t>& payload, Clock::time_point deadline) {
  if (env.world_size == 1) return Star{{}, payload};
  return env.rank == 0 ? serve(env, payload, deadline) : join(env, deadline);
}

}  // namespace ember::distributed::tcp
