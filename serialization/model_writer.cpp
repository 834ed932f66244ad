// Writes .ember files (docs/FORMAT.md): the size-prefixed flatbuffer, zero padding to the page
// boundary, the data segment with 64-byte aligned blobs, and the checksum trailer.
#include "ops/copy.h"
#include "runtime/error.h"
#include "serialization/atomic_file.h"
#include "serialization/checksum.h"
#include "serialization/ember_generated.h"
#include "serialization/model_file.h"

namespace ember {

namespace {

uint64_t align_up(uint64_t n, uint64_t a) { return (n + a - 1) / a * a; }

flatbuffers::Offset<fb::Attribute> build_attribute(flatbuffers::FlatBufferBuilder& b, const std::string& name,
                                                   const graph::AttrValue& v) {
  auto n = b.CreateString(name);
  switch (graph::attr_type(v)) {
    case graph::AttrType::None: return fb::CreateAttribute(b, n, fb::AttributeType::None);
    case graph::AttrType::Int: return fb::CreateAttribute(b, n, fb::AttributeType::Int, std::get<int64_t>(v));
    case graph::AttrType::Float: return fb::CreateAttribute(b, n, fb::AttributeType::Float, 0, std::get<double>(v));
    case graph::AttrType::Bool: return fb::CreateAttribute(b, n, fb::AttributeType::Bool, 0, 0, std::get<bool>(v));
    case graph::AttrType::String: {
      auto s = b.CreateString(std::get<std::string>(v));
      return fb::CreateAttribute(b, n, fb::AttributeType::String, 0, 0, false, s);
    }
    case graph::AttrType::Ints: {
      auto l = b.CreateVector(std::get<std::vector<int64_t>>(v));
      return fb::CreateAttribute(b, n, fb::AttributeType::Ints, 0, 0, false, 0, l);
    }
    case graph::AttrType::Floats: {
      auto l = b.CreateVector(std::get<std::vector<double>>(v));
      return fb::CreateAttribute(b, n, fb::AttributeType::Floats, 0, 0, false, 0, 0, l);
    }
    case graph::AttrType::DType:
      return fb::CreateAttribute(b, n, fb::AttributeType::DType, 0, 0, false, 0, 0, 0,
                                 static_cast<fb::DType>(std::get<DType>(v)));
  }
  return fb::CreateAttribute(b, n);
}

struct Layout {
  std::string flatbuffer;          // size-prefixed
  std::vector<Tensor> blobs;       // per value: contiguous CPU data, or undefined
  std::vector<uint64_t> offsets;   // per value: offset in the data segment
  uint64_t data_size = 0;
};

Layout lay_out(const graph::Graph& g, const std::vector<Tensor>& data, bool check = true) {
  if (check) graph::validate(g);
  EMBER_CHECK(data.size() == g.values.size(), InvalidArgument, "[write_model_file] ", data.size(),
              " data tensors for ", g.values.size(), " values");
  Layout L;
  L.blobs.resize(g.values.size());
  L.offsets.resize(g.values.size(), 0);
  for (size_t i = 0; i < g.values.size(); ++i) {
    const graph::Value& v = g.values[i];
    const bool stored = v.kind == graph::ValueKind::Parameter || v.kind == graph::ValueKind::Buffer ||
                        v.kind == graph::ValueKind::Constant;
    if (!stored) continue;
    if (!check && !data[i].defined()) continue;
    EMBER_CHECK(data[i].defined(), InvalidArgument, "[write_model_file] value \"", v.name, "\" (",
                graph::value_kind_name(v.kind), ") has no data");
    Tensor t = data[i].detach().to(Device::cpu()).contiguous();
    if (!check) {
      L.offsets[i] = align_up(L.data_size, format::kBlobAlignment);
      L.data_size = L.offsets[i] + t.nbytes();
      L.blobs[i] = t;
      continue;
    }
    EMBER_CHECK(t.dtype() == v.dtype && t.dim() == static_cast<int64_t>(v.shape.size()), InvalidArgument,
                "[write_model_file] value \"", v.name, "\" is declared ", v.dtype, " with ", v.shape.size(),
                " dims, its data is ", t.dtype(), " of shape ", shape_str(t.sizes()));
    for (size_t d = 0; d < v.shape.size(); ++d)
      EMBER_CHECK(v.shape[d].size == t.sizes()[d], InvalidArgument, "[write_model_file] value \"", v.name,
                  "\" dim ", d, " is declared ", v.shape[d].size, ", its data has ", t.sizes()[d]);
    L.offsets[i] = align_up(L.data_size, format::kBlobAlignment);
    L.data_size = L.offsets[i] + t.nbytes();
    L.blobs[i] = t;
  }

  flatbuffers::FlatBufferBuilder b(1 << 16);
  std::vector<flatbuffers::Offset<fb::Value>> values;
  for (size_t i = 0; i < g.values.size(); ++i) {
    const graph::Value& v = g.values[i];
    std::vector<flatbuffers::Offset<fb::Dim>> dims;
    for (const graph::Dim& d : v.shape)
      dims.push_back(fb::CreateDim(b, d.size, d.is_symbolic() ? b.CreateString(d.symbol) : 0));
    auto name = b.CreateString(v.name);
    auto shape = b.CreateVector(dims);
    fb::Blob blob(L.offsets[i], L.blobs[i].defined() ? L.blobs[i].nbytes() : 0);
    values.push_back(fb::CreateValue(b, name, static_cast<fb::DType>(v.dtype), shape,
                                     static_cast<fb::ValueKind>(v.kind), L.blobs[i].defined() ? &blob : nullptr,
                                     v.requires_grad));
  }
  std::vector<std::string> op_names;
  std::vector<flatbuffers::Offset<fb::Node>> nodes;
  for (const graph::Node& n : g.nodes) {
    auto it = std::find(op_names.begin(), op_names.end(), n.op);
    const auto op = static_cast<uint32_t>(it - op_names.begin());
    if (it == op_names.end()) op_names.push_back(n.op);
    std::vector<flatbuffers::Offset<fb::Attribute>> attrs;
    for (const auto& [name, value] : n.attributes.values) attrs.push_back(build_attribute(b, name, value));
    nodes.push_back(fb::CreateNode(b, op, b.CreateVector(n.inputs), b.CreateVector(n.outputs), b.CreateVector(attrs),
                                   n.name.empty() ? 0 : b.CreateString(n.name)));
  }
  std::vector<flatbuffers::Offset<fb::KeyValue>> meta;
  for (const auto& [k, v] : g.metadata) meta.push_back(fb::CreateKeyValue(b, b.CreateString(k), b.CreateString(v)));
  auto producer = fb::CreateProducer(b, b.CreateString(g.producer), b.CreateString(g.producer_version),
                                     b.CreateString(g.torch_version));
  auto model = fb::CreateModel(b, format::kVersionMajor, format::kVersionMinor, producer, b.CreateVector(meta),
                               b.CreateVector(values), b.CreateVectorOfStrings(op_names), b.CreateVector(nodes),
                               b.CreateVector(g.inputs), b.CreateVector(g.outputs), L.data_size);
  fb::FinishSizePrefixedModelBuffer(b, model);
  L.flatbuffer.assign(reinterpret_cast<const char*>(b.GetBufferPointer()), b.GetSize());
  return L;
}

// Emits the file through `sink(bytes, size)`, hashing as it goes.
template <typename Sink>
void emit(const Layout& L, Sink&& sink) {
  ChecksumStream hash;
  uint64_t written = 0;
  auto put = [&](const void* p, size_t n) {
    hash.update(p, n);
    sink(p, n);
    written += n;
  };
  const std::string zeros(format::kDataAlignment, '\0');
  auto pad = [&](uint64_t to) {
    while (written < to) put(zeros.data(), std::min<uint64_t>(zeros.size(), to - written));
  };
  put(L.flatbuffer.data(), L.flatbuffer.size());
  const uint64_t data_start = align_up(written, format::kDataAlignment);
  pad(data_start);
  for (size_t i = 0; i < L.blobs.size(); ++i) {
    if (!L.blobs[i].defined()) continue;
    pad(data_start + L.offsets[i]);
    put(L.blobs[i].data(), L.blobs[i].nbytes());
  }
  pad(data_start + L.data_size);
  const uint64_t checksum = hash.digest();
  sink(&checksum, 8);
  sink(format::kTrailerMagic, 8);
}

}  // namespace

void write_model_file(const std::string& path, const graph::Graph& graph, const std::vector<Tensor>& data) {
  Layout L = lay_out(graph, data);
  AtomicFile file(path);
  emit(L, [&](const void* p, size_t n) { file.write(p, n); });
  file.commit();
}

std::string model_file_bytes(const graph::Graph& graph, const std::vector<Tensor>& data, bool check) {
  Layout L = lay_out(graph, data, check);
  std::string out;
  emit(L, [&](const void* p, size_t n) { out.append(static_cast<const char*>(p), n); });
  return out;
}

}  // namespace ember
