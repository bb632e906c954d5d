// Lexer, parser, type checker, printer and evaluators of targeting expressions.
#include "trafficsplit/targeting/targeting.hpp"

#include <re2/re2.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstring>
#include <deque>
#include <limits>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "arrow/read.hpp"
#include "hashing/hash_impl.hpp"
#include "trafficsplit/errors.hpp"

namespace trafficsplit::targeting {

// The comparison kernels are compiled for AVX-512, AVX2 and the baseline, picked at load time
// (GCC function multi-versioning): packing 8-byte comparisons into bytes is what the wider
// registers speed up, and the build stays portable.
#if defined(__GNUC__) && defined(__x86_64__) && !defined(__clang__)
#define TRAFFICSPLIT_MULTIVERSION \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define TRAFFICSPLIT_MULTIVERSION
#endif

namespace {

// ---------------------------------------------------------------------------------------
// Tokens

enum class Tok : uint8_t {
  end,
  ident,
  backquoted,
  string,
  integer,
  real,
  lparen,
  rparen,
  lbracket,
  rbracket,
  comma,
  dot,
  eq,
  ne,
  lt,
  le,
  gt,
  ge,
  amp,
  pipe,
  tilde,
  minus,
  list_ref
};

struct Token {
  Tok kind = Tok::end;
  size_t pos = 0;  // byte offset
  size_t len = 0;
  std::string text;  // identifier, decoded string, or number text
};

const std::unordered_set<std::string>& keywords() {
  static const std::unordered_set<std::string> k{"and",  "or",    "not",  "in",    "is",  "null",
                                                 "true", "false", "True", "False", "None"};
  return k;
}

// Builds a SyntaxError at a byte offset, with line/column in characters and a caret excerpt.
[[noreturn]] void fail(const std::string& source, size_t pos, const std::string& what,
                       const std::string& expected) {
  pos = std::min(pos, source.size());
  size_t line = 1, line_start = 0;
  for (size_t i = 0; i < pos; ++i) {
    if (source[i] == '\n') {
      ++line;
      line_start = i + 1;
    }
  }
  size_t column = 1;
  for (size_t i = line_start; i < pos; ++i) {
    if ((static_cast<unsigned char>(source[i]) & 0xC0) != 0x80) ++column;
  }
  size_t line_end = source.find('\n', line_start);
  if (line_end == std::string::npos) line_end = source.size();
  std::string text = source.substr(line_start, line_end - line_start);
  size_t caret = column - 1;
  if (text.size() > 160) {  // keep excerpts readable for long expressions
    size_t from = pos - line_start > 60 ? pos - line_start - 60 : 0;
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    size_t to = std::min(text.size(), from + 140);
    while (to < text.size() && (static_cast<unsigned char>(text[to]) & 0xC0) == 0x80) ++to;
    caret = 0;
    for (size_t i = from; i < pos - line_start; ++i) {
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++caret;
    }
    text = (from > 0 ? "..." : "") + text.substr(from, to - from) + (to < text.size() ? "..." : "");
    if (from > 0) caret += 3;
  }
  std::string excerpt = "  " + text + "\n  " + std::string(caret, ' ') + "^";
  std::string message = "targeting: " + what + " at line " + std::to_string(line) + ", column " +
                        std::to_string(column) + "\n" + excerpt;
  throw SyntaxError(message, line, column, expected, excerpt);
}

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::vector<Token> lex(const std::string& src) {
  std::vector<Token> out;
  size_t i = 0;
  const size_t n = src.size();
  auto is_ident_start = [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
  };
  auto is_ident = [&](char c) { return is_ident_start(c) || (c >= '0' && c <= '9'); };
  while (true) {
    while (i < n &&
           (src[i] == ' ' || src[i] == '\t' || src[i] == '\n' || src[i] == '\r' || src[i] == '#')) {
      if (src[i] == '#') {
        while (i < n && src[i] != '\n') ++i;
      } else {
        ++i;
      }
    }
    Token t;
    t.pos = i;
    if (i >= n) {
      t.kind = Tok::end;
      out.push_back(t);
      return out;
    }
    const char c = src[i];
    if (is_ident_start(c)) {
      size_t j = i;
      while (j < n && is_ident(src[j])) ++j;
      t.kind = Tok::ident;
      t.text = src.substr(i, j - i);
      i = j;
    } else if (c >= '0' && c <= '9') {
      size_t j = i;
      while (j < n && src[j] >= '0' && src[j] <= '9') ++j;
      bool real = false;
      if (j < n && src[j] == '.' && j + 1 < n && src[j + 1] >= '0' && src[j + 1] <= '9') {
        real = true;
        ++j;
        while (j < n && src[j] >= '0' && src[j] <= '9') ++j;
      }
      if (j < n && (src[j] == 'e' || src[j] == 'E')) {
        size_t k = j + 1;
        if (k < n && (src[k] == '+' || src[k] == '-')) ++k;
        if (k < n && src[k] >= '0' && src[k] <= '9') {
          real = true;
          j = k;
          while (j < n && src[j] >= '0' && src[j] <= '9') ++j;
        }
      }
      if (j < n && is_ident(src[j])) {
        fail(src, j, "unexpected character '" + std::string(1, src[j]) + "' in a number",
             "a digit, an operator or a space");
      }
      t.kind = real ? Tok::real : Tok::integer;
      t.text = src.substr(i, j - i);
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      std::string text;
      while (true) {
        if (j >= n || src[j] == '\n') fail(src, i, "unterminated string", std::string(1, c));
        const char d = src[j];
        if (d == c) {
          ++j;
          break;
        }
        if (d == '\\') {
          if (j + 1 >= n) fail(src, j, "unterminated string", std::string(1, c));
          const char e = src[j + 1];
          j += 2;
          switch (e) {
            case '\\':
            case '"':
            case '\'':
              text += e;
              break;
            case 'n':
              text += '\n';
              break;
            case 't':
              text += '\t';
              break;
            case 'r':
              text += '\r';
              break;
            case '0':
              text += '\0';
              break;
            case 'u':
            case 'U': {
              const size_t digits = e == 'u' ? 4 : 8;
              if (j + digits > n) fail(src, j - 2, "bad escape", "\\u and 4 hex digits");
              uint32_t cp = 0;
              for (size_t k = 0; k < digits; ++k) {
                const char h = src[j + k];
                int v = -1;
                if (h >= '0' && h <= '9') v = h - '0';
                if (h >= 'a' && h <= 'f') v = h - 'a' + 10;
                if (h >= 'A' && h <= 'F') v = h - 'A' + 10;
                if (v < 0) {
                  fail(src, j - 2, "bad escape",
                       e == 'u' ? "\\u and 4 hex digits" : "\\U and 8 hex digits");
                }
                cp = cp * 16 + static_cast<uint32_t>(v);
              }
              if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                fail(src, j - 2, "escape is not a Unicode scalar value", "a code point");
              }
              append_utf8(text, cp);
              j += digits;
              break;
            }
            default:
              // Unknown escapes keep the backslash, as in Python (regex patterns need them).
              text += '\\';
              text += e;
          }
          continue;
        }
        text += d;
        ++j;
      }
      t.kind = Tok::string;
      t.text = text;
      i = j;
    } else if (c == '@') {
      size_t j = i + 1;
      while (j < n && is_ident(src[j])) ++j;
      if (j == i + 1 || !is_ident_start(src[i + 1])) {
        fail(src, i, "expected a list name after '@'", "a name such as @vip_users");
      }
      t.kind = Tok::list_ref;
      t.text = src.substr(i + 1, j - i - 1);
      i = j;
    } else if (c == '`') {
      const size_t close = src.find('`', i + 1);
      if (close == std::string::npos) fail(src, i, "unterminated backquoted name", "'`'");
      if (close == i + 1) fail(src, i, "empty backquoted name", "a name between backquotes");
      t.kind = Tok::backquoted;
      t.text = src.substr(i + 1, close - i - 1);
      i = close + 1;
    } else {
      const char d = i + 1 < n ? src[i + 1] : '\0';
      size_t width = 1;
      switch (c) {
        case '(':
          t.kind = Tok::lparen;
          break;
        case ')':
          t.kind = Tok::rparen;
          break;
        case '[':
          t.kind = Tok::lbracket;
          break;
        case ']':
          t.kind = Tok::rbracket;
          break;
        case ',':
          t.kind = Tok::comma;
          break;
        case '.':
          t.kind = Tok::dot;
          break;
        case '&':
          t.kind = Tok::amp;
          width = d == '&' ? 2 : 1;
          break;
        case '|':
          t.kind = Tok::pipe;
          width = d == '|' ? 2 : 1;
          break;
        case '~':
          t.kind = Tok::tilde;
          break;
        case '-':
          t.kind = Tok::minus;
          break;
        case '=':
          if (d != '=') fail(src, i, "'=' is assignment; compare with '=='", "'=='");
          t.kind = Tok::eq;
          width = 2;
          break;
        case '!':
          if (d != '=') fail(src, i, "unexpected '!'; negate with 'not'", "'!=' or 'not'");
          t.kind = Tok::ne;
          width = 2;
          break;
        case '<':
          t.kind = d == '=' ? Tok::le : Tok::lt;
          width = d == '=' ? 2 : 1;
          break;
        case '>':
          t.kind = d == '=' ? Tok::ge : Tok::gt;
          width = d == '=' ? 2 : 1;
          break;
        default: {
          size_t w = 1;
          const auto u = static_cast<unsigned char>(c);
          if (u >= 0xC0) {
            while (i + w < n && (static_cast<unsigned char>(src[i + w]) & 0xC0) == 0x80) ++w;
          }
          fail(src, i, "unexpected character '" + src.substr(i, w) + "'",
               "a name, a literal, an operator or a parenthesis");
        }
      }
      i += width;
    }
    t.len = i - t.pos;
    out.push_back(std::move(t));
  }
}

// ---------------------------------------------------------------------------------------
// The program

enum class Kind : uint8_t { any, all, negate, compare, in_list, is_null, call, attribute, literal };
enum class Fn : uint8_t {
  lower,
  upper,
  len,
  startswith,
  endswith,
  contains,
  matches,
  semver,
  hour,
  weekday,
  between
};
enum class SType : uint8_t { boolean, number, string, version, timestamp, null, dynamic };

const char* stype_name(SType t) {
  switch (t) {
    case SType::boolean:
      return "a bool";
    case SType::number:
      return "a number";
    case SType::string:
      return "a string";
    case SType::version:
      return "a version";
    case SType::timestamp:
      return "a timestamp";
    case SType::null:
      return "null";
    case SType::dynamic:
      return "an attribute";
  }
  return "?";
}

struct FnInfo {
  const char* name;
  Fn fn;
  size_t arity;
};

const FnInfo kFunctions[] = {
    {"between", Fn::between, 3}, {"contains", Fn::contains, 2}, {"endswith", Fn::endswith, 2},
    {"hour", Fn::hour, 1},       {"len", Fn::len, 1},           {"lower", Fn::lower, 1},
    {"matches", Fn::matches, 2}, {"semver", Fn::semver, 1},     {"startswith", Fn::startswith, 2},
    {"upper", Fn::upper, 1},     {"weekday", Fn::weekday, 1},
};

// Open-addressing set of strings (views into the program's literal storage), hashed with
// XXH3: a lookup is one hash and usually one probe, with no allocation.
class StringSet {
 public:
  void insert(std::string_view s) {
    if (contains(s)) return;
    if ((size_ + 1) * 2 > slots_.size()) grow();
    place(s, detail::xxh3_inline(s.data(), s.size(), 0));
    ++size_;
  }
  bool contains(std::string_view s) const {
    if (size_ == 0) return false;
    const uint64_t h = detail::xxh3_inline(s.data(), s.size(), 0);
    // Most rows are misses: a bit filter (16 bits per item) answers them without probing,
    // which keeps the branch predictable.
    const uint64_t bit = (h >> 32) & filter_mask_;
    if (!((filter_[bit >> 6] >> (bit & 63)) & 1)) return false;
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& slot = slots_[i];
      if (!slot.used) return false;
      if (slot.hash == h && slot.text == s) return true;
    }
  }
  size_t size() const { return size_; }

