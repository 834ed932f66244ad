#include "serialization/model_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "ops/creation.h"
#include "runtime/error.h"
#include "serialization/checksum.h"
#include "serialization/ember_generated.h"

namespace ember {

namespace {

class MappedFile final : public FileBytes {
 public:
  MappedFile(void* p, size_t n) : p_(p), n_(n) {}
  ~MappedFile() override {
    if (n_ > 0) ::munmap(p_, n_);
  }
  const uint8_t* data() const override { return static_cast<const uint8_t*>(p_); }
  size_t size() const override { return n_; }

 private:
  void* p_;
  size_t n_;
};

class MemoryBytes final : public FileBytes {
 public:
  explicit MemoryBytes(std::string b) : b_(std::move(b)) {}
  const uint8_t* data() const override { return reinterpret_cast<const uint8_t*>(b_.data()); }
  size_t size() const override { return b_.size(); }

 private:
  std::string b_;
};

[[noreturn]] void invalid(const std::string& where, const std::string& what) {
  throw_error(ErrorCode::InvalidModel, str_cat(where, ": ", what));
}

uint64_t read_u64(const uint8_t* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;  // little-endian hosts only (x86-64, aarch64)
}

DType dtype_from(fb::DType d, const std::string& where, const std::string& what) {
  const auto v = static_cast<uint8_t>(d);
  if (v > static_cast<uint8_t>(fb::DType::MAX)) invalid(where, str_cat(what, " has an unknown dtype code ", int(v)));
  return static_cast<DType>(v);  // both enums list the dtypes in the same order
}

// FlatBuffers 2.0's verifier aligns a vector's length field to 4 bytes only, so in a hostile
// file the 8-byte elements of an int64 or double vector can sit misaligned (a fuzzer found it):
// copy their bytes instead of loading them as int64_t / double. Files are little-endian, as
// every host ember builds for.
template <typename T>
std::vector<T> copy_scalars(const flatbuffers::Vector<T>* v) {
  std::vector<T> out;
  if (!v) return out;
  out.resize(v->size());
  if (!out.empty()) std::memcpy(out.data(), v->Data(), out.size() * sizeof(T));
  return out;
}

graph::AttrValue attribute_value(const fb::Attribute& a, const std::string& where) {
  switch (a.type()) {
    case fb::AttributeType::None: return std::monostate{};
    case fb::AttributeType::Int: return a.i();
    case fb::AttributeType::Float: return a.f();
    case fb::AttributeType::Bool: return a.b();
    case fb::AttributeType::String:
      if (!a.s()) invalid(where, "a string attribute has no string");
      return a.s()->str();
    case fb::AttributeType::Ints: return copy_scalars(a.ints());
    case fb::AttributeType::Floats: return copy_scalars(a.floats());
    case fb::AttributeType::DType: return dtype_from(a.dtype(), where, "a dtype attribute");
  }
  invalid(where, str_cat("unknown attribute type code ", int(static_cast<uint8_t>(a.type()))));
}

// numel × itemsize of a fixed shape, or -1 on overflow past int64.
int64_t checked_bytes(const std::vector<graph::Dim>& shape, DType dtype) {
  int64_t n = static_cast<int64_t>(itemsize(dtype));
  for (const graph::Dim& d : shape)
    if (__builtin_mul_overflow(n, d.size, &n)) return -1;
  return n;
}

}  // namespace

std::shared_ptr<FileBytes> map_file(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  EMBER_CHECK(fd >= 0, Io, "cannot open ", path, ": ", std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int err = errno;
    ::close(fd);
    throw_error(ErrorCode::Io, str_cat("cannot stat ", path, ": ", std::strerror(err)));
  }
  const size_t size = static_cast<size_t>(st.st_size);
  void* p = nullptr;
  if (size > 0) {
    // Private and writable: a fine-tuned CPU weight is copied on its first write, never
    // written back to the file. Not MAP_POPULATE: on a writable private mapping it would copy
    // every page up front; MADV_POPULATE_READ maps the page cache's pages without copying.
    p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw_error(ErrorCode::Io, str_cat("cannot map ", path, ": ", std::strerror(err)));
    }
  }
  ::close(fd);
#ifdef MADV_POPULATE_READ
  if (size > 0 && ::madvise(p, size, MADV_POPULATE_READ) != 0) ::madvise(p, size, MADV_WILLNEED);
#else
  if (size > 0) ::madvise(p, size, MADV_WILLNEED);
#endif
  return std::make_shared<MappedFile>(p, size);
}

