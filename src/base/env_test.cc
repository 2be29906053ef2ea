#include "base/env.h"

#include <gtest/gtest.h>
#include <stdlib.h>

namespace iris {
namespace {

TEST(GetEnv, UnsetAndEmptyAreBothNullopt) {
  ::unsetenv("IRIS_ENV_TEST");
  EXPECT_EQ(GetEnv("IRIS_ENV_TEST"), std::nullopt);
  ::setenv("IRIS_ENV_TEST", "", 1);
  EXPECT_EQ(GetEnv("IRIS_ENV_TEST"), std::nullopt);
  ::setenv("IRIS_ENV_TEST", "a value", 1);
  EXPECT_EQ(GetEnv("IRIS_ENV_TEST"), "a value");
  ::unsetenv("IRIS_ENV_TEST");
}

}  // namespace
}  // namespace iris
