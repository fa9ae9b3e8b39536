// A small strict JSON reader for unet/config.json: enough for objects, arrays, strings,
// numbers, booleans and null. Errors carry the byte offset.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace cm4j {

struct JsonValue {
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string string;
  std::vector<JsonValue> array;
  std::vector<std::pair<std::string, JsonValue>> object;  // file order kept for messages

  bool is_null() const { return type == Type::Null; }
  const JsonValue* find(const std::string& key) const;
  // Compact rendering used in error messages ("\"foo\"", "[1, 2]", "null").
  std::string dump() const;
};

// Parses text into *out; returns false with *error = "offset N: reason".
bool parse_json(const std::string& text, JsonValue* out, std::string* error);

}  // namespace cm4j
