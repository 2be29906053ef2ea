#include "gateway/upstream/address_policy.h"

#include <gtest/gtest.h>

namespace iris::gateway::upstream {
namespace {

bool Public(const char* text) { return IsPublicUnicast(boost::asio::ip::make_address(text)); }

TEST(AddressPolicyTest, RefusesEveryInternalIPv4Range) {
  for (const char* a :
       {"0.0.0.0",         "0.1.2.3",      "127.0.0.1",       "127.255.255.254", "10.0.0.1",
        "10.255.255.255",  "172.16.0.1",   "172.31.255.255",  "192.168.1.1",     "169.254.169.254",
        "169.254.0.1",     "100.64.0.1",   "100.127.255.255", "192.0.0.8",       "192.0.2.1",
        "198.18.0.1",      "198.19.255.1", "198.51.100.7",    "203.0.113.9",     "224.0.0.1",
        "239.255.255.250", "240.0.0.1",    "255.255.255.255", "192.88.99.1"}) {
    EXPECT_FALSE(Public(a)) << a;
  }
}

TEST(AddressPolicyTest, AcceptsPublicIPv4) {
  for (const char* a : {"1.1.1.1", "8.8.8.8", "93.184.216.34", "172.15.255.255", "172.32.0.1",
                        "100.63.255.255", "100.128.0.1", "192.169.0.1", "169.253.0.1"}) {
    EXPECT_TRUE(Public(a)) << a;
  }
}

TEST(AddressPolicyTest, RefusesEveryInternalIPv6RangeAndEmbeddedIPv4) {
  for (const char* a : {"::",
                        "::1",
                        "::ffff:127.0.0.1",
                        "::ffff:10.0.0.1",
                        "::ffff:169.254.169.254",
                        "::127.0.0.1",
                        "64:ff9b::7f00:1",
                        "64:ff9b::a00:1",
                        "64:ff9b:1::1",
                        "2002:7f00:1::1",
                        "2002:c0a8:101::1",
                        "fc00::1",
                        "fd00:ec2::254",
                        "fe80::1",
                        "fec0::1",
                        "ff02::1",
                        "2001:db8::1",
                        "2001::1",
                        "100::1",
                        "::ffff:0.0.0.0"}) {
    EXPECT_FALSE(Public(a)) << a;
  }
}

TEST(AddressPolicyTest, AcceptsPublicIPv6) {
  for (const char* a : {"2606:4700:4700::1111", "2a00:1450:4001:800::200e", "::ffff:8.8.8.8",
                        "64:ff9b::808:808", "2002:808:808::1"}) {
    EXPECT_TRUE(Public(a)) << a;
  }
}

}  // namespace
}  // namespace iris::gateway::upstream
