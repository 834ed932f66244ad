#include "serialization/npy.h"

#include <cstring>
#include <fstream>
#include <regex>

#include "ops/creation.h"
#include "runtime/error.h"
#include "serialization/atomic_file.h"

namespace ember {

namespace {

DType dtype_from_descr(const std::string& descr, const std::string& path) {
  // '|u1', '<i8', '<f4', ...: byte order, kind, size.
  static const std::pair<const char*, DType> known[] = {
      {"|u1", kUInt8}, {"|i1", kInt8}, {"|b1", kBool}, {"<i4", kInt32},   {"<i8", kInt64},
      {"<f2", kFloat16}, {"<f4", kFloat32}, {"<f8", kFloat64}, {"<u1", kUInt8}, {"<i1", kInt8}};
  for (const auto& [name, dtype] : known)
    if (descr == name) return dtype;
  throw_error(ErrorCode::InvalidModel, str_cat("[load_npy] ", path, ": unsupported dtype '", descr,
                                               "' (expected little-endian bool, uint8, int8, int32, int64, "
                                               "float16, float32 or float64)"));
}

}  // namespace

Tensor load_npy(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  EMBER_CHECK(f.good(), Io, "[load_npy] cannot open ", path);
  f.seekg(0, std::ios::end);
  const auto file_size = static_cast<uint64_t>(f.tellg());
  f.seekg(0);
  char magic[8] = {};
  f.read(magic, 8);
  EMBER_CHECK(f.good() && std::memcmp(magic, "\x93NUMPY", 6) == 0, InvalidModel, "[load_npy] ", path,
              ": not a .npy file (bad magic)");
  const int major = static_cast<unsigned char>(magic[6]);
  EMBER_CHECK(major >= 1 && major <= 3, InvalidModel, "[load_npy] ", path, ": unsupported format version ", major);
  uint32_t header_len = 0;
  unsigned char len_bytes[4] = {};
  f.read(reinterpret_cast<char*>(len_bytes), major == 1 ? 2 : 4);
  header_len = len_bytes[0] | (len_bytes[1] << 8) | (major == 1 ? 0u : (len_bytes[2] << 16 | uint32_t(len_bytes[3]) << 24));
  const uint64_t data_start = (major == 1 ? 10 : 12) + uint64_t{header_len};
  EMBER_CHECK(f.good() && data_start <= file_size, InvalidModel, "[load_npy] ", path, ": header of ", header_len,
              " bytes runs past the end of the file");
  std::string header(header_len, '\0');
  f.read(header.data(), header_len);

  std::smatch m;
  EMBER_CHECK(std::regex_search(header, m, std::regex(R"('descr'\s*:\s*'([^']*)')")), InvalidModel, "[load_npy] ",
              path, ": header has no 'descr'");
  DType dtype = dtype_from_descr(m[1], path);
  EMBER_CHECK(std::regex_search(header, m, std::regex(R"('fortran_order'\s*:\s*(True|False))")), InvalidModel,
              "[load_npy] ", path, ": header has no 'fortran_order'");
  EMBER_CHECK(m[1] == "False", InvalidModel, "[load_npy] ", path, ": Fortran-ordered arrays are not supported");
  EMBER_CHECK(std::regex_search(header, m, std::regex(R"('shape'\s*:\s*\(([^)]*)\))")), InvalidModel,
              "[load_npy] ", path, ": header has no 'shape'");
  Shape shape;
  const std::string dims = m[1];
  static const std::regex number(R"(\d+)");
  std::sregex_iterator it(dims.begin(), dims.end(), number), end;
  uint64_t numel = 1;
  for (; it != end; ++it) {
    const std::string digits = it->str();
    EMBER_CHECK(digits.size() <= 18, InvalidModel, "[load_npy] ", path, ": dimension ", digits, " is too large");
    const int64_t d = std::stoll(digits);
    EMBER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(d), &numel), InvalidModel, "[load_npy] ", path,
                ": the shape's element count overflows");
    shape.push_back(d);
  }
  uint64_t nbytes = 0;
  EMBER_CHECK(!__builtin_mul_overflow(numel, static_cast<uint64_t>(itemsize(dtype)), &nbytes) &&
                  nbytes == file_size - data_start,
              InvalidModel, "[load_npy] ", path, ": shape ", shape_str(shape), " of ", dtype, " needs ", nbytes,
              " bytes of data but the file holds ", file_size - data_start);
  Tensor t = empty(shape, {dtype, Device::cpu()});
  f.read(static_cast<char*>(t.data()), static_cast<std::streamsize>(nbytes));
  EMBER_CHECK(f.good() || nbytes == 0, Io, "[load_npy] ", path, ": read failed");
  return t;
}

}  // namespace ember

namespace ember {

void save_npy(const std::string& path, const Tensor& t) {
  static const std::pair<DType, const char*> descr[] = {{kBool, "|b1"},   {kUInt8, "|u1"},   {kInt8, "|i1"},
                                                        {kInt32, "<i4"},  {kInt64, "<i8"},   {kFloat16, "<f2"},
                                                        {kFloat32, "<f4"}, {kFloat64, "<f8"}};
  const char* d = nullptr;
  for (const auto& [dtype, name] : descr)
    if (dtype == t.dtype()) d = name;
  EMBER_CHECK(d != nullptr, Unsupported, "[save_npy] NumPy has no dtype for ", t.dtype(), "; convert to float32 first");
  Tensor c = t.detach().to(Device::cpu()).contiguous();
  std::string shape = "(";
  for (int64_t s : c.sizes()) shape.append(std::to_string(s)).append(",");
  if (c.dim() > 1) shape.pop_back();
  shape += ")";
  std::string header = "{'descr': '";
  header.append(d).append("', 'fortran_order': False, 'shape': ").append(shape).append(", }");
  // Magic (6) + version (2) + length (2) + header + '\n', padded with spaces to 64 bytes.
  const size_t total = (10 + header.size() + 1 + 63) / 64 * 64;
  header.append(total - 10 - header.size() - 1, ' ').append("\n");
  const uint16_t length = static_cast<uint16_t>(header.size());
  AtomicFile file(path);
  file.write("\x93NUMPY\x01\x00", 8);
  file.write(&length, 2);
  file.write(header);
  file.write(c.data(), c.nbytes());
  file.commit();
}

}  // namespace ember
