// A string as a JSON string literal: the quotes, backslashes and control characters escaped.
// For the few JSON texts ember writes by hand (safetensors headers, `ember bench --json`).
#pragma once

#include <cstdio>
#include <string>

namespace ember {

inline std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}

}  // namespace ember