 private:
  struct Slot {
    uint64_t hash = 0;
    std::string_view text;
    bool used = false;
  };
  std::vector<Slot> slots_;
  std::vector<uint64_t> filter_;
  size_t size_ = 0, mask_ = 0;
  uint64_t filter_mask_ = 0;

  void place(std::string_view s, uint64_t h) {
    size_t i = h & mask_;
    while (slots_[i].used) i = (i + 1) & mask_;
    slots_[i] = Slot{h, s, true};
    const uint64_t bit = (h >> 32) & filter_mask_;
    filter_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }
  void grow() {
    std::vector<Slot> old = std::move(slots_);
    slots_.assign(std::max<size_t>(16, old.size() * 2), Slot{});
    mask_ = slots_.size() - 1;
    filter_.assign(std::max<size_t>(1, slots_.size() * 8 / 64), 0);  // 16 bits per item
    filter_mask_ = filter_.size() * 64 - 1;
    for (const Slot& slot : old) {
      if (slot.used) place(slot.text, slot.hash);
    }
  }
};

// `x in [...]` membership: hashed per type; items of other types make a miss unknown.
struct InSet {
  StringSet strings;
  std::unordered_set<int64_t> integers;
  std::unordered_set<double> reals;  // non-integral or beyond int64
  std::vector<Version> versions;
  bool has_true = false, has_false = false, has_null = false;
  size_t string_items = 0, number_items = 0, bool_items = 0, total = 0;

  Truth contains(const Value& v) const {
    if (v.is_null()) return kUnknown;
    bool found = false;
    size_t same_type = 0;
    switch (v.type) {
      case ValueType::string:
        found = strings.contains(v.text);
        same_type = string_items;
        if (!found && !versions.empty()) {
          Version parsed;
          if (parse_semver(v.text, parsed)) {
            for (const auto& x : versions) found |= compare_semver(parsed, x) == 0;
          }
        }
        break;
      case ValueType::integer:  // `reals` holds no integral value below 2^63: ints match only here
        found = integers.count(v.integer) > 0;
        same_type = number_items;
        break;
      case ValueType::real: {
        const double d = v.real;
        if (d == std::floor(d) && d >= -9.2233720368547758e18 && d < 9.2233720368547758e18) {
          found = integers.count(static_cast<int64_t>(d)) > 0;
        }
        found = found || reals.count(d) > 0;
        same_type = number_items;
        break;
      }
      case ValueType::boolean:
        found = v.boolean ? has_true : has_false;
        same_type = bool_items;
        break;
      case ValueType::version:
        for (const auto& x : versions) found |= compare_semver(v.version, x) == 0;
        same_type = versions.size();
        break;
      default:
        break;
    }
    if (found) return kTrue;
    return same_type == total && !has_null ? kFalse : kUnknown;
  }
};

struct Node {
  Kind kind = Kind::literal;
  size_t pos = 0;
  std::vector<size_t> kids;
  CompareOp op = CompareOp::eq;
  bool negated = false;  // is not null, not in
  size_t slot = 0;
  Value literal;
  Fn fn = Fn::lower;
  std::shared_ptr<RE2> regex;
  std::shared_ptr<InSet> set;
  std::vector<Value> list_items;  // for printing
  std::string list_name;          // `in @name`
  SType stype = SType::dynamic;
  bool is_literal = false;
};

}  // namespace

class Program {
 public:
  std::string source;
  std::vector<Node> nodes;
  size_t root = 0;
  std::vector<std::string> attributes;
  std::vector<std::vector<std::string>> paths;
  std::deque<std::string> strings;  // literal storage (stable addresses)
  NamedLists lists;                 // `@name` lists, their strings kept in `strings`
  // Per node: the one attribute slot its subtree reads, -1 for none, -2 for several.
  std::vector<int64_t> single_slot;

  void analyse() {
    single_slot.assign(nodes.size(), -1);
    for (size_t id = 0; id < nodes.size(); ++id) {  // children precede their parents
      const auto& n = nodes[id];
      int64_t slot = n.kind == Kind::attribute ? static_cast<int64_t>(n.slot) : -1;
      for (size_t k : n.kids) {
        const int64_t ks = single_slot[k];
        if (ks == -1) continue;
        slot = (slot == -1 || slot == ks) ? ks : -2;
      }
      single_slot[id] = slot;
    }
  }

  std::string_view keep(std::string s) {
    strings.push_back(std::move(s));
    return strings.back();
  }
};

namespace {

class Parser {
 public:
  Parser(Program& p, std::vector<Token> tokens) : p_(p), toks_(std::move(tokens)) {}

  size_t parse() {
    const size_t root = parse_or(0);
    if (peek().kind != Tok::end) {
      const Token& t = peek();
      std::string what = "unexpected " + token_text(t);
      if (t.kind == Tok::ident && !keywords().count(t.text)) {
        what += "; join conditions with 'and' or 'or'";
      }
      fail(p_.source, t.pos, what, "'and', 'or' or the end of the expression");
    }
    require_condition(root, "the expression");
    return root;
  }

 private:
  Program& p_;
  std::vector<Token> toks_;
  size_t at_ = 0;

  const Token& peek(size_t ahead = 0) const {
    return toks_[std::min(at_ + ahead, toks_.size() - 1)];
  }
  const Token& next() { return toks_[at_ < toks_.size() - 1 ? at_++ : at_]; }
  bool is_word(const Token& t, const char* w) const { return t.kind == Tok::ident && t.text == w; }

