#include <gtest/gtest.h>

#include "trafficsplit/targeting/targeting.hpp"

namespace tg = trafficsplit::targeting;

TEST(Targeting, Compiles) {
  tg::CompiledTargeting t("a == 1");
  EXPECT_EQ(t.attributes().size(), 1u);
}
