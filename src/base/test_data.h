// For tests: a path under the repository's tests/data, which every module's test binary names
// in IRIS_TEST_DATA_DIR (cmake/IrisModule.cmake). Header-only; only tests include it.
#pragma once

#include <string>

namespace iris {

inline std::string TestData(const std::string& rel) {
  return std::string(IRIS_TEST_DATA_DIR) + "/" + rel;
}

}  // namespace iris