  std::string token_text(const Token& t) const {
    if (t.kind == Tok::end) return "end of expression";
    return "'" + p_.source.substr(t.pos, std::min<size_t>(t.len, 40)) + "'";
  }

  [[noreturn]] void expected(const std::string& what, const std::string& after) {
    const Token& t = peek();
    std::string message = "expected " + what;
    if (!after.empty()) message += " after " + after;
    if (t.kind == Tok::end) {
      message += ", found the end of the expression";
    } else {
      message += ", found " + token_text(t);
    }
    fail(p_.source, t.pos, message, what);
  }

  size_t add(Node n) {
    p_.nodes.push_back(std::move(n));
    return p_.nodes.size() - 1;
  }

  void check_depth(size_t depth) {
    if (depth > kMaxDepth) {
      fail(p_.source, peek().pos, "nesting is deeper than " + std::to_string(kMaxDepth) + " levels",
           "a flatter expression");
    }
  }

  void require_condition(size_t id, const std::string& where) {
    const Node& n = p_.nodes[id];
    if (n.stype == SType::boolean || n.stype == SType::dynamic) return;
    fail(p_.source, n.pos,
         where + " must be a condition (a comparison, a bool function or a bool attribute), not " +
             stype_name(n.stype),
         "a condition");
  }

  size_t parse_or(size_t depth) {
    check_depth(depth);
    size_t left = parse_and(depth);
    if (!(is_word(peek(), "or") || peek().kind == Tok::pipe)) return left;
    Node n;
    n.kind = Kind::any;
    n.pos = p_.nodes[left].pos;
    n.stype = SType::boolean;
    require_condition(left, "the left side of 'or'");
    n.kids.push_back(left);
    while (is_word(peek(), "or") || peek().kind == Tok::pipe) {
      const std::string op = token_text(next());
      if (peek().kind == Tok::end) expected("a condition", op);
      const size_t right = parse_and(depth);
      require_condition(right, "the right side of " + op);
      n.kids.push_back(right);
    }
    return add(std::move(n));
  }

  size_t parse_and(size_t depth) {
    size_t left = parse_not(depth);
    if (!(is_word(peek(), "and") || peek().kind == Tok::amp)) return left;
    Node n;
    n.kind = Kind::all;
    n.pos = p_.nodes[left].pos;
    n.stype = SType::boolean;
    require_condition(left, "the left side of 'and'");
    n.kids.push_back(left);
    while (is_word(peek(), "and") || peek().kind == Tok::amp) {
      const std::string op = token_text(next());
      if (peek().kind == Tok::end) expected("a condition", op);
      const size_t right = parse_not(depth);
      require_condition(right, "the right side of " + op);
      n.kids.push_back(right);
    }
    return add(std::move(n));
  }

  size_t parse_not(size_t depth) {
    if ((is_word(peek(), "not") && !is_word(peek(1), "in")) || peek().kind == Tok::tilde) {
      check_depth(depth + 1);
      const Token& t = next();
      const std::string op = token_text(t);
      if (peek().kind == Tok::end) expected("a condition", op);
      const size_t inner = parse_not(depth + 1);
      require_condition(inner, "the operand of " + op);
      Node n;
      n.kind = Kind::negate;
      n.pos = t.pos;
      n.stype = SType::boolean;
      n.kids.push_back(inner);
      return add(std::move(n));
    }
    return parse_comparison(depth);
  }

  static bool comparable(SType a, SType b) {
    if (a == SType::dynamic || b == SType::dynamic) return true;
    if (a == b) return true;
    return (a == SType::version && b == SType::string) ||
           (a == SType::string && b == SType::version);
  }

  // A string literal compared with a version becomes a version literal (checked now).
  void versionise(size_t literal_id, size_t other_id) {
    Node& lit = p_.nodes[literal_id];
    if (!(lit.is_literal && lit.stype == SType::string &&
          p_.nodes[other_id].stype == SType::version)) {
      return;
    }
    Version v;
    if (!parse_semver(lit.literal.text, v)) {
      fail(
          p_.source, lit.pos,
          "\"" + std::string(lit.literal.text) + "\" is not a semantic version (MAJOR.MINOR.PATCH)",
          "a version such as \"2.3.0\"");
    }
    lit.literal.type = ValueType::version;
    lit.literal.version = v;
    lit.stype = SType::version;
  }

  size_t parse_comparison(size_t depth) {
    const size_t left = parse_operand(depth);
    const Token& t = peek();
    CompareOp op;
    switch (t.kind) {
      case Tok::eq:
        op = CompareOp::eq;
        break;
      case Tok::ne:
        op = CompareOp::ne;
        break;
      case Tok::lt:
        op = CompareOp::lt;
        break;
      case Tok::le:
        op = CompareOp::le;
        break;
      case Tok::gt:
        op = CompareOp::gt;
        break;
      case Tok::ge:
        op = CompareOp::ge;
        break;
      default:
        if (is_word(t, "in") || (is_word(t, "not") && is_word(peek(1), "in"))) {
          return parse_in(left, depth);
        }
        if (is_word(t, "is")) return parse_is(left);
        return left;
    }
    const Token op_token = next();
    const std::string op_text = token_text(op_token);
    if (peek().kind == Tok::end) expected("an operand", op_text);
    const size_t right = parse_operand(depth);
    const SType ls = p_.nodes[left].stype, rs = p_.nodes[right].stype;
    if (ls == SType::null || rs == SType::null) {
      fail(p_.source, op_token.pos,
           std::string("comparing with null is always unknown; use 'is null' or 'is not null'"),
           "'is null'");
    }
    if (!comparable(ls, rs)) {
      fail(p_.source, op_token.pos,
           std::string("cannot compare ") + stype_name(ls) + " with " + stype_name(rs),
           "operands of one type");
    }
    if (ls == SType::boolean && rs == SType::boolean && op != CompareOp::eq &&
        op != CompareOp::ne) {
      fail(p_.source, op_token.pos, "bools can only be compared with == and !=", "'==' or '!='");
    }
    versionise(left, right);
    versionise(right, left);
    const Token& after = peek();
    if (after.kind >= Tok::eq && after.kind <= Tok::ge) {
      fail(p_.source, after.pos, "comparisons do not chain; join them with 'and'",
           "'and', 'or' or ')'");
    }
    Node n;
    n.kind = Kind::compare;
    n.op = op;
    n.pos = p_.nodes[left].pos;
    n.stype = SType::boolean;
    n.kids = {left, right};
    return add(std::move(n));
  }

  size_t parse_is(size_t left) {
    next();  // is
    bool negated = false;
    if (is_word(peek(), "not")) {
      next();
      negated = true;
    }
    const Token& t = peek();
    if (!(is_word(t, "null") || is_word(t, "None"))) {
      expected("'null'", negated ? "'is not'" : "'is'");
    }
    next();
    Node n;
    n.kind = Kind::is_null;
    n.negated = negated;
    n.pos = p_.nodes[left].pos;
    n.stype = SType::boolean;
    n.kids.push_back(left);
    return add(std::move(n));
  }

  Value parse_literal_value(const Token& t, bool negative, SType& stype) {
    if (t.kind == Tok::string) {
      stype = SType::string;
      return Value::of_string(p_.keep(t.text));
    }
    if (t.kind == Tok::integer) {
      stype = SType::number;
      const std::string text = (negative ? "-" : "") + t.text;
      int64_t v = 0;
      const auto r = std::from_chars(text.data(), text.data() + text.size(), v);
      if (r.ec == std::errc() && r.ptr == text.data() + text.size()) return Value::of_int(v);
      return Value::of_real(std::strtod(text.c_str(), nullptr));  // beyond 64 bits
    }
    if (t.kind == Tok::real) {
      stype = SType::number;
      const double d = std::strtod(t.text.c_str(), nullptr);
      if (!std::isfinite(d)) fail(p_.source, t.pos, "number out of range", "a finite number");
      return Value::of_real(negative ? -d : d);
    }
    if (t.kind == Tok::ident) {
      if (t.text == "true" || t.text == "True") {
        stype = SType::boolean;
        return Value::of_bool(true);
      }
      if (t.text == "false" || t.text == "False") {
        stype = SType::boolean;
        return Value::of_bool(false);
      }
      if (t.text == "null" || t.text == "None") {
        stype = SType::null;
        return Value::null();
      }
    }
    fail(p_.source, t.pos,
         "expected a literal (string, number, true, false or null), found " + token_text(t),
         "a literal");
  }

