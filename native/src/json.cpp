#include "json.h"

#include <cmath>
#include <cstdlib>
#include <sstream>

namespace cm4j {
namespace {

constexpr int kMaxDepth = 64;

class Parser {
 public:
  explicit Parser(const std::string& text) : s_(text) {}

  bool parse(JsonValue* out, std::string* error) {
    if (!value(out, 0) || (skip_ws(), pos_ != s_.size() && fail("trailing characters"))) {
      *error = "offset " + std::to_string(pos_) + ": " + error_;
      return false;
    }
    return true;
  }

 private:
  bool fail(const std::string& why) {
    if (error_.empty()) error_ = why;
    return false;
  }
  void skip_ws() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' ||
                                s_[pos_] == '\t'))
      ++pos_;
  }
  bool literal(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (s_.compare(pos_, n, word) != 0) return fail("invalid literal");
    pos_ += n;
    return true;
  }

  bool value(JsonValue* v, int depth) {
    if (depth > kMaxDepth) return fail("nesting deeper than 64");
    skip_ws();
    if (pos_ >= s_.size()) return fail("unexpected end of input");
    char c = s_[pos_];
    if (c == '{') return object(v, depth);
    if (c == '[') return array(v, depth);
    if (c == '"') {
      v->type = JsonValue::Type::String;
      return string(&v->string);
    }
    if (c == 't') { v->type = JsonValue::Type::Bool; v->boolean = true; return literal("true"); }
    if (c == 'f') { v->type = JsonValue::Type::Bool; v->boolean = false; return literal("false"); }
    if (c == 'n') { v->type = JsonValue::Type::Null; return literal("null"); }
    if (c == '-' || (c >= '0' && c <= '9')) return number(v);
    return fail(std::string("unexpected character '") + c + "'");
  }

  bool number(JsonValue* v) {
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    double d = std::strtod(begin, &end);
    if (end == begin || !std::isfinite(d)) return fail("invalid number");
    pos_ += static_cast<size_t>(end - begin);
    v->type = JsonValue::Type::Number;
    v->number = d;
    return true;
  }

  bool string(std::string* out) {
    ++pos_;  // opening quote
    while (pos_ < s_.size()) {
      char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': out->push_back(e); break;
        case 'b': out->push_back('\b'); break;
        case 'f': out->push_back('\f'); break;
        case 'n': out->push_back('\n'); break;
        case 'r': out->push_back('\r'); break;
        case 't': out->push_back('\t'); break;
        case 'u': {
          if (pos_ + 4 > s_.size()) return fail("truncated \\u escape");
          unsigned cp = std::strtoul(s_.substr(pos_, 4).c_str(), nullptr, 16);
          pos_ += 4;
          // Config keys are ASCII; other code points are kept as UTF-8 without surrogate pairing.
          if (cp < 0x80) {
            out->push_back(static_cast<char>(cp));
          } else if (cp < 0x800) {
            out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          } else {
            out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
            out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
            out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
          }
          break;
        }
        default: return fail("invalid escape");
      }
    }
    return fail("unterminated string");
  }

  bool array(JsonValue* v, int depth) {
    v->type = JsonValue::Type::Array;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == ']') { ++pos_; return true; }
    while (true) {
      v->array.emplace_back();
      if (!value(&v->array.back(), depth + 1)) return false;
      skip_ws();
      if (pos_ >= s_.size()) return fail("unterminated array");
      char c = s_[pos_++];
      if (c == ']') return true;
      if (c != ',') return fail("expected ',' or ']' in array");
    }
  }

  bool object(JsonValue* v, int depth) {
    v->type = JsonValue::Type::Object;
    ++pos_;
    skip_ws();
    if (pos_ < s_.size() && s_[pos_] == '}') { ++pos_; return true; }
    while (true) {
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_] != '"') return fail("expected a string key");
      std::string key;
      if (!string(&key)) return false;
      if (v->find(key)) return fail("duplicate key \"" + key + "\"");
      skip_ws();
      if (pos_ >= s_.size() || s_[pos_++] != ':') return fail("expected ':' after key");
      v->object.emplace_back(key, JsonValue());
      if (!value(&v->object.back().second, depth + 1)) return false;
      skip_ws();
      if (pos_ >= s_.size()) return fail("unterminated object");
      char c = s_[pos_++];
      if (c == '}') return true;
      if (c != ',') return fail("expected ',' or '}' in object");
    }
  }

  const std::string& s_;
  size_t pos_ = 0;
  std::string error_;
};

}  // namespace

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& kv : object)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

std::string JsonValue::dump() const {
  std::ostringstream os;
  switch (type) {
    case Type::Null: os << "null"; break;
    case Type::Bool: os << (boolean ? "true" : "false"); break;
    case Type::Number: os << number; break;
    case Type::String: os << '"' << string << '"'; break;
    case Type::Array:
      os << '[';
      for (size_t i = 0; i < array.size(); ++i) os << (i ? ", " : "") << array[i].dump();
      os << ']';
      break;
    case Type::Object:
      os << '{';
      for (size_t i = 0; i < object.size(); ++i)
        os << (i ? ", " : "") << '"' << object[i].first << "\": " << object[i].second.dump();
      os << '}';
      break;
  }
  return os.str();
}

bool parse_json(const std::string& text, JsonValue* out, std::string* error) {
  *out = JsonValue();
  return Parser(text).parse(out, error);
}

}  // namespace cm4j
