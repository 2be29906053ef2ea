#include "base/mapped_file.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

namespace iris {
namespace {

constexpr uintptr_t kHuge = uintptr_t{2} << 20;

TEST(AnonymousBufferTest, IsZeroedAlignedToHugePagesAndRoundedUp) {
  for (size_t bytes : {size_t{1}, size_t{4096}, (size_t{2} << 20) + 1, size_t{5} << 20}) {
    auto b = AnonymousBuffer::Allocate(bytes);
    ASSERT_TRUE(b.ok()) << b.status().ToString();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b->data()) % kHuge, 0u);
    EXPECT_EQ(b->size() % kHuge, 0u);
    EXPECT_GE(b->size(), bytes);
    EXPECT_LT(b->size(), bytes + kHuge);
    for (size_t i = 0; i < b->size(); i += 4093) ASSERT_EQ(b->data()[i], 0) << i;
    b->data()[b->size() - 1] = 7;  // writable to its end
  }
}

TEST(AnonymousBufferTest, EmptyAndMovedBuffersHoldNothing) {
  auto empty = AnonymousBuffer::Allocate(0);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->data(), nullptr);
  EXPECT_EQ(empty->size(), 0u);

  auto a = AnonymousBuffer::Allocate(100);
  ASSERT_TRUE(a.ok());
  uint8_t* p = a->data();
  p[0] = 42;
  AnonymousBuffer b = std::move(*a);
  EXPECT_EQ(a->data(), nullptr);
  EXPECT_EQ(b.data(), p);
  EXPECT_EQ(b.data()[0], 42);
  auto c = AnonymousBuffer::Allocate(100);
  ASSERT_TRUE(c.ok());
  b = std::move(*c);  // the first mapping goes; the second is b's now
  EXPECT_NE(b.data(), nullptr);
  EXPECT_EQ(b.data()[0], 0);
}

TEST(AnonymousBufferTest, AnImpossibleSizeIsAnError) {
  auto b = AnonymousBuffer::Allocate(SIZE_MAX - 10);
  ASSERT_FALSE(b.ok());
  EXPECT_EQ(b.status().code(), ErrorCode::kResourceExhausted);
  auto huge = AnonymousBuffer::Allocate(size_t{1} << 62);  // more than any address space
  ASSERT_FALSE(huge.ok());
  EXPECT_EQ(huge.status().code(), ErrorCode::kResourceExhausted);
  EXPECT_NE(huge.status().message().find("cannot allocate"), std::string::npos);
}

}  // namespace
}  // namespace iris