  size_t parse_in(size_t left, size_t depth) {
    (void)depth;
    const bool negated = is_word(peek(), "not");
    if (negated) next();
    const Token in_token = next();  // in
    const std::vector<Value>* named = nullptr;
    if (peek().kind == Tok::list_ref) {
      const Token ref = next();
      for (const auto& [name, items] : p_.lists) {
        if (name == ref.text) named = &items;
      }
      if (named == nullptr) {
        std::string known;
        for (const auto& entry : p_.lists)
          known += std::string(known.empty() ? "" : ", ") + "@" + entry.first;
        fail(p_.source, ref.pos, "unknown list '@" + ref.text + "'",
             known.empty() ? "a list passed with lists={...}" : "one of " + known);
      }
    } else if (peek().kind != Tok::lbracket) {
      expected("a list such as [\"a\", \"b\"] or @name", negated ? "'not in'" : "'in'");
    }
    const size_t open = named != nullptr ? in_token.pos : next().pos;
    size_t named_at = 0;
    auto set = std::make_shared<InSet>();
    Node n;
    n.kind = Kind::in_list;
    n.negated = negated;
    n.pos = p_.nodes[left].pos;
    n.stype = SType::boolean;
    n.kids.push_back(left);
    const SType ls = p_.nodes[left].stype;
    bool any_comparable = false;
    while (named != nullptr ? named_at < named->size() : peek().kind != Tok::rbracket) {
      Token item;
      SType st = SType::null;
      Value v;
      if (named != nullptr) {
        item.pos = in_token.pos;
        v = (*named)[named_at++];
        switch (v.type) {
          case ValueType::string:
            st = SType::string;
            break;
          case ValueType::integer:
          case ValueType::real:
            st = SType::number;
            break;
          case ValueType::boolean:
            st = SType::boolean;
            break;
          default:
            st = SType::null;
        }
      } else {
        if (peek().kind == Tok::end) fail(p_.source, open, "unclosed '['", "']'");
        bool negative = false;
        if (peek().kind == Tok::minus) {
          next();
          negative = true;
          if (peek().kind != Tok::integer && peek().kind != Tok::real) expected("a number", "'-'");
        }
        item = next();
        if (item.kind == Tok::lbracket)
          fail(p_.source, item.pos, "lists cannot be nested", "a literal");
        v = parse_literal_value(item, negative, st);
      }
      if (++set->total > kMaxListItems) {
        fail(p_.source, item.pos,
             "an 'in' list holds at most " + std::to_string(kMaxListItems) + " items",
             "a shorter list");
      }
      if (ls == SType::version && st == SType::string) {
        Version ver;
        if (!parse_semver(v.text, ver)) {
          fail(p_.source, item.pos, "\"" + std::string(v.text) + "\" is not a semantic version",
               "a version such as \"2.3.0\"");
        }
        set->versions.push_back(ver);
        v.type = ValueType::version;
        v.version = ver;
        any_comparable = true;
      } else {
        any_comparable |= st == SType::null || comparable(ls, st);
        switch (st) {
          case SType::string:
            set->strings.insert(v.text);
            ++set->string_items;
            break;
          case SType::number:
            ++set->number_items;
            if (v.type == ValueType::integer) {
              set->integers.insert(v.integer);
            } else if (v.real == std::floor(v.real) && v.real >= -9.2233720368547758e18 &&
                       v.real < 9.2233720368547758e18) {
              set->integers.insert(static_cast<int64_t>(v.real));
            } else {
              set->reals.insert(v.real);
            }
            break;
          case SType::boolean:
            ++set->bool_items;
            (v.boolean ? set->has_true : set->has_false) = true;
            break;
          case SType::null:
            set->has_null = true;
            break;
          default:
            break;
        }
      }
      if (named != nullptr) continue;
      n.list_items.push_back(v);
      if (peek().kind == Tok::comma) {
        next();
      } else if (peek().kind != Tok::rbracket) {
        expected("',' or ']'", "a list item");
      }
    }
    if (named == nullptr) next();  // ]
    if (named != nullptr) {
      for (const auto& [name, items] : p_.lists) {
        if (&items == named) n.list_name = name;
      }
    }
    if (!n.list_items.empty() && !any_comparable && ls != SType::dynamic) {
      fail(p_.source, in_token.pos, std::string("no item of the list can equal ") + stype_name(ls),
           "items of one type with the operand");
    }
    n.set = std::move(set);
    return add(std::move(n));
  }

  size_t parse_attribute_path(const Token& first) {
    std::vector<std::string> parts{first.text};
    while (peek().kind == Tok::dot) {
      next();
      const Token& t = peek();
      if (t.kind != Tok::ident || keywords().count(t.text)) expected("a name", "'.'");
      parts.push_back(next().text);
    }
    return add_attribute(first.pos, parts);
  }

  size_t add_attribute(size_t pos, const std::vector<std::string>& parts) {
    std::string name;
    for (size_t i = 0; i < parts.size(); ++i) name += (i ? "." : "") + parts[i];
    // One slot per path: `a.b` (nested) and `` `a.b` `` (one key) read different things.
    size_t slot = 0;
    while (slot < p_.paths.size() && p_.paths[slot] != parts) ++slot;
    if (slot == p_.attributes.size()) {
      p_.attributes.push_back(name);
      p_.paths.push_back(parts);
    }
    Node n;
    n.kind = Kind::attribute;
    n.pos = pos;
    n.slot = slot;
    n.stype = SType::dynamic;
    return add(std::move(n));
  }

  size_t literal_node(const Token& t, bool negative) {
    Node n;
    n.kind = Kind::literal;
    n.pos = t.pos;
    n.is_literal = true;
    n.literal = parse_literal_value(t, negative, n.stype);
    return add(std::move(n));
  }

  void check_arg(const FnInfo& f, size_t id, size_t index, std::initializer_list<SType> allowed) {
    const SType s = p_.nodes[id].stype;
    if (s == SType::dynamic) return;
    for (SType a : allowed) {
      if (a == s) return;
    }
    std::string want;
    for (SType a : allowed) want += std::string(want.empty() ? "" : " or ") + stype_name(a);
    fail(p_.source, p_.nodes[id].pos,
         std::string(f.name) + "() expects " + want + " as argument " + std::to_string(index + 1) +
             ", got " + stype_name(s),
         want);
  }

  void require_string_literal(const FnInfo& f, size_t id, size_t index) {
    const Node& n = p_.nodes[id];
    if (!(n.is_literal && n.stype == SType::string)) {
      fail(p_.source, n.pos,
           std::string(f.name) + "() needs a string literal as argument " +
               std::to_string(index + 1),
           "a string literal");
    }
  }

  size_t parse_call(const Token& name, size_t depth) {
    const FnInfo* info = nullptr;
    for (const auto& f : kFunctions) {
      if (name.text == f.name) info = &f;
    }
    if (info == nullptr) {
      std::string names;
      for (const auto& f : kFunctions) names += std::string(names.empty() ? "" : ", ") + f.name;
      fail(p_.source, name.pos, "unknown function '" + name.text + "'", "one of " + names);
    }
    next();  // (
    check_depth(depth + 1);
    Node n;
    n.kind = Kind::call;
    n.fn = info->fn;
    n.pos = name.pos;
    while (peek().kind != Tok::rparen) {
      if (peek().kind == Tok::end) expected("')'", "the arguments of " + name.text + "(");
      n.kids.push_back(parse_or(depth + 1));
      if (peek().kind == Tok::comma) {
        next();
        if (peek().kind == Tok::rparen) expected("an argument", "','");
      } else if (peek().kind != Tok::rparen) {
        expected("',' or ')'", "an argument of " + name.text + "()");
      }
    }
    next();  // )
    if (n.kids.size() != info->arity) {
      fail(p_.source, name.pos,
           std::string(info->name) + "() takes " + std::to_string(info->arity) + " argument" +
               (info->arity == 1 ? "" : "s") + ", got " + std::to_string(n.kids.size()),
           std::to_string(info->arity) + " arguments");
    }
    switch (info->fn) {
      case Fn::lower:
      case Fn::upper:
        check_arg(*info, n.kids[0], 0, {SType::string});
        n.stype = SType::string;
        break;
      case Fn::len:
        check_arg(*info, n.kids[0], 0, {SType::string});
        n.stype = SType::number;
        break;
      case Fn::startswith:
      case Fn::endswith:
      case Fn::contains:
        check_arg(*info, n.kids[0], 0, {SType::string});
        require_string_literal(*info, n.kids[1], 1);
        n.stype = SType::boolean;
        break;
      case Fn::matches: {
        check_arg(*info, n.kids[0], 0, {SType::string});
        require_string_literal(*info, n.kids[1], 1);
        const Node& pattern = p_.nodes[n.kids[1]];
        RE2::Options options;
        options.set_log_errors(false);
        auto re = std::make_shared<RE2>(
            re2::StringPiece(pattern.literal.text.data(), pattern.literal.text.size()), options);
        if (!re->ok()) {
          fail(p_.source, pattern.pos, "invalid regular expression: " + re->error(),
               "an RE2 pattern");
        }
        n.regex = std::move(re);
        n.stype = SType::boolean;
        break;
      }
      case Fn::semver:
        check_arg(*info, n.kids[0], 0, {SType::string});
        n.stype = SType::version;
        break;
      case Fn::hour:
      case Fn::weekday:
        check_arg(*info, n.kids[0], 0, {SType::timestamp, SType::number});
        n.stype = SType::number;
        break;
      case Fn::between: {
        const SType xs = p_.nodes[n.kids[0]].stype;
        for (size_t k = 1; k < 3; ++k) {
          const Node& b = p_.nodes[n.kids[k]];
          if (!b.is_literal || b.stype == SType::null) {
            fail(p_.source, b.pos, "between() needs literal bounds (a string or a number)",
                 "a literal");
          }
          if (!comparable(xs, b.stype) && !(xs == SType::version && b.stype == SType::string)) {
            fail(p_.source, b.pos,
                 std::string("between() cannot compare ") + stype_name(xs) + " with " +
                     stype_name(b.stype),
                 "bounds of the value's type");
          }
        }
        if (!comparable(p_.nodes[n.kids[1]].stype, p_.nodes[n.kids[2]].stype)) {
          fail(p_.source, p_.nodes[n.kids[2]].pos, "between() bounds must have one type",
               "bounds of one type");
        }
        versionise(n.kids[1], n.kids[0]);
        versionise(n.kids[2], n.kids[0]);
        n.stype = SType::boolean;
        break;
      }
    }
    return add(std::move(n));
  }

