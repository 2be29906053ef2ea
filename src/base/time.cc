// Calendar arithmetic for base/time.h.
#include "base/time.h"

#include <string>

namespace iris {
namespace {

bool IsLeapYear(int year) { return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0; }

int DaysInMonth(int year, int month) {
  static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return month == 2 && IsLeapYear(year) ? 29 : kDays[month - 1];
}

constexpr const char* kMonthNames[12] = {"January",   "February", "March",    "April",
                                         "May",       "June",     "July",     "August",
                                         "September", "October",  "November", "December"};

}  // namespace

bool IsValidDate(int year, int month, int day) {
  return month >= 1 && month <= 12 && day >= 1 && day <= DaysInMonth(year, month);
}

int64_t DaysFromCivil(int year, int month, int day) {
  const int64_t y = static_cast<int64_t>(year) - (month <= 2 ? 1 : 0);
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const int64_t yoe = y - era * 400;                                             // [0, 399]
  const int64_t doy = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1;  // [0, 365]
  const int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;                     // [0, 146096]
  return era * 146097 + doe - 719468;
}

Result<int64_t> ParseUtcDate(std::string_view text) {
  std::string quoted = "'";  // built by appending: GCC 12 warns falsely (-Wrestrict) on "'" + s
  quoted.append(text).append("'");
  bool shape = text.size() == 10 && text[4] == '-' && text[7] == '-';
  for (size_t i = 0; shape && i < text.size(); ++i) {
    shape = i == 4 || i == 7 || (text[i] >= '0' && text[i] <= '9');
  }
  if (!shape) return InvalidArgument(quoted + " is not a date: expected YYYY-MM-DD");
  auto number = [&](size_t at, size_t len) {
    int v = 0;
    for (size_t i = at; i < at + len; ++i) v = v * 10 + (text[i] - '0');
    return v;
  };
  const int year = number(0, 4), month = number(5, 2), day = number(8, 2);
  if (month < 1 || month > 12) {
    return InvalidArgument(quoted + " is not a date: month " + std::to_string(month) +
                           " is not 1 to 12");
  }
  if (!IsValidDate(year, month, day)) {
    return InvalidArgument(quoted + " is not a date: " + kMonthNames[month - 1] + " " +
                           std::to_string(year) + " has days 1 to " +
                           std::to_string(DaysInMonth(year, month)));
  }
  return DaysFromCivil(year, month, day) * 86400000;
}

}  // namespace iris
