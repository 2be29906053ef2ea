// net::ParseUrl and the URL helpers: what is accepted, what is refused so that nothing unsafe
// reaches the wire, redirects, percent-encoding and query parameters.
#include "net/url.h"

#include <gtest/gtest.h>

#include <string>

namespace iris::net {
namespace {

// The value, or "error: " and the message, so that one EXPECT_EQ shows either.
std::string Shown(const Result<std::string>& r) {
  return r.ok() ? *r : "error: " + r.status().message();
}

TEST(UrlTest, Parses) {
  auto u = ParseUrl("https://api.openai.com/v1/chat/completions?x=1#frag");
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->scheme, "https");
  EXPECT_EQ(u->host, "api.openai.com");
  EXPECT_EQ(u->port, 443);
  EXPECT_EQ(u->target, "/v1/chat/completions?x=1");
  auto v6 = ParseUrl("http://[::1]:8080");
  ASSERT_TRUE(v6.ok());
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 8080);
  EXPECT_EQ(v6->target, "/");
  auto q = ParseUrl("HTTP://u:p@h?q");
  ASSERT_TRUE(q.ok());
  EXPECT_EQ(q->scheme, "http");
  EXPECT_EQ(q->userinfo, "u:p");
  EXPECT_EQ(q->target, "/?q");
  auto upper = ParseUrl("https://HuggingFace.CO:00443/api");
  ASSERT_TRUE(upper.ok());
  EXPECT_EQ(upper->host, "huggingface.co");
  EXPECT_EQ(upper->port, 443);
  EXPECT_FALSE(ParseUrl("ftp://x").ok());
  EXPECT_FALSE(ParseUrl("http://h:99999/").ok());
  EXPECT_FALSE(ParseUrl("http://h:65536/").ok());
  EXPECT_FALSE(ParseUrl("http://h:000080/").ok());
  EXPECT_FALSE(ParseUrl("http:///path").ok());
  EXPECT_FALSE(ParseUrl("huggingface.co/api").ok());
  EXPECT_FALSE(ParseUrl("").ok());
}

TEST(UrlTest, RefusesWhatCannotGoOnTheWire) {
  for (std::string url : {std::string("http://h/a b"), std::string("http://h/a\r\nHost: x"),
                          std::string("http://h/\n"), std::string("http://h/a\0b", 12),
                          std::string("http://h/%zz"), std::string("http://h/%4"),
                          std::string("http://h%2Fevil/"), std::string("http://h/caf\xc3\xa9"),
                          std::string("http://h/x HTTP/1.1\r\n\r\nGET /planted HTTP/1.1"),
                          std::string("http://[v1.x]/"), std::string("http://h:0/"),
                          std::string("http://h:/x"), std::string("http://a@b@c/"),
                          std::string("http://a@b:80@c"), std::string("http://[::1]@x/")}) {
    EXPECT_FALSE(ParseUrl(url).ok()) << url;
  }
  auto ok = ParseUrl("http://h/a%20b?q=%2F");
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(ok->target, "/a%20b?q=%2F");
}

// A URL is bounded, so that its target and its absolute form (to a proxy) always make a valid
// request line, however long the path a caller or a redirect sends.
TEST(UrlTest, RefusesAUrlOverTheBound) {
  const std::string head = "https://generativelanguage.googleapis.com/";
  const std::string longest = head + std::string(kMaxUrlBytes - head.size(), 'a');
  auto at_bound = ParseUrl(longest);
  ASSERT_TRUE(at_bound.ok());
  EXPECT_EQ(at_bound->target.size(), kMaxUrlBytes - head.size() + 1);
  auto over = ParseUrl(longest + "a");
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(over.status().message(), "a URL of 8193 bytes (at most 8192)");
  // The 64 KiB path the fuzz driver found, which parsed and then made an invalid request line.
  EXPECT_FALSE(ParseUrl(head + std::string(64 << 10, 'v')).ok());
  // A redirect's Location resolves to a long URL, which ParseUrl then refuses.
  auto resolved = ResolveReference("https://hub.test/a/b?c", "/" + std::string(kMaxUrlBytes, 'x'));
  ASSERT_TRUE(resolved.ok());
  EXPECT_FALSE(ParseUrl(*resolved).ok());
}

TEST(UrlTest, ErrorsDoNotEchoTheUrl) {
  auto bad = ParseUrl("http://user:s3cret@h:99999/");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), ErrorCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message().find("s3cret"), std::string::npos) << bad.status().message();
}

