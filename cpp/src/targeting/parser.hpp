// The parser: tokens to a program, in one pass that also applies the type rules
// (targeting/checker.hpp) to every node it builds (internal header).
#pragma once

#include <cstddef>
#include <vector>

#include "targeting/lexer.hpp"
#include "targeting/program.hpp"

namespace trafficsplit::targeting {

// Appends the expression's nodes to `program` (whose source, and lists, are set) and returns
// the root's id. Throws SyntaxError.
size_t parse(Program& program, std::vector<Token> tokens);

}  // namespace trafficsplit::targeting
