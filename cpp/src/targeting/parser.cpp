// The grammar of targeting expressions (docs/targeting.md, "Syntax"), by recursive descent:
// or > and > not > comparison, in and is > operand.
#include "targeting/parser.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>
#include <memory>
#include <string>

#include "targeting/checker.hpp"

namespace trafficsplit::targeting {

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
      syntax_error(p_.source, t.pos, what, "'and', 'or' or the end of the expression");
    }
    require_condition(p_, root, "the expression");
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
    syntax_error(p_.source, t.pos, message, what);
  }

  size_t add(Node n) {
    p_.nodes.push_back(std::move(n));
    return p_.nodes.size() - 1;
  }

  void check_depth(size_t depth) {
    if (depth > kMaxDepth) {
      syntax_error(p_.source, peek().pos,
                   "nesting is deeper than " + std::to_string(kMaxDepth) + " levels",
                   "a flatter expression");
    }
  }

  size_t parse_or(size_t depth) {
    check_depth(depth);
    size_t left = parse_and(depth);
    if (!(is_word(peek(), "or") || peek().kind == Tok::pipe)) return left;
    Node n;
    n.kind = Kind::any;
    n.pos = p_.nodes[left].pos;
    n.stype = SType::boolean;
    require_condition(p_, left, "the left side of 'or'");
    n.kids.push_back(left);
    while (is_word(peek(), "or") || peek().kind == Tok::pipe) {
      const std::string op = token_text(next());
      if (peek().kind == Tok::end) expected("a condition", op);
      const size_t right = parse_and(depth);
      require_condition(p_, right, "the right side of " + op);
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
    require_condition(p_, left, "the left side of 'and'");
    n.kids.push_back(left);
    while (is_word(peek(), "and") || peek().kind == Tok::amp) {
      const std::string op = token_text(next());
      if (peek().kind == Tok::end) expected("a condition", op);
      const size_t right = parse_not(depth);
      require_condition(p_, right, "the right side of " + op);
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
      require_condition(p_, inner, "the operand of " + op);
      Node n;
      n.kind = Kind::negate;
      n.pos = t.pos;
      n.stype = SType::boolean;
      n.kids.push_back(inner);
      return add(std::move(n));
    }
    return parse_comparison(depth);
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
    check_comparison(p_, left, right, op, op_token.pos);
    const Token& after = peek();
    if (after.kind >= Tok::eq && after.kind <= Tok::ge) {
      syntax_error(p_.source, after.pos, "comparisons do not chain; join them with 'and'",
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
      // Beyond int64: exact at any size (a uint64, or a big integer kept as its hex text).
      std::string canonical;
      Value big;
      big_integer_from_decimal(t.text, negative, canonical, big);
      if (big.form == IntForm::big) big.text = p_.keep(std::move(canonical));
      return big;
    }
    if (t.kind == Tok::real) {
      stype = SType::number;
      const double d = std::strtod(t.text.c_str(), nullptr);
      if (!std::isfinite(d))
        syntax_error(p_.source, t.pos, "number out of range", "a finite number");
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
    syntax_error(p_.source, t.pos,
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
        syntax_error(p_.source, ref.pos, "unknown list '@" + ref.text + "'",
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
        if (peek().kind == Tok::end) syntax_error(p_.source, open, "unclosed '['", "']'");
        bool negative = false;
        if (peek().kind == Tok::minus) {
          next();
          negative = true;
          if (peek().kind != Tok::integer && peek().kind != Tok::real) expected("a number", "'-'");
        }
        item = next();
        if (item.kind == Tok::lbracket)
          syntax_error(p_.source, item.pos, "lists cannot be nested", "a literal");
        v = parse_literal_value(item, negative, st);
      }
      if (++set->total > kMaxListItems) {
        syntax_error(p_.source, item.pos,
                     "an 'in' list holds at most " + std::to_string(kMaxListItems) + " items",
                     "a shorter list");
      }
      if (ls == SType::version && st == SType::string) {
        Version ver;
        if (!parse_semver(v.text, ver)) {
          syntax_error(p_.source, item.pos,
                       "\"" + std::string(v.text) + "\" is not a semantic version",
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
            set->insert_number(v);
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
      syntax_error(p_.source, in_token.pos,
                   std::string("no item of the list can equal ") + stype_name(ls),
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

  size_t parse_call(const Token& name, size_t depth) {
    const FnInfo* info = nullptr;
    for (const auto& f : kFunctions) {
      if (name.text == f.name) info = &f;
    }
    if (info == nullptr) {
      std::string names;
      for (const auto& f : kFunctions) names += std::string(names.empty() ? "" : ", ") + f.name;
      syntax_error(p_.source, name.pos, "unknown function '" + name.text + "'", "one of " + names);
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
    check_call(p_, n, *info);
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
          if (peek().kind == Tok::end) syntax_error(p_.source, open, "unclosed '('", "')'");
          expected("')'", "the expression in parentheses");
        }
        next();
        return inner;
      }
      case Tok::lbracket:
        syntax_error(p_.source, t.pos, "a list is only allowed after 'in' or 'not in'",
                     "an operand");
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

}  // namespace

size_t parse(Program& program, std::vector<Token> tokens) {
  return Parser(program, std::move(tokens)).parse();
}

}  // namespace trafficsplit::targeting