  size_t parse_operand(size_t depth) {
    const Token& t = peek();
    switch (t.kind) {
      case Tok::lparen: {
        check_depth(depth + 1);
        const size_t open = next().pos;
        if (peek().kind == Tok::rparen) expected("an expression", "'('");
        const size_t inner = parse_or(depth + 1);
        if (peek().kind != Tok::rparen) {
          if (peek().kind == Tok::end) fail(p_.source, open, "unclosed '('", "')'");
          expected("')'", "the expression in parentheses");
        }
        next();
        return inner;
      }
      case Tok::lbracket:
        fail(p_.source, t.pos, "a list is only allowed after 'in' or 'not in'", "an operand");
      case Tok::string:
      case Tok::integer:
      case Tok::real: {
        const Token lit = next();
        return literal_node(lit, false);
      }
      case Tok::minus: {
        next();
        if (peek().kind != Tok::integer && peek().kind != Tok::real) expected("a number", "'-'");
        const Token lit = next();
        return literal_node(lit, true);
      }
      case Tok::backquoted: {
        const Token name = next();
        return add_attribute(name.pos, {name.text});
      }
      case Tok::ident: {
        if (t.text == "true" || t.text == "false" || t.text == "null" || t.text == "True" ||
            t.text == "False" || t.text == "None") {
          const Token lit = next();
          return literal_node(lit, false);
        }
        if (keywords().count(t.text)) {
          expected("an operand", "");
        }
        const Token name = next();
        if (peek().kind == Tok::lparen) return parse_call(name, depth);
        return parse_attribute_path(name);
      }
      case Tok::end:
        expected("an operand", "");
      default:
        expected("an operand (a name, a literal, a function call or '(')", "");
    }
  }
};

// ---------------------------------------------------------------------------------------
// Evaluation

// Strings made by lower()/upper() for one row, and (for the columnar evaluator, one per
// thread) private copies of the regexes: RE2 takes a lock per match on a shared object.
struct Scratch {
  bool private_regexes = false;
  std::unordered_map<const RE2*, std::unique_ptr<RE2>> regexes;
  const RE2& regex(const RE2& shared) {
    if (!private_regexes) return shared;
    auto& mine = regexes[&shared];
    if (!mine) mine = std::make_unique<RE2>(shared.pattern(), shared.options());
    return *mine;
  }

