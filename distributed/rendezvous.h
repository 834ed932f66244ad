// Rendezvous: rank 0's bytes (for NCCL, the 128-byte unique id) delivered to every rank over
// TCP. Rank 0 listens on MASTER_PORT; every other rank connects to MASTER_ADDR:MASTER_PORT,
// retrying until rank 0 is up, and says who it is; once all have arrived rank 0 answers each
// with the payload, so returning is also a barrier. Every wait is bounded by the timeout.
#pragma once

#include <chrono>
#include <cstdint>
#include <vector>

#include "distributed/env.h"

namespace ember::distributed {

/// Returns rank 0's `payload` on every rank (other ranks' `payload` is ignored). Throws Io
/// naming the address and what failed (cannot listen, cannot connect, a peer closed the
/// connection) or, after `timeout`, which ranks never arrived; InvalidArgument when a peer
/// reports another world size or a rank that is taken or out of range.
std::vector<uint8_t> tcp_broadcast(const DistEnv& env, const std::vector<uint8_t>& payload,
                                   std::chrono::milliseconds timeout);

}  // namespace ember::distributed
