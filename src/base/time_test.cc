#include "base/time.h"

#include <gtest/gtest.h>
#include <time.h>

#include <string>

namespace iris {
namespace {

int64_t Ms(std::string_view date) {
  auto r = ParseUtcDate(date);
  EXPECT_TRUE(r.ok()) << date << ": " << r.status().message();
  return r.ok() ? *r : -1;
}

std::string Error(std::string_view date) {
  auto r = ParseUtcDate(date);
  EXPECT_FALSE(r.ok()) << date << " parsed as " << *r;
  return r.ok() ? "" : r.status().message();
}

TEST(ParseUtcDate, ValidDatesAreUtcMidnight) {
  EXPECT_EQ(Ms("1970-01-01"), 0);
  EXPECT_EQ(Ms("1970-01-02"), 86400000);
  EXPECT_EQ(Ms("2024-02-29"), int64_t{1709164800000});  // a leap day
  EXPECT_EQ(Ms("2000-02-29"), int64_t{951782400000});   // divisible by 400: leap
  EXPECT_EQ(Ms("2024-12-31"), int64_t{1735603200000});
  EXPECT_EQ(Ms("1969-12-31"), -86400000);
}

TEST(ParseUtcDate, AgreesWithTimegmOverFourHundredYears) {
  for (int year = 1900; year < 2300; ++year) {
    for (int month = 1; month <= 12; ++month) {
      std::tm tm{};
      tm.tm_year = year - 1900;
      tm.tm_mon = month - 1;
      tm.tm_mday = 1;
      ASSERT_EQ(DaysFromCivil(year, month, 1) * 86400, static_cast<int64_t>(timegm(&tm)))
          << year << "-" << month;
    }
  }
}

TEST(ParseUtcDate, RefusesImpossibleDates) {
  EXPECT_EQ(Error("2024-02-31"), "'2024-02-31' is not a date: February 2024 has days 1 to 29");
  EXPECT_EQ(Error("2023-02-29"), "'2023-02-29' is not a date: February 2023 has days 1 to 28");
  EXPECT_EQ(Error("1900-02-29"), "'1900-02-29' is not a date: February 1900 has days 1 to 28");
  EXPECT_EQ(Error("2024-04-31"), "'2024-04-31' is not a date: April 2024 has days 1 to 30");
  EXPECT_EQ(Error("2024-13-01"), "'2024-13-01' is not a date: month 13 is not 1 to 12");
  EXPECT_EQ(Error("2024-00-10"), "'2024-00-10' is not a date: month 0 is not 1 to 12");
  EXPECT_EQ(Error("2024-01-00"), "'2024-01-00' is not a date: January 2024 has days 1 to 31");
}

TEST(ParseUtcDate, RefusesOtherShapes) {
  for (const char* s : {"", "2024-1-01", "2024-01-1", "+024-01-01", " 2024-01-01", "2024/01/01",
                        "2024-01-01T00", "20240101", "2024-0a-01"}) {
    std::string expected = "'";
    expected.append(s).append("' is not a date: expected YYYY-MM-DD");
    EXPECT_EQ(Error(s), expected);
  }
}

TEST(IsValidDate, LeapYears) {
  EXPECT_TRUE(IsValidDate(2024, 2, 29));
  EXPECT_TRUE(IsValidDate(2000, 2, 29));
  EXPECT_FALSE(IsValidDate(2100, 2, 29));
  EXPECT_FALSE(IsValidDate(2023, 2, 29));
  EXPECT_TRUE(IsValidDate(2023, 12, 31));
  EXPECT_FALSE(IsValidDate(2023, 12, 32));
}

}  // namespace
}  // namespace iris
