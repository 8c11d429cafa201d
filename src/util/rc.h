/* rc.h: herald's one result-code enum and the error-detail record that travels beside it.
 * 0 is success; every failure is negative, so `rc < 0` is the test. */
#ifndef HERALD_UTIL_RC_H
#define HERALD_UTIL_RC_H

#include <stdarg.h>

#define HR_RC_MAP(X)                                  \
    X(OK, 0, "ok")                                    \
    X(AGAIN, -1, "try again")                         \
    X(NOMEM, -2, "out of memory")                     \
    X(INVAL, -3, "invalid argument")                  \
    X(NOTFOUND, -4, "not found")                      \
    X(CONFLICT, -5, "conflict")                       \
    X(IO, -6, "i/o error")                            \
    X(TOOBIG, -7, "too large")                        \
    X(BUSY, -8, "busy")                               \
    X(FULL, -9, "storage full")                       \
    X(PERM, -10, "permission denied")                 \
    X(TIMEOUT, -11, "timed out")                      \
    X(UNAVAIL, -12, "unavailable")

#define HR_RC_ENUM(n, v, s) HR_##n = v,
enum hr_rc { HR_RC_MAP(HR_RC_ENUM) };
#undef HR_RC_ENUM

#if defined(__GNUC__)
#define HR_MUSTCHECK __attribute__((warn_unused_result))
#define HR_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define HR_MUSTCHECK
#define HR_PRINTF(a, b)
#endif

/* Error detail: the code plus a human sentence safe to show to an API caller. */
struct herr {
    int rc;        /* enum hr_rc */
    char msg[256]; /* NUL-terminated, may be empty */
};

/* hr_rc_str: static name of rc ("ok", "not found", ...); never NULL. */
const char *hr_rc_str(int rc);

/* herr_set: fill err (may be NULL) with rc and a formatted message; returns rc. */
int herr_set(struct herr *err, int rc, const char *fmt, ...) HR_PRINTF(3, 4);

/* herr_clear: reset err (may be NULL) to HR_OK with an empty message. */
void herr_clear(struct herr *err);

#endif
