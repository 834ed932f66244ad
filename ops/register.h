// Each op family declares its ops to the registry through one of these (see registry.cpp).
#pragma once

#include "ops/registry.h"

namespace ember {

void register_creation_ops(OpRegistry& r);
void register_random_ops(OpRegistry& r);
void register_copy_ops(OpRegistry& r);
void register_view_ops(OpRegistry& r);
void register_unary_ops(OpRegistry& r);
void register_binary_ops(OpRegistry& r);
void register_reduction_ops(OpRegistry& r);
void register_matmul_ops(OpRegistry& r);
void register_join_ops(OpRegistry& r);
void register_index_ops(OpRegistry& r);
void register_layout_ops(OpRegistry& r);
void register_loss_ops(OpRegistry& r);
void register_conv_ops(OpRegistry& r);
void register_norm_ops(OpRegistry& r);
void register_pool_ops(OpRegistry& r);
void register_softmax_ops(OpRegistry& r);
void register_layer_norm_ops(OpRegistry& r);
void register_scan_ops(OpRegistry& r);
void register_sort_ops(OpRegistry& r);

}  // namespace ember
