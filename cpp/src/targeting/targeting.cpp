// Compiling a targeting expression: limits, named lists, then lexer, parser (with the type
// checker) and the analysis the columnar evaluator uses. Evaluation is in evaluator.cpp and
// columnar.cpp, the canonical text in printer.cpp.
#include "trafficsplit/targeting/targeting.hpp"

#include <memory>
#include <string>
#include <vector>

#include "targeting/lexer.hpp"
#include "targeting/parser.hpp"
#include "targeting/program.hpp"

namespace trafficsplit::targeting {

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
      if (v.type == ValueType::string || (v.type == ValueType::integer && v.form == IntForm::big)) {
        v.text = program_->keep(std::string(v.text));
      }
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
  program_->root = parse(*program_, lex(program_->source));
  program_->analyse();
}

CompiledTargeting::~CompiledTargeting() = default;

const std::vector<std::string>& CompiledTargeting::attributes() const {
  return program_->attributes;
}

const std::vector<std::vector<std::string>>& CompiledTargeting::attribute_paths() const {
  return program_->paths;
}

}  // namespace trafficsplit::targeting