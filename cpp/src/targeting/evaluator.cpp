// The per-request evaluation: one Value per attribute.
#include "targeting/evaluator.hpp"

namespace trafficsplit::targeting {

Truth CompiledTargeting::evaluate(const Value* attribute_values) const {
  Scratch scratch;
  SlotRow row{attribute_values};
  return Evaluator<SlotRow>(*program_, row, scratch).truth(program_->root);
}

}  // namespace trafficsplit::targeting