  std::deque<std::string> strings;
  size_t used = 0;
  std::string& next() {
    if (used == strings.size()) strings.emplace_back();
    std::string& s = strings[used++];
    s.clear();
    return s;
  }
  void reset() { used = 0; }
};

using detail::valid_bit;

int64_t read_int(const void* data, IntKind kind, size_t i, bool& too_big) {
  too_big = false;
  switch (kind) {
    case IntKind::i8:
      return static_cast<const int8_t*>(data)[i];
    case IntKind::i16:
      return static_cast<const int16_t*>(data)[i];
    case IntKind::i32:
      return static_cast<const int32_t*>(data)[i];
    case IntKind::i64:
      return static_cast<const int64_t*>(data)[i];
    case IntKind::u8:
      return static_cast<const uint8_t*>(data)[i];
    case IntKind::u16:
      return static_cast<const uint16_t*>(data)[i];
    case IntKind::u32:
      return static_cast<const uint32_t*>(data)[i];
    case IntKind::u64: {
      const uint64_t u = static_cast<const uint64_t*>(data)[i];
      too_big = u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
      return static_cast<int64_t>(u);
    }
  }
  return 0;
}

Value text_value(const UnitColumn& column, size_t i) {
  if (const auto* c = std::get_if<OffsetStringColumn>(&column)) {
    if (!valid_bit(c->validity, c->validity_offset, i)) return Value::null();
    if (c->large_offsets) {
      return Value::of_string(
          detail::offset_string(static_cast<const int64_t*>(c->offsets), c->data, i));
    }
    return Value::of_string(
        detail::offset_string(static_cast<const int32_t*>(c->offsets), c->data, i));
  }
  if (const auto* c = std::get_if<ViewStringColumn>(&column)) {
    if (!valid_bit(c->validity, c->validity_offset, i)) return Value::null();
    std::string_view s;
    if (!detail::view_string(c->views, c->buffers, c->buffer_count, i, s)) {
      return Value::of_other();
    }
    return Value::of_string(s);
  }
  return Value::of_other();
}

Value column_value(const AttributeColumn& c, size_t i) {
  using K = AttributeColumn::Kind;
  if (c.kind == K::missing) return Value::null();
  if (c.kind == K::values) return c.values[i];
  if ((c.null_mask != nullptr && c.null_mask[i]) || !valid_bit(c.validity, c.validity_offset, i)) {
    return Value::null();
  }
  switch (c.kind) {
    case K::boolean:
      return Value::of_bool(static_cast<const uint8_t*>(c.data)[i] != 0);
    case K::integer: {
      bool too_big;
      const int64_t v = read_int(c.data, c.int_kind, i, too_big);
      if (too_big) return Value::of_real(static_cast<double>(static_cast<uint64_t>(v)));
      return Value::of_int(v);
    }
    case K::real32:
      return Value::of_real(static_cast<const float*>(c.data)[i]);
    case K::real64:
      return Value::of_real(static_cast<const double*>(c.data)[i]);
    case K::timestamp: {
      const int64_t ns = static_cast<const int64_t*>(c.data)[i];
      if (ns == std::numeric_limits<int64_t>::min()) return Value::null();  // NaT
      return Value::of_timestamp(ns);
    }
    case K::text:
      return text_value(c.text_column, i);
    case K::dictionary: {
      bool too_big;
      const int64_t code = read_int(c.data, c.int_kind, i, too_big);
      if (too_big || code < 0 || c.dictionary == nullptr ||
          static_cast<size_t>(code) >= c.dictionary->length) {
        return Value::null();
      }
      return column_value(*c.dictionary, static_cast<size_t>(code));
    }
    default:
      return Value::of_other();
  }
}

int64_t floor_div(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
}

// Seconds since the epoch of a timestamp or a number of seconds; false otherwise.
bool epoch_seconds(const Value& v, int64_t& out) {
  if (v.type == ValueType::timestamp) {
    out = floor_div(v.integer, 1'000'000'000);
    return true;
  }
  if (v.type == ValueType::integer) {
    out = v.integer;
    return true;
  }
  if (v.type == ValueType::real && std::isfinite(v.real) && std::fabs(v.real) < 9.2e18) {
    out = static_cast<int64_t>(std::floor(v.real));
    return true;
  }
  return false;
}

template <typename Row>
class Evaluator {
 public:
  Evaluator(const Program& p, const Row& row, Scratch& scratch)
      : p_(p), row_(row), scratch_(scratch) {}

  Truth truth(size_t id) const {
    const Node& n = p_.nodes[id];
    switch (n.kind) {
      case Kind::any: {
        Truth t = kFalse;
        for (size_t k : n.kids) {
          t = truth_or(t, truth(k));
          if (t == kTrue) break;
        }
        return t;
      }
      case Kind::all: {
        Truth t = kTrue;
        for (size_t k : n.kids) {
          t = truth_and(t, truth(k));
          if (t == kFalse) break;
        }
        return t;
      }
      case Kind::negate:
        return truth_not(truth(n.kids[0]));
      case Kind::compare:
        return compare_values(value(n.kids[0]), value(n.kids[1]), n.op);
      case Kind::in_list: {
        const Truth t = n.set->contains(value(n.kids[0]));
        return n.negated ? truth_not(t) : t;
      }
      case Kind::is_null: {
        const bool null = value(n.kids[0]).is_null();
        return (null != n.negated) ? kTrue : kFalse;
      }
      case Kind::call:
        if (n.stype == SType::boolean) return call_truth(n);
        return to_truth(value(id));
      case Kind::attribute:
      case Kind::literal:
        return to_truth(value(id));
    }
    return kUnknown;
  }

  Value value(size_t id) const {
    const Node& n = p_.nodes[id];
    switch (n.kind) {
      case Kind::attribute:
        return row_.attribute(n.slot);
      case Kind::literal:
        return n.literal;
      case Kind::call:
        if (n.stype != SType::boolean) return call_value(n);
        [[fallthrough]];
      default: {
        const Truth t = truth(id);
        return t == kUnknown ? Value::null() : Value::of_bool(t == kTrue);
      }
    }
  }

 private:
  const Program& p_;
  const Row& row_;
  Scratch& scratch_;

  static Truth to_truth(const Value& v) {
    if (v.type != ValueType::boolean) return kUnknown;
    return v.boolean ? kTrue : kFalse;
  }

  Truth call_truth(const Node& n) const {
    const Value x = value(n.kids[0]);
    if (n.fn == Fn::between) {
      const Truth lo = compare_values(x, p_.nodes[n.kids[1]].literal, CompareOp::ge);
      const Truth hi = compare_values(x, p_.nodes[n.kids[2]].literal, CompareOp::le);
      return truth_and(lo, hi);
    }
    if (x.type != ValueType::string) return kUnknown;
    const std::string_view s = x.text;
    const std::string_view arg = p_.nodes[n.kids[1]].literal.text;
    bool r = false;
    switch (n.fn) {
      case Fn::startswith:
        r = s.size() >= arg.size() && s.compare(0, arg.size(), arg) == 0;
        break;
      case Fn::endswith:
        r = s.size() >= arg.size() && s.compare(s.size() - arg.size(), arg.size(), arg) == 0;
        break;
      case Fn::contains:
        r = s.find(arg) != std::string_view::npos;
        break;
      case Fn::matches:
        r = RE2::PartialMatch(re2::StringPiece(s.data(), s.size()), scratch_.regex(*n.regex));
        break;
      default:
        return kUnknown;
    }
    return r ? kTrue : kFalse;
  }

  Value call_value(const Node& n) const {
    const Value x = value(n.kids[0]);
    switch (n.fn) {
      case Fn::lower:
      case Fn::upper: {
        if (x.type != ValueType::string) return Value::null();
        std::string& out = scratch_.next();
        out.assign(x.text.data(), x.text.size());
        for (char& c : out) {
          if (n.fn == Fn::lower && c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
          if (n.fn == Fn::upper && c >= 'a' && c <= 'z') c = static_cast<char>(c - 'a' + 'A');
        }
        return Value::of_string(out);
      }
      case Fn::len: {
        if (x.type != ValueType::string) return Value::null();
        int64_t count = 0;
        for (char c : x.text) count += (static_cast<unsigned char>(c) & 0xC0) != 0x80;
        return Value::of_int(count);
      }
      case Fn::semver: {
        if (x.type != ValueType::string) return Value::null();
        Value v;
        if (!parse_semver(x.text, v.version)) return Value::null();
        v.type = ValueType::version;
        return v;
      }
      case Fn::hour:
      case Fn::weekday: {
        int64_t seconds;
        if (!epoch_seconds(x, seconds)) return Value::null();
        // Floor remainders, without multiplying back (no overflow at the int64 extremes).
        const int64_t second_of_day = ((seconds % 86400) + 86400) % 86400;
        if (n.fn == Fn::hour) return Value::of_int(second_of_day / 3600);
        const int64_t days = floor_div(seconds, 86400);
        return Value::of_int(((days % 7) + 7 + 3) % 7);  // 1970-01-01 was a Thursday (3)
      }
      default:
        return Value::null();
    }
  }
};

struct SlotRow {
  const Value* values;
  Value attribute(size_t slot) const { return values[slot]; }
};

struct ColumnRow {
  const AttributeColumn* columns;
  size_t row;
  Value attribute(size_t slot) const { return column_value(columns[slot], row); }
};

// ---------------------------------------------------------------------------------------
// Columnar fast paths: numeric and text columns compared with literals, in tight loops. Each
// reproduces exactly what compare_values / InSet::contains give row by row.

constexpr size_t kBlock = 1024;

// out = 1 (unknown) where mask is set, unchanged elsewhere; branch-free.
TRAFFICSPLIT_MULTIVERSION
void mark_nulls(const uint8_t* mask, size_t len, uint8_t* out) {
  for (size_t i = 0; i < len; ++i) {
    const uint8_t m = mask[i] != 0;
    out[i] = static_cast<uint8_t>((out[i] & static_cast<uint8_t>(m - 1)) | m);
  }
}

void apply_nulls(const AttributeColumn& c, size_t begin, size_t len, uint8_t* out) {
  if (c.null_mask == nullptr && c.validity == nullptr) return;
  if (c.validity == nullptr) {
    mark_nulls(c.null_mask + begin, len, out);
    return;
  }
  for (size_t i = 0; i < len; ++i) {
    const size_t r = begin + i;
    if ((c.null_mask != nullptr && c.null_mask[r]) ||
        !valid_bit(c.validity, c.validity_offset, r)) {
      out[i] = kUnknown;
    }
  }
}

// One comparison per row against a constant, written so the compiler vectorises it: the
// operator is a template parameter, NaN (null) becomes unknown without a branch.
template <CompareOp Op, typename T, typename L>
void compare_loop(const T* x, L lit, size_t len, uint8_t* out) {
  for (size_t i = 0; i < len; ++i) {
    const T v = x[i];
    bool r;
    // Every comparison below is false for NaN (`!=` is spelled as < or >), so NaN (null)
    // becomes unknown (1) by or-ing in the NaN bit, without a branch or a blend.
    if constexpr (Op == CompareOp::eq) r = v == lit;
    if constexpr (Op == CompareOp::ne) r = (v < lit) | (v > lit);
    if constexpr (Op == CompareOp::lt) r = v < lit;
    if constexpr (Op == CompareOp::le) r = v <= lit;
    if constexpr (Op == CompareOp::gt) r = v > lit;
    if constexpr (Op == CompareOp::ge) r = v >= lit;
    uint8_t t = static_cast<uint8_t>(static_cast<uint8_t>(r) << 1);
    if constexpr (std::is_floating_point_v<T>) t |= static_cast<uint8_t>(v != v);
    out[i] = t;
  }
}

template <typename T, typename L>
inline void compare_dispatch(const T* x, L lit, CompareOp op, size_t len, uint8_t* out) {
  switch (op) {
    case CompareOp::eq:
      compare_loop<CompareOp::eq>(x, lit, len, out);
      break;
    case CompareOp::ne:
      compare_loop<CompareOp::ne>(x, lit, len, out);
      break;
    case CompareOp::lt:
      compare_loop<CompareOp::lt>(x, lit, len, out);
      break;
    case CompareOp::le:
      compare_loop<CompareOp::le>(x, lit, len, out);
      break;
    case CompareOp::gt:
      compare_loop<CompareOp::gt>(x, lit, len, out);
      break;
    case CompareOp::ge:
      compare_loop<CompareOp::ge>(x, lit, len, out);
      break;
  }
}

TRAFFICSPLIT_MULTIVERSION
void compare_f64(const double* x, double lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void compare_f32(const float* x, double lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void compare_i64(const int64_t* x, int64_t lit, CompareOp op, size_t len, uint8_t* out) {
  compare_dispatch(x, lit, op, len, out);
}

TRAFFICSPLIT_MULTIVERSION
void truth_min(uint8_t* out, const uint8_t* other, size_t len) {
  for (size_t i = 0; i < len; ++i) out[i] = out[i] < other[i] ? out[i] : other[i];
}

TRAFFICSPLIT_MULTIVERSION
void truth_max(uint8_t* out, const uint8_t* other, size_t len) {
  for (size_t i = 0; i < len; ++i) out[i] = out[i] > other[i] ? out[i] : other[i];
}

template <typename T, typename L>
void compare_column(const AttributeColumn& c, L lit, CompareOp op, size_t begin, size_t len,
                    uint8_t* out) {
  const T* x = static_cast<const T*>(c.data) + begin;
  if constexpr (std::is_same_v<T, double>) {
    compare_f64(x, lit, op, len, out);
  } else if constexpr (std::is_same_v<T, float>) {
    compare_f32(x, static_cast<double>(lit), op, len, out);
  } else {
    compare_i64(x, lit, op, len, out);
  }
  apply_nulls(c, begin, len, out);
}

template <typename T>
void compare_numeric(const AttributeColumn& c, double lit, CompareOp op, size_t begin, size_t len,
                     uint8_t* out) {
  if constexpr (std::is_floating_point_v<T>) {
    compare_column<T, double>(c, lit, op, begin, len, out);
  } else {
    // Narrow integers are exact in double: compare there.
    const T* x = static_cast<const T*>(c.data) + begin;
    double tmp[kBlock];
    for (size_t i = 0; i < len; ++i) tmp[i] = static_cast<double>(x[i]);
    AttributeColumn widened = c;
    widened.data = tmp;
    widened.null_mask = nullptr;
    widened.validity = nullptr;
    compare_column<double, double>(widened, lit, op, 0, len, out);
    apply_nulls(c, begin, len, out);
  }
}

CompareOp mirror(CompareOp op) {
  switch (op) {
    case CompareOp::lt:
      return CompareOp::gt;
    case CompareOp::le:
      return CompareOp::ge;
    case CompareOp::gt:
      return CompareOp::lt;
    case CompareOp::ge:
      return CompareOp::le;
    default:
      return op;
  }
}

// A number literal that a double represents exactly, so comparing in double equals
// compare_values' integer-or-double comparison for every integer column value that is
// itself exact in double (|v| <= 2^53); wider columns take the generic path.
bool exact_double_literal(const Value& lit, double& out) {
  if (lit.type == ValueType::real) {
    out = lit.real;
    return true;
  }
  if (lit.type == ValueType::integer && lit.integer >= -(int64_t{1} << 53) &&
      lit.integer <= (int64_t{1} << 53)) {
    out = static_cast<double>(lit.integer);
    return true;
  }
  return false;
}

bool integer_kind_exact_in_double(IntKind k) { return k != IntKind::i64 && k != IntKind::u64; }

class BlockEvaluator {
 public:
  BlockEvaluator(const Program& p, const AttributeColumn* columns) : p_(p), columns_(columns) {
    buffers_.resize(p.nodes.size());
    scratch_.private_regexes = true;
  }

  void run(size_t begin, size_t end, uint8_t* out) {
    for (size_t b = begin; b < end; b += kBlock) {
      const size_t len = std::min(kBlock, end - b);
      const uint8_t* t = truth(p_.root, b, len);
      for (size_t i = 0; i < len; ++i) out[b + i] = t[i] == kTrue;
    }
  }

 private:
  const Program& p_;
  const AttributeColumn* columns_;
  std::vector<std::vector<uint8_t>> buffers_;
  std::unordered_map<size_t, std::vector<uint8_t>> dictionary_tables_;
  Scratch scratch_;

  uint8_t* buffer(size_t id) {
    auto& b = buffers_[id];
    if (b.size() < kBlock) b.resize(kBlock);
    return b.data();
  }

  const uint8_t* truth(size_t id, size_t begin, size_t len) {
    const Node& n = p_.nodes[id];
    uint8_t* out = buffer(id);
    switch (n.kind) {
      case Kind::any:
      case Kind::all: {
        const uint8_t* first = truth(n.kids[0], begin, len);
        std::memcpy(out, first, len);
        for (size_t k = 1; k < n.kids.size(); ++k) {
          const uint8_t* other = truth(n.kids[k], begin, len);
          if (n.kind == Kind::any) {
            truth_max(out, other, len);
          } else {
            truth_min(out, other, len);
          }
        }
        return out;
      }
      case Kind::negate: {
        const uint8_t* inner = truth(n.kids[0], begin, len);
        for (size_t i = 0; i < len; ++i) out[i] = static_cast<uint8_t>(2 - inner[i]);
        return out;
      }
      case Kind::compare:
        if (fast_compare(n, begin, len, out)) return out;
        break;
      default:
        break;
    }
    const int64_t slot = p_.single_slot[id];
    if (slot >= 0 && columns_[slot].kind == AttributeColumn::Kind::dictionary) {
      dictionary_truth(id, static_cast<size_t>(slot), begin, len, out);
      return out;
    }
    if (n.kind == Kind::in_list && p_.nodes[n.kids[0]].kind == Kind::attribute) {
      const AttributeColumn& c = columns_[p_.nodes[n.kids[0]].slot];
      if (c.kind == AttributeColumn::Kind::text && n.set->versions.empty()) {
        if (const auto* t = std::get_if<OffsetStringColumn>(&c.text_column)) {
          // Strings straight from the Arrow buffers: a miss is false only when every item
          // is a string (InSet::contains gives the same for string values).
          const uint8_t miss =
              n.set->string_items == n.set->total && !n.set->has_null ? kFalse : kUnknown;
          auto run = [&](const auto* offsets) {
            for (size_t i = 0; i < len; ++i) {
              const size_t r = begin + i;
              if (r + 16 < t->length) __builtin_prefetch(t->data + offsets[r + 16]);
              if (!valid_bit(t->validity, t->validity_offset, r)) {
                out[i] = kUnknown;
                continue;
              }
              const std::string_view v = detail::offset_string(offsets, t->data, r);
              const uint8_t hit = n.set->strings.contains(v) ? uint8_t{kTrue} : miss;
              out[i] = n.negated ? static_cast<uint8_t>(2 - hit) : hit;
            }
          };
          if (t->large_offsets) {
            run(static_cast<const int64_t*>(t->offsets));
          } else {
            run(static_cast<const int32_t*>(t->offsets));
          }
          return out;
        }
      }
      for (size_t i = 0; i < len; ++i) {
        const Truth t = n.set->contains(column_value(c, begin + i));
        out[i] = n.negated ? truth_not(t) : t;
      }
      return out;
    }
    for (size_t i = 0; i < len; ++i) {
      scratch_.reset();
      ColumnRow row{columns_, begin + i};
      out[i] = Evaluator<ColumnRow>(p_, row, scratch_).truth(id);
    }
    return out;
  }

  // A node that reads one dictionary-encoded attribute is evaluated once per dictionary
  // entry (and once for null), then gathered by code.
  void dictionary_truth(size_t id, size_t slot, size_t begin, size_t len, uint8_t* out) {
    auto& table = dictionary_tables_[id];
    const AttributeColumn& c = columns_[slot];
    if (table.empty()) {
      const AttributeColumn& dict = *c.dictionary;
      std::vector<AttributeColumn> substituted(columns_, columns_ + p_.attributes.size());
      table.resize(dict.length + 1);
      Scratch scratch;
      substituted[slot] = dict;
      for (size_t k = 0; k < dict.length; ++k) {
        scratch.reset();
        ColumnRow row{substituted.data(), k};
        table[k] = Evaluator<ColumnRow>(p_, row, scratch).truth(id);
      }
      AttributeColumn null_column;
      null_column.kind = AttributeColumn::Kind::missing;
      substituted[slot] = null_column;
      scratch.reset();
      ColumnRow row{substituted.data(), 0};
      table[dict.length] = Evaluator<ColumnRow>(p_, row, scratch).truth(id);
    }
    const size_t null_index = table.size() - 1;
    for (size_t i = 0; i < len; ++i) {
      const size_t r = begin + i;
      bool too_big = false;
      const int64_t code = read_int(c.data, c.int_kind, r, too_big);
      const bool null = too_big || code < 0 || static_cast<size_t>(code) >= null_index ||
                        (c.null_mask != nullptr && c.null_mask[r]) ||
                        !valid_bit(c.validity, c.validity_offset, r);
      out[i] = table[null ? null_index : static_cast<size_t>(code)];
    }
  }

  bool fast_compare(const Node& n, size_t begin, size_t len, uint8_t* out) {
    const Node* a = &p_.nodes[n.kids[0]];
    const Node* b = &p_.nodes[n.kids[1]];
    CompareOp op = n.op;
    if (a->kind == Kind::literal && b->kind == Kind::attribute) {
      std::swap(a, b);
      op = mirror(op);
    }
    if (a->kind != Kind::attribute || b->kind != Kind::literal) return false;
    const AttributeColumn& c = columns_[a->slot];
    if (c.kind == AttributeColumn::Kind::dictionary) return false;  // per entry, then gathered
    using K = AttributeColumn::Kind;
    double lit;
    if (b->literal.is_number() && exact_double_literal(b->literal, lit)) {
      if (c.kind == K::real64) {
        compare_numeric<double>(c, lit, op, begin, len, out);
        return true;
      }
      if (c.kind == K::real32) {
        compare_numeric<float>(c, lit, op, begin, len, out);
        return true;
      }
      if (c.kind == K::integer && integer_kind_exact_in_double(c.int_kind)) {
        switch (c.int_kind) {
          case IntKind::i8:
            compare_numeric<int8_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::i16:
            compare_numeric<int16_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::i32:
            compare_numeric<int32_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::u8:
            compare_numeric<uint8_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::u16:
            compare_numeric<uint16_t>(c, lit, op, begin, len, out);
            return true;
          case IntKind::u32:
            compare_numeric<uint32_t>(c, lit, op, begin, len, out);
            return true;
          default:
            return false;
        }
      }
      if (c.kind == K::integer && c.int_kind == IntKind::i64 &&
          b->literal.type == ValueType::integer) {
        compare_column<int64_t, int64_t>(c, b->literal.integer, op, begin, len, out);
        return true;
      }
    }
    for (size_t i = 0; i < len; ++i)
      out[i] = compare_values(column_value(c, begin + i), b->literal, op);
    return true;
  }
};

// Splits rows across threads in whole blocks.
template <typename Fn>
void parallel_blocks(size_t n, unsigned threads, Fn&& fn) {
  constexpr size_t kMinRowsPerThread = 1 << 16;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  const size_t workers = std::min<size_t>(threads, std::max<size_t>(1, n / kMinRowsPerThread));
  if (workers <= 1) {
    fn(size_t{0}, n);
    return;
  }
  size_t chunk = (n + workers - 1) / workers;
  chunk = (chunk + kBlock - 1) / kBlock * kBlock;
  std::vector<std::thread> pool;
  for (size_t w = 1; w < workers; ++w) {
    const size_t begin = std::min(n, w * chunk);
    const size_t end = std::min(n, begin + chunk);
    if (begin < end) pool.emplace_back([&fn, begin, end] { fn(begin, end); });
  }
  fn(size_t{0}, std::min(n, chunk));
  for (auto& t : pool) t.join();
}

// ---------------------------------------------------------------------------------------
// Canonical text

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\0':
        out += "\\0";
        break;
      default:
        out += c;
    }
  }
  return out + "\"";
}

std::string literal_text(const Value& v, std::string_view original_text) {
  switch (v.type) {
    case ValueType::null:
      return "null";
    case ValueType::boolean:
      return v.boolean ? "true" : "false";
    case ValueType::integer:
      return std::to_string(v.integer);
    case ValueType::real: {
      char buf[64];
      const auto r = std::to_chars(buf, buf + sizeof buf, v.real);
      std::string s(buf, r.ptr);
      if (s.find_first_of(".eEn") == std::string::npos) s += ".0";
      return s;
    }
    case ValueType::string:
      return quote(v.text);
    case ValueType::version:
      return quote(original_text);
    default:
      return "?";
  }
}

bool plain_name(const std::string& part) {
  if (part.empty() || keywords().count(part)) return false;
  if (part[0] >= '0' && part[0] <= '9') return false;
  for (char c : part) {
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) {
      return false;
    }
  }
  return true;
}

class Printer {
 public:
  explicit Printer(const Program& p) : p_(p) {}