std::shared_ptr<FileBytes> bytes_in_memory(std::string bytes) { return std::make_shared<MemoryBytes>(std::move(bytes)); }

ModelFile read_model(std::shared_ptr<FileBytes> bytes, const std::string& where, const ModelFileOptions& options) {
  using namespace format;
  const uint8_t* base = bytes->data();
  const uint64_t size = bytes->size();
  // 1. Layout: size prefix, identifier, trailer.
  if (size < 12 + kTrailerSize)
    invalid(where, str_cat("the file is ", size, " bytes, too small for a model (truncated?)"));
  if (!flatbuffers::BufferHasIdentifier(base, fb::ModelIdentifier(), /*size_prefixed=*/true))
    invalid(where, "not an ember model: the identifier at byte 8 is not \"EMBR\"");
  uint32_t fb_size;
  std::memcpy(&fb_size, base, 4);
  if (uint64_t{fb_size} + 4 + kTrailerSize > size)
    invalid(where, str_cat("the flatbuffer's size prefix (", fb_size, " bytes) reaches past the end of the ", size,
                           "-byte file (truncated?)"));
  if (std::memcmp(base + size - 8, kTrailerMagic, 8) != 0)
    invalid(where, "the checksum trailer is missing (truncated or not an ember model)");
  // 2. The flatbuffer itself.
  // Verified as one size-prefixed buffer: its alignment is relative to the file's start.
  flatbuffers::Verifier verifier(base, uint64_t{fb_size} + 4);
  if (!fb::VerifySizePrefixedModelBuffer(verifier))
    invalid(where, "the flatbuffer fails verification (damaged file)");
  const fb::Model* m = fb::GetSizePrefixedModel(base);
  ModelFile out;
  out.version_major = m->version_major();
  out.version_minor = m->version_minor();
  if (out.version_major != kVersionMajor)
    invalid(where, str_cat("format version ", out.version_major, ".", out.version_minor,
                           " is not readable by this ember (reads version ", kVersionMajor, ".x)"));
  const uint64_t data_start = (uint64_t{fb_size} + 4 + kDataAlignment - 1) / kDataAlignment * kDataAlignment;
  const uint64_t data_size = m->data_size();
  if (data_start > size || data_size > size - data_start || size - data_start - data_size != kTrailerSize)
    invalid(where, str_cat("the data segment (", data_size, " bytes at offset ", data_start,
                           ") and the trailer do not end the ", size, "-byte file exactly (truncated?)"));

  // 3. The graph, with every id, enum and size checked.
  graph::Graph& g = out.graph;
  if (const fb::Producer* p = m->producer()) {
    if (p->name()) g.producer = p->name()->str();
    if (p->version()) g.producer_version = p->version()->str();
    if (p->torch_version()) g.torch_version = p->torch_version()->str();
  }
  if (m->metadata())
    for (const fb::KeyValue* kv : *m->metadata()) g.metadata[kv->key()->str()] = kv->value() ? kv->value()->str() : "";
  const auto* values = m->values();
  const size_t nv = values ? values->size() : 0;
  g.values.resize(nv);
  out.data.resize(nv);
  for (size_t i = 0; i < nv; ++i) {
    const fb::Value* v = values->Get(static_cast<flatbuffers::uoffset_t>(i));
    graph::Value& gv = g.values[i];
    gv.name = v->name()->str();
    const std::string what = str_cat("value ", i, " (\"", gv.name, "\")");
    gv.dtype = dtype_from(v->dtype(), where, what);
    if (static_cast<uint8_t>(v->kind()) > static_cast<uint8_t>(fb::ValueKind::MAX))
      invalid(where, str_cat(what, " has an unknown kind code ", int(static_cast<uint8_t>(v->kind()))));
    gv.kind = static_cast<graph::ValueKind>(v->kind());
    gv.requires_grad = v->requires_grad();
    if (v->shape()) {
      for (const fb::Dim* d : *v->shape()) {
        graph::Dim dim{d->size(), d->symbol() ? d->symbol()->str() : ""};
        if (dim.size < -1 || (dim.size == -1 && dim.symbol.empty()))
          invalid(where, str_cat(what, " has dim ", gv.shape.size(), " of size ", dim.size,
                                 " (expected a size >= 0 or a named symbolic dim)"));
        gv.shape.push_back(std::move(dim));
      }
    }
    const bool stored = gv.kind == graph::ValueKind::Parameter || gv.kind == graph::ValueKind::Buffer ||
                        gv.kind == graph::ValueKind::Constant;
    const fb::Blob* blob = v->data();
    if (!stored) {
      if (blob) invalid(where, str_cat(what, " is of kind ", graph::value_kind_name(gv.kind), " but has stored data"));
      continue;
    }
    if (!blob) invalid(where, str_cat(what, " is a ", graph::value_kind_name(gv.kind), " without data"));
    for (const graph::Dim& d : gv.shape)
      if (d.is_symbolic()) invalid(where, str_cat(what, " has stored data but a symbolic dim \"", d.symbol, "\""));
    const int64_t nbytes = checked_bytes(gv.shape, gv.dtype);
    if (nbytes < 0) invalid(where, str_cat(what, "'s shape overflows: its byte count does not fit in 64 bits"));
    if (blob->size() != static_cast<uint64_t>(nbytes))
      invalid(where, str_cat(what, " holds ", blob->size(), " bytes, but its shape and dtype need ", nbytes));
    if (blob->offset() % kBlobAlignment != 0)
      invalid(where, str_cat(what, "'s data offset ", blob->offset(), " is not ", kBlobAlignment, "-byte aligned"));
    if (blob->offset() > data_size || blob->size() > data_size - blob->offset())
      invalid(where, str_cat(what, "'s data (", blob->size(), " bytes at offset ", blob->offset(),
                             ") reaches past the end of the ", data_size, "-byte data segment"));
    Shape shape;
    for (const graph::Dim& d : gv.shape) shape.push_back(d.size);
    // A view of the mapping: zero-copy; the tensor keeps the mapping alive.
    void* p = const_cast<uint8_t*>(base + data_start + blob->offset());
    out.data[i] = from_blob(p, shape, gv.dtype, Device::cpu(), bytes);
  }
  const auto* ops = m->operators();
  const size_t nops = ops ? ops->size() : 0;
  if (m->nodes()) {
    g.nodes.reserve(m->nodes()->size());
    for (const fb::Node* n : *m->nodes()) {
      graph::Node gn;
      const std::string what = str_cat("node ", g.nodes.size());
      if (n->op() >= nops) invalid(where, str_cat(what, " uses operator ", n->op(), ", out of range (", nops, " operators)"));
      gn.op = ops->Get(n->op())->str();
      if (n->name()) gn.name = n->name()->str();
      if (n->inputs()) gn.inputs.assign(n->inputs()->begin(), n->inputs()->end());
      if (n->outputs()) gn.outputs.assign(n->outputs()->begin(), n->outputs()->end());
      gn.attributes.node = str_cat(what, " (", gn.op, gn.name.empty() ? "" : " \"" + gn.name + "\"", ")");
      if (n->attributes())
        for (const fb::Attribute* a : *n->attributes()) {
          if (gn.attributes.values.count(a->name()->str()))
            invalid(where, str_cat(gn.attributes.node, " repeats the attribute \"", a->name()->str(), "\""));
          gn.attributes.values[a->name()->str()] = attribute_value(*a, str_cat(where, ": ", gn.attributes.node));
        }
      g.nodes.push_back(std::move(gn));
    }
  }
  if (m->inputs()) g.inputs.assign(m->inputs()->begin(), m->inputs()->end());
  if (m->outputs()) g.outputs.assign(m->outputs()->begin(), m->outputs()->end());
  try {
    graph::validate(g);
  } catch (const Error& e) {
    invalid(where, e.what());
  }
  // 4. The checksum of everything before the trailer.
  out.file_size = size;
  out.checksum = read_u64(base + size - kTrailerSize);
  if (options.verify_checksum) {
    const uint64_t actual = content_checksum(base, size - kTrailerSize);
    if (actual != out.checksum)
      invalid(where, str_cat("checksum mismatch (stored ", out.checksum, ", computed ", actual,
                             "): the file is damaged"));
  }
  return out;
}

ModelFile read_model_file(const std::string& path, const ModelFileOptions& options) {
  return read_model(map_file(path), path, options);
}

}  // namespace ember
