// ProxySettings from the environment (curl's conventions), NO_PROXY matching, and the bytes
// sent to a proxy.
#include "net/proxy.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "base/base64.h"

namespace iris::net {
namespace {

using Env = std::map<std::string, std::string>;

Result<ProxySettings> FromMap(const Env& env) {
  return ProxySettings::FromEnv([&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  });
}

TEST(ProxySettingsTest, EnvAndNoProxy) {
  Env env = {{"HTTPS_PROXY", "http://proxy:3128"},
             {"https_proxy", "proxy2:8080"},
             {"NO_PROXY", " localhost, .internal.corp ,10.1.2.3,*.svc:443,[::1]:80"}};
  auto settings = FromMap(env);
  ASSERT_TRUE(settings.ok());
  ASSERT_TRUE(settings->https_proxy.has_value());
  EXPECT_EQ(settings->https_proxy->host, "proxy2");  // lower case wins
  EXPECT_EQ(settings->https_proxy->port, 8080);
  EXPECT_FALSE(settings->http_proxy.has_value());
  EXPECT_NE(settings->ProxyFor("https", "api.openai.com"), nullptr);
  EXPECT_EQ(settings->ProxyFor("http", "api.openai.com"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "localhost"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "LocalHost"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "a.b.internal.corp"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "internal.corp"), nullptr);
  EXPECT_NE(settings->ProxyFor("https", "notinternal.corp"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "10.1.2.3"), nullptr);
  EXPECT_NE(settings->ProxyFor("https", "10.1.2.33"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "x.svc"), nullptr);
  EXPECT_EQ(settings->ProxyFor("https", "::1"), nullptr);
  env["no_proxy"] = "*";
  auto all = FromMap(env);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->ProxyFor("https", "api.openai.com"), nullptr);
}

TEST(ProxySettingsTest, LowerCaseWinsUnlessEmpty) {
  auto settings = FromMap({{"HTTP_PROXY", "http://upper:1"},
                           {"http_proxy", ""},
                           {"HTTPS_PROXY", "http://upper:2"},
                           {"https_proxy", "http://lower:3"},
                           {"NO_PROXY", "upper.example"},
                           {"no_proxy", "lower.example"}});
  ASSERT_TRUE(settings.ok());
  ASSERT_TRUE(settings->http_proxy.has_value());
  EXPECT_EQ(settings->http_proxy->host, "upper");
  EXPECT_EQ(settings->https_proxy->host, "lower");
  EXPECT_EQ(settings->ProxyFor("https", "lower.example"), nullptr);
  EXPECT_NE(settings->ProxyFor("https", "upper.example"), nullptr);
  auto none = FromMap({});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->ProxyFor("https", "huggingface.co"), nullptr);
  EXPECT_EQ(none->ProxyFor("http", "huggingface.co"), nullptr);
}

TEST(ProxySettingsTest, BadProxiesAreErrorsThatKeepThePasswordOut) {
  auto socks = FromMap({{"HTTPS_PROXY", "socks5://user:s3cret@p:1"}});
  ASSERT_FALSE(socks.ok());
  EXPECT_EQ(socks.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(socks.status().message().find("HTTPS_PROXY"), std::string::npos);
  EXPECT_NE(socks.status().message().find("socks5://"), std::string::npos);
  EXPECT_EQ(socks.status().message().find("s3cret"), std::string::npos);
  auto https = FromMap({{"http_proxy", "https://p:1"}});
  ASSERT_FALSE(https.ok());
  EXPECT_NE(https.status().message().find("HTTP_PROXY"), std::string::npos);
  auto garbage = FromMap({{"https_proxy", "http://user:s3cret@p:99999"}});
  ASSERT_FALSE(garbage.ok());
  EXPECT_NE(garbage.status().message().find("HTTPS_PROXY"), std::string::npos);
  EXPECT_EQ(garbage.status().message().find("s3cret"), std::string::npos);
}

TEST(ProxyTest, AuthorizationDecodesTheUserinfo) {
  auto plain = ParseUrl("http://user:pass@p:3128");
  ASSERT_TRUE(plain.ok());
  EXPECT_EQ(ProxyAuthorization(*plain), "Basic dXNlcjpwYXNz");
  // '@' and ':' inside user or password are percent-encoded in the URL, not on the wire.
  auto encoded = ParseUrl("http://me%40corp:p%3Ass%25@p:3128");
  ASSERT_TRUE(encoded.ok());
  EXPECT_EQ(ProxyAuthorization(*encoded), "Basic " + Base64Encode("me@corp:p:ss%"));
  auto user_only = ParseUrl("http://me@p:3128");
  ASSERT_TRUE(user_only.ok());
  EXPECT_EQ(ProxyAuthorization(*user_only), "Basic " + Base64Encode("me"));
  auto none = ParseUrl("http://p:3128");
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(ProxyAuthorization(*none), "");
}

TEST(ProxyTest, ConnectRequest) {
  auto target = ParseUrl("https://huggingface.co/api/models");
  auto v6 = ParseUrl("https://[2001:db8::1]:8443/");
  auto proxy = ParseUrl("http://p:3128");
  auto authed = ParseUrl("http://user:pass@p:3128");
  ASSERT_TRUE(target.ok() && v6.ok() && proxy.ok() && authed.ok());
  EXPECT_EQ(ConnectRequest(*target, *proxy),
            "CONNECT huggingface.co:443 HTTP/1.1\r\nHost: huggingface.co:443\r\n\r\n");
  EXPECT_EQ(ConnectRequest(*v6, *proxy),
            "CONNECT [2001:db8::1]:8443 HTTP/1.1\r\nHost: [2001:db8::1]:8443\r\n\r\n");
  EXPECT_EQ(ConnectRequest(*target, *authed),
            "CONNECT huggingface.co:443 HTTP/1.1\r\nHost: huggingface.co:443\r\n"
            "Proxy-Authorization: Basic dXNlcjpwYXNz\r\n\r\n");
}

}  // namespace
}  // namespace iris::net
