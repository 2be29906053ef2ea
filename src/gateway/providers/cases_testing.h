// For the translation-case runners (tests/gateway_cases/, one folder a case): where the cases
// are and how their files are read. Test-only and header-only.
#pragma once

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include "base/json.h"
#include "base/status.h"

namespace iris::gateway::providers::cases {

inline std::filesystem::path CasesDir() {
  return std::filesystem::path(IRIS_TEST_DATA_DIR) / ".." / "gateway_cases";
}

inline std::string ReadFile(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A case file's JSON; a file that is not JSON fails the test (and reads as null).
inline boost::json::value ReadJson(const std::filesystem::path& p) {
  Result<boost::json::value> v = ParseJson(ReadFile(p), p.string());
  EXPECT_TRUE(v.ok()) << v.status().ToString();
  return v.ok() ? *v : boost::json::value();
}

inline std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace iris::gateway::providers::cases
