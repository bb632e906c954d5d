// GoogleTest: moments (filled in by its area).
#include <gtest/gtest.h>
