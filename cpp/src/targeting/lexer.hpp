// Tokens of targeting expressions, and the syntax errors that point into them (internal header).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

namespace trafficsplit::targeting {

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

// The words that are not attribute names.
const std::unordered_set<std::string>& keywords();

// Text for a message with each NUL shown as \x00: messages travel as C strings, which end at
// the first NUL.
std::string show_nuls(const std::string& text);

// Throws SyntaxError at a byte offset of `source`, with line/column in characters and a
// caret excerpt (NULs shown as \x00).
[[noreturn]] void syntax_error(const std::string& source, size_t pos, const std::string& what,
                               const std::string& expected);

std::vector<Token> lex(const std::string& source);

}  // namespace trafficsplit::targeting
