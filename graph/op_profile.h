// Per-op time of graph runs, for finding where a model's forward goes: with EMBER_PROFILE_OPS=1
// in the environment the executor times every node (on CUDA it synchronises the device after
// each, so the times are the kernels' but the run is slower than without the profile), adds the
// time to its op's total, and at exit prints the totals to stderr, largest first. Off (one
// check of the environment, at the first run) the executor pays nothing per node.
#pragma once

#include <string>

namespace ember::graph {

/// Whether EMBER_PROFILE_OPS is set to something other than 0 (read once).
bool op_profile_on();

/// Adds one node's time to the totals of its op.
void op_profile_add(const std::string& op, double seconds);

}  // namespace ember::graph
