// The type rules of targeting expressions (docs/targeting.md, "Values and types").
#include "targeting/checker.hpp"

#include <re2/re2.h>

#include <initializer_list>
#include <memory>

#include "targeting/lexer.hpp"

namespace trafficsplit::targeting {

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

bool comparable(SType a, SType b) {
  if (a == SType::dynamic || b == SType::dynamic) return true;
  if (a == b) return true;
  return (a == SType::version && b == SType::string) || (a == SType::string && b == SType::version);
}

void require_condition(const Program& p, size_t id, const std::string& where) {
  const Node& n = p.nodes[id];
  if (n.stype == SType::boolean || n.stype == SType::dynamic) return;
  syntax_error(
      p.source, n.pos,
      where + " must be a condition (a comparison, a bool function or a bool attribute), not " +
          stype_name(n.stype),
      "a condition");
}

void versionise(Program& p, size_t literal_id, size_t other_id) {
  Node& lit = p.nodes[literal_id];
  if (!(lit.is_literal && lit.stype == SType::string &&
        p.nodes[other_id].stype == SType::version)) {
    return;
  }
  Version v;
  if (!parse_semver(lit.literal.text, v)) {
    syntax_error(
        p.source, lit.pos,
        "\"" + std::string(lit.literal.text) + "\" is not a semantic version (MAJOR.MINOR.PATCH)",
        "a version such as \"2.3.0\"");
  }
  lit.literal.type = ValueType::version;
  lit.literal.version = v;
  lit.stype = SType::version;
}

void check_comparison(Program& p, size_t left, size_t right, CompareOp op, size_t op_pos) {
  const SType ls = p.nodes[left].stype, rs = p.nodes[right].stype;
  if (ls == SType::null || rs == SType::null) {
    syntax_error(
        p.source, op_pos,
        std::string("comparing with null is always unknown; use 'is null' or 'is not null'"),
        "'is null'");
  }
  if (!comparable(ls, rs)) {
    syntax_error(p.source, op_pos,
                 std::string("cannot compare ") + stype_name(ls) + " with " + stype_name(rs),
                 "operands of one type");
  }
  if (ls == SType::boolean && rs == SType::boolean && op != CompareOp::eq && op != CompareOp::ne) {
    syntax_error(p.source, op_pos, "bools can only be compared with == and !=", "'==' or '!='");
  }
  versionise(p, left, right);
  versionise(p, right, left);
}

namespace {

void check_arg(const Program& p, const FnInfo& f, size_t id, size_t index,
               std::initializer_list<SType> allowed) {
  const SType s = p.nodes[id].stype;
  if (s == SType::dynamic) return;
  for (SType a : allowed) {
    if (a == s) return;
  }
  std::string want;
  for (SType a : allowed) want += std::string(want.empty() ? "" : " or ") + stype_name(a);
  syntax_error(p.source, p.nodes[id].pos,
               std::string(f.name) + "() expects " + want + " as argument " +
                   std::to_string(index + 1) + ", got " + stype_name(s),
               want);
}

void require_string_literal(const Program& p, const FnInfo& f, size_t id, size_t index) {
  const Node& n = p.nodes[id];
  if (!(n.is_literal && n.stype == SType::string)) {
    syntax_error(
        p.source, n.pos,
        std::string(f.name) + "() needs a string literal as argument " + std::to_string(index + 1),
        "a string literal");
  }
}

}  // namespace

void check_call(Program& p, Node& n, const FnInfo& f) {
  if (n.kids.size() != f.arity) {
    syntax_error(p.source, n.pos,
                 std::string(f.name) + "() takes " + std::to_string(f.arity) + " argument" +
                     (f.arity == 1 ? "" : "s") + ", got " + std::to_string(n.kids.size()),
                 std::to_string(f.arity) + " arguments");
  }
  switch (f.fn) {
    case Fn::lower:
    case Fn::upper:
      check_arg(p, f, n.kids[0], 0, {SType::string});
      n.stype = SType::string;
      break;
    case Fn::len:
      check_arg(p, f, n.kids[0], 0, {SType::string});
      n.stype = SType::number;
      break;
    case Fn::startswith:
    case Fn::endswith:
    case Fn::contains:
      check_arg(p, f, n.kids[0], 0, {SType::string});
      require_string_literal(p, f, n.kids[1], 1);
      n.stype = SType::boolean;
      break;
    case Fn::matches: {
      check_arg(p, f, n.kids[0], 0, {SType::string});
      require_string_literal(p, f, n.kids[1], 1);
      const Node& pattern = p.nodes[n.kids[1]];
      RE2::Options options;
      options.set_log_errors(false);
      auto re = std::make_shared<RE2>(
          re2::StringPiece(pattern.literal.text.data(), pattern.literal.text.size()), options);
      if (!re->ok()) {
        syntax_error(p.source, pattern.pos, "invalid regular expression: " + re->error(),
                     "an RE2 pattern");
      }
      n.regex = std::move(re);
      n.stype = SType::boolean;
      break;
    }
    case Fn::semver:
      check_arg(p, f, n.kids[0], 0, {SType::string});
      n.stype = SType::version;
      break;
    case Fn::hour:
    case Fn::weekday:
      check_arg(p, f, n.kids[0], 0, {SType::timestamp, SType::number});
      n.stype = SType::number;
      break;
    case Fn::between: {
      const SType xs = p.nodes[n.kids[0]].stype;
      for (size_t k = 1; k < 3; ++k) {
        const Node& b = p.nodes[n.kids[k]];
        if (!b.is_literal || b.stype == SType::null) {
          syntax_error(p.source, b.pos, "between() needs literal bounds (a string or a number)",
                       "a literal");
        }
        if (!comparable(xs, b.stype) && !(xs == SType::version && b.stype == SType::string)) {
          syntax_error(p.source, b.pos,
                       std::string("between() cannot compare ") + stype_name(xs) + " with " +
                           stype_name(b.stype),
                       "bounds of the value's type");
        }
      }
      if (!comparable(p.nodes[n.kids[1]].stype, p.nodes[n.kids[2]].stype)) {
        syntax_error(p.source, p.nodes[n.kids[2]].pos, "between() bounds must have one type",
                     "bounds of one type");
      }
      versionise(p, n.kids[1], n.kids[0]);
      versionise(p, n.kids[2], n.kids[0]);
      n.stype = SType::boolean;
      break;
    }
  }
}

}  // namespace trafficsplit::targeting
