// Exceptions thrown by the core; the bindings map each to a trafficsplit.Error subclass.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

namespace trafficsplit {

// A bad function argument (Python: ArgumentError, a ValueError).
class InvalidArgument : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// A bad configuration value: an experiment, allocation step, layer, holdout or named list that
// cannot be compiled (Python: ConfigError, a ValueError). Derived from InvalidArgument so one
// check serves both uses; handlers that tell them apart catch this one first.
class InvalidConfig : public InvalidArgument {
 public:
  using InvalidArgument::InvalidArgument;
};

// A unit id of a type the contract refuses (Python: UnitTypeError, a TypeError).
class UnitTypeError : public std::invalid_argument {
 public:
  UnitTypeError(const std::string& what, size_t row) : std::invalid_argument(what), row_(row) {}
  size_t row() const noexcept { return row_; }

 private:
  size_t row_;
};

// A unit id of an accepted type whose value cannot be hashed, e.g. a lone surrogate
// (Python: UnitValueError, a ValueError).
class UnitValueError : public std::invalid_argument {
 public:
  UnitValueError(const std::string& what, size_t row) : std::invalid_argument(what), row_(row) {}
  size_t row() const noexcept { return row_; }

 private:
  size_t row_;
};

}  // namespace trafficsplit
