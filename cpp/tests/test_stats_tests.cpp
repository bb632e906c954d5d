// GoogleTest: stats_tests (filled in by its area).
#include <gtest/gtest.h>
