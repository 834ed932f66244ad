#include "distributed/rendezvous.h"

#include "distributed/tcp.h"

namespace ember::distributed {

std::vector<uint8_t> tcp_broadcast(const DistEnv& env, const std::vector<uint8_t>& payload,
                                   std::chrono::milliseconds timeout) {
  return tcp::connect_star(env, payload, tcp::Clock::now() + timeout).payload;
}

}  // namespace ember::distributed