TEST(UrlTest, HostPortHostHeaderAndAbsoluteTarget) {
  EXPECT_EQ(HostPort("h", 80), "h:80");
  EXPECT_EQ(HostPort("::1", 8080), "[::1]:8080");
  auto plain = ParseUrl("http://h/x?y");
  auto odd = ParseUrl("https://h:8443/x");
  auto v6 = ParseUrl("https://[::1]/x");
  auto v6_port = ParseUrl("http://[::1]:81");
  ASSERT_TRUE(plain.ok() && odd.ok() && v6.ok() && v6_port.ok());
  EXPECT_EQ(HostHeader(*plain), "h");
  EXPECT_EQ(HostHeader(*odd), "h:8443");
  EXPECT_EQ(HostHeader(*v6), "[::1]");
  EXPECT_EQ(HostHeader(*v6_port), "[::1]:81");
  EXPECT_EQ(AbsoluteTarget(*plain), "http://h:80/x?y");
  EXPECT_EQ(AbsoluteTarget(*v6_port), "http://[::1]:81/");
  EXPECT_TRUE(SameOrigin(*plain, *ParseUrl("HTTP://H:80/other")));
  EXPECT_FALSE(SameOrigin(*plain, *ParseUrl("https://h:80/x")));
  EXPECT_FALSE(SameOrigin(*plain, *ParseUrl("http://h:81/x")));
  EXPECT_FALSE(SameOrigin(*plain, *ParseUrl("http://g/x")));
}

TEST(UrlTest, ResolvesRedirectLocations) {
  auto resolve = [](std::string_view base, std::string_view ref) {
    return Shown(ResolveReference(base, ref));
  };
  EXPECT_EQ(resolve("http://h:1/a/b?x", "/c"), "http://h:1/c");
  EXPECT_EQ(resolve("http://h:1/a/b", "c"), "http://h:1/a/c");
  EXPECT_EQ(resolve("http://h:1/a/b", "../c?d=1"), "http://h:1/c?d=1");
  EXPECT_EQ(resolve("http://h:1/a", "https://cdn/x"), "https://cdn/x");
  EXPECT_EQ(resolve("https://h/a", "//cdn.example/x"), "https://cdn.example/x");
  EXPECT_EQ(resolve("https://h/a/b", "?q"), "https://h/a/b?q");
  EXPECT_FALSE(ResolveReference("https://h/a", "/a b").ok());
  EXPECT_FALSE(ResolveReference("https://h/a", "/x\r\nSet-Cookie: y").ok());
  EXPECT_FALSE(ResolveReference("https://h/a", "http://[bad/").ok());
  EXPECT_FALSE(ResolveReference("not a url", "/x").ok());
  EXPECT_FALSE(ResolveReference("/relative", "/x").ok());
}

TEST(UrlTest, PercentEncodes) {
  EXPECT_EQ(PercentEncode("AZaz09-._~"), "AZaz09-._~");
  EXPECT_EQ(PercentEncode("refs/pr/1"), "refs%2Fpr%2F1");
  EXPECT_EQ(PercentEncode("refs/pr/1", /*keep_slash=*/true), "refs/pr/1");
  EXPECT_EQ(PercentEncode("a b?#%+\xc3\xa9", true), "a%20b%3F%23%25%2B%C3%A9");
  EXPECT_EQ(PercentEncode(""), "");
}

TEST(UrlTest, QueryParam) {
  auto get = [](std::string_view query, std::string_view key) {
    return Shown(QueryParam(query, key));
  };
  EXPECT_EQ(get("provider=openai&model=gpt-4o", "model"), "gpt-4o");
  EXPECT_EQ(get("model=a+b%20c%2Bd", "model"), "a b c+d");
  EXPECT_EQ(get("model=first&model=second", "model"), "first");
  EXPECT_EQ(get("model=x", "provider"), "");
  EXPECT_EQ(get("model", "model"), "");
  EXPECT_EQ(get("model=", "model"), "");
  EXPECT_EQ(get("", "model"), "");
  EXPECT_EQ(get("Model=x", "model"), "");  // keys are case-sensitive
  EXPECT_EQ(get("a=%C3%A9", "a"), "\xc3\xa9");
  // A view into a longer buffer is read to its end and no further.
  const std::string buffer = "model=a&x=1";
  EXPECT_EQ(get(std::string_view(buffer).substr(0, 7), "model"), "a");
  EXPECT_EQ(get(std::string_view(buffer).substr(0, 7), "x"), "");
  EXPECT_EQ(get(std::string_view(buffer).substr(0, 6), "model"), "");
  for (std::string_view bad : {"model=%zz", "model=%4", "model=a b", "model=\r\n"}) {
    Result<std::string> r = QueryParam(bad, "model");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), ErrorCode::kInvalidArgument);
  }
}

}  // namespace
}  // namespace iris::net