  std::string print(size_t id, int parent_level) const {
    const Node& n = p_.nodes[id];
    const int level = level_of(n);
    std::string s = body(n);
    return level < parent_level ? "(" + s + ")" : s;
  }

 private:
  const Program& p_;

  static int level_of(const Node& n) {
    switch (n.kind) {
      case Kind::any:
        return 1;
      case Kind::all:
        return 2;
      case Kind::negate:
        return 3;
      case Kind::compare:
      case Kind::in_list:
      case Kind::is_null:
        return 4;
      default:
        return 5;
    }
  }

  std::string value_text(const Node& n) const {
    if (n.kind == Kind::literal) {
      return literal_text(n.literal, n.literal.text);
    }
    return print(static_cast<size_t>(&n - p_.nodes.data()), 5);
  }

  std::string attribute_text(size_t slot) const {
    const auto& parts = p_.paths[slot];
    bool plain = true;
    for (const auto& part : parts) plain &= plain_name(part);  // a dot inside a part: not plain
    if (plain) return p_.attributes[slot];
    return "`" + p_.attributes[slot] + "`";
  }

  std::string body(const Node& n) const {
    static const char* ops[] = {"==", "!=", "<", "<=", ">", ">="};
    switch (n.kind) {
      case Kind::any:
      case Kind::all: {
        std::string s;
        const int level = n.kind == Kind::any ? 1 : 2;
        for (size_t k = 0; k < n.kids.size(); ++k) {
          if (k) s += n.kind == Kind::any ? " or " : " and ";
          s += print(n.kids[k], level + 1);
        }
        return s;
      }
      case Kind::negate:
        return "not " + print(n.kids[0], 3);
      case Kind::compare:
        return print_operand(n.kids[0]) + " " + ops[static_cast<int>(n.op)] + " " +
               print_operand(n.kids[1]);
      case Kind::in_list: {
        if (!n.list_name.empty()) {
          return print_operand(n.kids[0]) + (n.negated ? " not in @" : " in @") + n.list_name;
        }
        std::string s = print_operand(n.kids[0]) + (n.negated ? " not in [" : " in [");
        for (size_t k = 0; k < n.list_items.size(); ++k) {
          if (k) s += ", ";
          const Value& v = n.list_items[k];
          if (v.type == ValueType::version) {
            s += quote(version_text(v.version));
          } else {
            s += literal_text(v, "");
          }
        }
        return s + "]";
      }
      case Kind::is_null:
        return print_operand(n.kids[0]) + (n.negated ? " is not null" : " is null");
      case Kind::call: {
        std::string s;
        for (const auto& f : kFunctions) {
          if (f.fn == n.fn) s = f.name;
        }
        s += "(";
        for (size_t k = 0; k < n.kids.size(); ++k) {
          if (k) s += ", ";
          s += print_operand(n.kids[k], 1);
        }
        return s + ")";
      }
      case Kind::attribute:
        return attribute_text(n.slot);
      case Kind::literal:
        return literal_text(n.literal, n.literal.text);
    }
    return "?";
  }

