#include "base/status.h"

#include <gtest/gtest.h>

namespace iris {
namespace {

Result<int> Half(int x) {
  if (x % 2 != 0) return InvalidArgument("odd: " + std::to_string(x));
  return x / 2;
}

Result<int> Quarter(int x) {
  IRIS_ASSIGN_OR_RETURN(int h, Half(x));
  IRIS_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

Status CheckEven(int x) {
  IRIS_RETURN_IF_ERROR(Half(x));
  return OkStatus();
}

TEST(StatusTest, PropagatesErrorsAndValues) {
  EXPECT_EQ(*Quarter(8), 2);
  Result<int> r = Quarter(6);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "odd: 3");
  EXPECT_TRUE(CheckEven(4).ok());
  EXPECT_EQ(CheckEven(5).ToString(), "InvalidArgument: odd: 5");
}

TEST(StatusTest, WithContextPrefixesMessage) {
  Status s = NotFound("x").WithContext("model.safetensors");
  EXPECT_EQ(s.code(), ErrorCode::kNotFound);
  EXPECT_EQ(s.message(), "model.safetensors: x");
  EXPECT_TRUE(OkStatus().WithContext("y").ok());
}

}  // namespace
}  // namespace iris
