// The one reader of the process environment.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace iris {

// The value of environment variable `name`; nullopt when it is unset or empty (every caller
// in iris treats an empty variable as unset, as most tools do). Thread-safe as long as
// nothing modifies the environment concurrently (setenv is only for tests).
std::optional<std::string> GetEnv(std::string_view name);

}  // namespace iris