  std::string print_operand(size_t id, int level = 5) const {
    const Node& n = p_.nodes[id];
    if (n.kind == Kind::literal) return body(n);
    return print(id, level);
  }

  static std::string version_text(const Version& v) {
    std::string s =
        std::to_string(v.major) + "." + std::to_string(v.minor) + "." + std::to_string(v.patch);
    if (!v.pre.empty()) s += "-" + std::string(v.pre);
    return s;
  }
};

}  // namespace

// ---------------------------------------------------------------------------------------

CompiledTargeting::CompiledTargeting(const std::string& expression, const NamedLists& lists)
    : program_(std::make_unique<Program>()) {
  for (const auto& [name, items] : lists) {
    if (items.size() > kMaxListItems) {
      throw SyntaxError("targeting: list @" + name + " has " + std::to_string(items.size()) +
                            " items; the limit is " + std::to_string(kMaxListItems),
                        1, 1, "a shorter list", "");
    }
    std::vector<Value> kept;
    kept.reserve(items.size());
    for (Value v : items) {
      if (v.type == ValueType::string) v.text = program_->keep(std::string(v.text));
      kept.push_back(v);
    }
    program_->lists.emplace_back(name, std::move(kept));
  }
  if (expression.size() > kMaxExpressionBytes) {
    throw SyntaxError("targeting: the expression is " + std::to_string(expression.size()) +
                          " bytes long; the limit is " + std::to_string(kMaxExpressionBytes) +
                          " (64 KiB)",
                      1, 1, "a shorter expression", "");
  }
  program_->source = expression;
  Parser parser(*program_, lex(program_->source));
  program_->root = parser.parse();
  program_->analyse();
}

CompiledTargeting::~CompiledTargeting() = default;

const std::vector<std::string>& CompiledTargeting::attributes() const {
  return program_->attributes;
}

const std::vector<std::vector<std::string>>& CompiledTargeting::attribute_paths() const {
  return program_->paths;
}

std::string CompiledTargeting::canonical() const {
  return Printer(*program_).print(program_->root, 0);
}

Truth CompiledTargeting::evaluate(const Value* attribute_values) const {
  Scratch scratch;
  SlotRow row{attribute_values};
  return Evaluator<SlotRow>(*program_, row, scratch).truth(program_->root);
}

void CompiledTargeting::mask(const AttributeColumn* columns, size_t rows, uint8_t* out,
                             unsigned threads) const {
  for (size_t a = 0; a < program_->attributes.size(); ++a) {
    if (columns[a].kind != AttributeColumn::Kind::missing && columns[a].length != rows) {
      throw InvalidArgument("column '" + program_->attributes[a] + "' has " +
                            std::to_string(columns[a].length) + " rows, expected " +
                            std::to_string(rows));
    }
  }
  parallel_blocks(rows, threads, [&](size_t begin, size_t end) {
    BlockEvaluator evaluator(*program_, columns);
    evaluator.run(begin, end, out);
  });
}

}  // namespace trafficsplit::targeting
