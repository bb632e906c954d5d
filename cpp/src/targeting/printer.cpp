// The canonical text of a program: one spelling per expression, parenthesised only where
// precedence needs it, that parses back to the same program.
#include <charconv>
#include <string>
#include <string_view>

#include "targeting/lexer.hpp"
#include "targeting/program.hpp"

namespace trafficsplit::targeting {

namespace {

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
      return integer_text(v);
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

std::string CompiledTargeting::canonical() const {
  return Printer(*program_).print(program_->root, 0);
}

}  // namespace trafficsplit::targeting
