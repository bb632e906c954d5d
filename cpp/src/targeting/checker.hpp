// The type rules of targeting expressions, applied by the parser to each node it builds: which
// operands compare, what a condition is, which arguments each function takes. Violations are
// SyntaxErrors at the offending position (internal header).
#pragma once

#include <cstddef>
#include <string>

#include "targeting/program.hpp"

namespace trafficsplit::targeting {

// The name of a static type in error messages ("a number").
const char* stype_name(SType t);

// Whether values of the two static types can be compared (an attribute compares with anything).
bool comparable(SType a, SType b);

// Node `id` must be a condition: a bool or an attribute. `where` names its place.
void require_condition(const Program& p, size_t id, const std::string& where);

// A string literal compared with a version becomes a version literal, checked now.
void versionise(Program& p, size_t literal_id, size_t other_id);

// `left op right`, the operator at byte `op_pos`: operands of types that compare, bools only
// with == and !=, never null; version literals made from strings.
void check_comparison(Program& p, size_t left, size_t right, CompareOp op, size_t op_pos);

// A call of `f` with its arguments in `call.kids`: their number and types, literal arguments
// where the function needs them, and its pattern compiled for matches(). Sets the call's type.
void check_call(Program& p, Node& call, const FnInfo& f);

}  // namespace trafficsplit::targeting
