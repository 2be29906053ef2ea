// Invariant checks. IRIS_CHECK is always on; IRIS_DCHECK only in debug builds.
// Never CHECK what came from a file, the network or a config: return a Status instead.
#pragma once

namespace iris::internal {
[[noreturn]] void CheckFailed(const char* file, int line, const char* expr, const char* msg);
}  // namespace iris::internal

#define IRIS_CHECK(cond)                                                 \
  do {                                                                   \
    if (!(cond)) [[unlikely]]                                            \
      ::iris::internal::CheckFailed(__FILE__, __LINE__, #cond, nullptr); \
  } while (0)

#define IRIS_CHECK_MSG(cond, msg)                                      \
  do {                                                                 \
    if (!(cond)) [[unlikely]]                                          \
      ::iris::internal::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

#ifdef NDEBUG
#define IRIS_DCHECK(cond) \
  do {                    \
  } while (false && (cond))
#else
#define IRIS_DCHECK(cond) IRIS_CHECK(cond)
#endif
