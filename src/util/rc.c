/* rc.c: names of result codes and the error-detail helpers. */
#include "rc.h"

#include <stdio.h>

const char *hr_rc_str(int rc)
{
    switch (rc) {
#define HR_RC_CASE(n, v, s) \
    case v:                 \
        return s;
        HR_RC_MAP(HR_RC_CASE)
#undef HR_RC_CASE
    }
    return "unknown error";
}

int herr_set(struct herr *err, int rc, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        err->rc = rc;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return rc;
}

void herr_clear(struct herr *err)
{
    if (err) {
        err->rc = 0;
        err->msg[0] = '\0';
    }
}
