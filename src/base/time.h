// The clocks iris reads, in one place: wall time as Unix milliseconds (what the request log
// and the APIs carry), steady time for deadlines and durations, and UTC calendar dates.
#pragma once

#include <chrono>
#include <cstdint>
#include <string_view>

#include "base/status.h"

namespace iris {

// The clock for deadlines, timeouts and measured durations (never goes back).
using SteadyClock = std::chrono::steady_clock;

// Milliseconds since 1970-01-01T00:00:00Z, from the system clock.
inline int64_t NowUnixMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Milliseconds on the steady clock since an unspecified origin: only differences mean
// anything.
inline int64_t SteadyNowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             SteadyClock::now().time_since_epoch())
      .count();
}

// Seconds elapsed on the steady clock since `start`.
inline double SecondsSince(SteadyClock::time_point start) {
  return std::chrono::duration<double>(SteadyClock::now() - start).count();
}

// Whether year-month-day is a day of the proleptic Gregorian calendar (month 1..12, day 1..the
// month's length, February 29 only in leap years).
bool IsValidDate(int year, int month, int day);

// Days from 1970-01-01 to a valid date (negative before 1970). Howard Hinnant's
// days_from_civil (http://howardhinnant.github.io/date_algorithms.html).
int64_t DaysFromCivil(int year, int month, int day);

// "YYYY-MM-DD" (exactly: four digits, two, two) → the Unix milliseconds of that day's UTC
// midnight. InvalidArgument, saying what is wrong, for any other text or an impossible date
// (2024-02-31, 2023-02-29, month 13, day 0).
Result<int64_t> ParseUtcDate(std::string_view text);

}  // namespace iris
