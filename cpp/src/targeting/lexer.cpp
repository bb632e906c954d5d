// The lexer: expression text to tokens (docs/targeting.md, "Syntax").
#include "targeting/lexer.hpp"

#include <algorithm>

#include "trafficsplit/targeting/targeting.hpp"

namespace trafficsplit::targeting {

const std::unordered_set<std::string>& keywords() {
  static const std::unordered_set<std::string> k{"and",  "or",    "not",  "in",    "is",  "null",
                                                 "true", "false", "True", "False", "None"};
  return k;
}

std::string show_nuls(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    if (c == '\0') {
      out += "\\x00";
    } else {
      out += c;
    }
  }
  return out;
}

// Builds a SyntaxError at a byte offset, with line/column in characters and a caret excerpt.
[[noreturn]] void syntax_error(const std::string& source, size_t pos, const std::string& what,
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
  size_t shown_start = line_start;  // the byte of the source the excerpt starts with
  if (text.size() > 160) {          // keep excerpts readable for long expressions
    size_t from = pos - line_start > 60 ? pos - line_start - 60 : 0;
    while (from > 0 && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) --from;
    size_t to = std::min(text.size(), from + 140);
    while (to < text.size() && (static_cast<unsigned char>(text[to]) & 0xC0) == 0x80) ++to;
    caret = 0;
    for (size_t i = from; i < pos - line_start; ++i) {
      if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80) ++caret;
    }
    shown_start = line_start + from;
    text = (from > 0 ? "..." : "") + text.substr(from, to - from) + (to < text.size() ? "..." : "");
    if (from > 0) caret += 3;
  }
  // A NUL before the caret is shown as 4 characters.
  caret +=
      3 * static_cast<size_t>(std::count(source.begin() + static_cast<std::ptrdiff_t>(shown_start),
                                         source.begin() + static_cast<std::ptrdiff_t>(pos), '\0'));
  std::string excerpt = "  " + show_nuls(text) + "\n  " + std::string(caret, ' ') + "^";
  std::string message = "targeting: " + show_nuls(what) + " at line " + std::to_string(line) +
                        ", column " + std::to_string(column) + "\n" + excerpt;
  throw SyntaxError(message, line, column, show_nuls(expected), excerpt);
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
        syntax_error(src, j, "unexpected character '" + std::string(1, src[j]) + "' in a number",
                     "a digit, an operator or a space");
      }
      t.kind = real ? Tok::real : Tok::integer;
      t.text = src.substr(i, j - i);
      i = j;
    } else if (c == '"' || c == '\'') {
      size_t j = i + 1;
      std::string text;
      while (true) {
        if (j >= n || src[j] == '\n')
          syntax_error(src, i, "unterminated string", std::string(1, c));
        const char d = src[j];
        if (d == c) {
          ++j;
          break;
        }
        if (d == '\\') {
          if (j + 1 >= n) syntax_error(src, j, "unterminated string", std::string(1, c));
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
              if (j + digits > n) syntax_error(src, j - 2, "bad escape", "\\u and 4 hex digits");
              uint32_t cp = 0;
              for (size_t k = 0; k < digits; ++k) {
                const char h = src[j + k];
                int v = -1;
                if (h >= '0' && h <= '9') v = h - '0';
                if (h >= 'a' && h <= 'f') v = h - 'a' + 10;
                if (h >= 'A' && h <= 'F') v = h - 'A' + 10;
                if (v < 0) {
                  syntax_error(src, j - 2, "bad escape",
                               e == 'u' ? "\\u and 4 hex digits" : "\\U and 8 hex digits");
                }
                cp = cp * 16 + static_cast<uint32_t>(v);
              }
              if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) {
                syntax_error(src, j - 2, "escape is not a Unicode scalar value", "a code point");
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
        syntax_error(src, i, "expected a list name after '@'", "a name such as @vip_users");
      }
      t.kind = Tok::list_ref;
      t.text = src.substr(i + 1, j - i - 1);
      i = j;
    } else if (c == '`') {
      const size_t close = src.find('`', i + 1);
      if (close == std::string::npos) syntax_error(src, i, "unterminated backquoted name", "'`'");
      if (close == i + 1)
        syntax_error(src, i, "empty backquoted name", "a name between backquotes");
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
          if (d != '=') syntax_error(src, i, "'=' is assignment; compare with '=='", "'=='");
          t.kind = Tok::eq;
          width = 2;
          break;
        case '!':
          if (d != '=') syntax_error(src, i, "unexpected '!'; negate with 'not'", "'!=' or 'not'");
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
          syntax_error(src, i, "unexpected character '" + src.substr(i, w) + "'",
                       "a name, a literal, an operator or a parenthesis");
        }
      }
      i += width;
    }
    t.len = i - t.pos;
    out.push_back(std::move(t));
  }
}

}  // namespace trafficsplit::targeting
