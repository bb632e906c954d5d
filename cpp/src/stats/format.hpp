// Number formatting for error messages of the statistics kernels.
#pragma once

#include <string>

namespace trafficsplit::stats {

// Shortest readable form of x (12 significant digits) for messages.
std::string format_number(double x);

}  // namespace trafficsplit::stats
