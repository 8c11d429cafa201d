/* clock.c: system and manual clocks, ISO-8601 formatting and parsing. */
#include "clock.h"

#include "rc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int64_t time_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t sys_now(void *ctx)
{
    (void)ctx;
    return time_now_ms();
}

struct hclock *hclock_system(void)
{
    static struct hclock c = {sys_now, NULL};
    return &c;
}

static int64_t manual_now(void *ctx)
{
    struct hclock_manual *m = ctx;
    return __atomic_load_n(&m->now, __ATOMIC_SEQ_CST);
}

void hclock_manual_init(struct hclock_manual *m, int64_t start_ms)
{
    m->base.now_ms = manual_now;
    m->base.ctx = m;
    m->now = start_ms;
}

void hclock_manual_advance(struct hclock_manual *m, int64_t ms)
{
    __atomic_add_fetch(&m->now, ms, __ATOMIC_SEQ_CST);
}

void time_fmt_iso(int64_t ms, char *out, unsigned cap)
{
    struct tm tm;
    time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    int frac = (int)(ms - (int64_t)secs * 1000);
    gmtime_r(&secs, &tm);
    int year = tm.tm_year + 1900;
    if (year >= 0 && year <= 9999 && cap >= 25) {
        /* what the snprintf below writes, digit by digit: every ingested event's
         * timestamp passes here, and printf's machinery was 4 % of parsing a batch */
        const int f[7] = {year, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                          frac};
        static const char sep[7] = {'-', '-', 'T', ':', ':', '.', 'Z'};
        char *p = out;
        for (int i = 0; i < 7; i++) {
            int w = i == 0 ? 4 : i == 6 ? 3 : 2, v = f[i];
            for (int k = w - 1; k >= 0; k--, v /= 10)
                p[k] = (char)('0' + v % 10);
            p += w;
            *p++ = sep[i];
        }
        *p = '\0';
        return;
    }
    snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", year, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
}

/* days_from_civil: Howard Hinnant's algorithm, days since 1970-01-01. */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    const int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = (unsigned)(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

static int digits(const char *s, unsigned long len, unsigned long *i, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return -1;
        v = v * 10 + (s[*i] - '0');
        (*i)++;
    }
    *out = v;
    return 0;
}

/* upto: 1..n digits at *i into *out; -1 when there is none. */
static int upto(const char *s, unsigned long len, unsigned long *i, int n, int *out)
{
    int v = 0, k = 0;
    while (k < n && *i < len && s[*i] >= '0' && s[*i] <= '9') {
        v = v * 10 + (s[*i] - '0');
        (*i)++;
        k++;
    }
    *out = v;
    return k ? 0 : -1;
}

/* field: exactly n digits at *i, or with loose 1..n. */
static int field(const char *s, unsigned long len, unsigned long *i, int n, bool loose, int *out)
{
    return loose ? upto(s, len, i, n, out) : digits(s, len, i, n, out);
}

/* finish: validate the date y-mo-d, read what follows it at s[i..len) (nothing, or 'T',
 * 't' or ' ' and a time with optional fraction and zone; loose also takes one-digit time
 * fields, a space before the zone and "UTC"/"GMT") and put the instant in *out_ms. */
static int finish(const char *s, unsigned long len, unsigned long i, bool loose, int y, int mo,
                  int d, int64_t *out_ms)
{
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int h = 0, mi = 0, se = 0, ms = 0, off = 0;
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1])
        return HR_INVAL;
    if (i < len) {
        if (s[i] != 'T' && s[i] != 't' && s[i] != ' ')
            return HR_INVAL;
        i++;
        if (field(s, len, &i, 2, loose, &h) || i >= len || s[i++] != ':' ||
            field(s, len, &i, 2, loose, &mi))
            return HR_INVAL;
        if (i < len && s[i] == ':') {
            i++;
            if (field(s, len, &i, 2, loose, &se))
                return HR_INVAL;
            if (i < len && (s[i] == '.' || s[i] == ',')) {
                int k = 0;
                i++;
                if (i >= len || s[i] < '0' || s[i] > '9')
                    return HR_INVAL;
                for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, k++)
                    if (k < 3)
                        ms = ms * 10 + (s[i] - '0');
                for (; k < 3; k++)
                    ms *= 10;
            }
        }
        if (h > 23 || mi > 59 || se > 60)
            return HR_INVAL;
        if (loose && i < len && s[i] == ' ')
            i++;
        if (i < len) {
            if (s[i] == 'Z' || s[i] == 'z') {
                i++;
            } else if (loose && len - i == 3 && (strncasecmp(s + i, "UTC", 3) == 0 ||
                                                 strncasecmp(s + i, "GMT", 3) == 0)) {
                i += 3;
            } else if (s[i] == '+' || s[i] == '-') {
                int sign = s[i] == '-' ? -1 : 1, oh, om = 0;
                i++;
                if (digits(s, len, &i, 2, &oh))
                    return HR_INVAL;
                if (i < len && s[i] == ':')
                    i++;
                if (i < len && digits(s, len, &i, 2, &om))
                    return HR_INVAL;
                if (oh > 23 || om > 59)
                    return HR_INVAL;
                off = sign * (oh * 60 + om);
            } else {
                return HR_INVAL;
            }
        }
        if (i != len)
            return HR_INVAL;
    }
    int64_t days = days_from_civil(y, (unsigned)mo, (unsigned)d);
    *out_ms = ((days * 86400 + h * 3600 + mi * 60 + se) - (int64_t)off * 60) * 1000 + ms;
    return HR_OK;
}

int time_parse_iso(const char *s, unsigned long len, int64_t *out_ms)
{
    unsigned long i = 0;
    int y, mo, d;
    if (digits(s, len, &i, 4, &y) || i >= len || s[i++] != '-' || digits(s, len, &i, 2, &mo) ||
        i >= len || s[i++] != '-' || digits(s, len, &i, 2, &d))
        return HR_INVAL;
    return finish(s, len, i, false, y, mo, d, out_ms);
}


int time_from_epoch(double v, int64_t *out_ms)
{
    if (!(v == v) || v <= -1e15 || v >= 1e15) /* NaN, or far outside any ISO year */
        return HR_INVAL;
    if (v < TIME_EPOCH_SECONDS_BELOW)
        v *= 1000;
    int64_t ms = (int64_t)(v < 0 ? v - 0.5 : v + 0.5);
    if (ms < TIME_ISO_MIN_MS || ms > TIME_ISO_MAX_MS)
        return HR_INVAL;
    *out_ms = ms;
    return HR_OK;
}

/* epoch_text: a string of 9 or more digits (with an optional fraction) as an epoch
 * number, as Segment's new-date reads "1420000000" and "1420000000000". */
static int epoch_text(const char *s, unsigned long len, int64_t *out_ms)
{
    char buf[32];
    unsigned long i = 0, intd = 0;
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    intd = i;
    if (i < len && s[i] == '.') {
        i++;
        while (i < len && s[i] >= '0' && s[i] <= '9')
            i++;
    }
    if (intd < 9 || i != len || len >= sizeof buf)
        return HR_INVAL;
    memcpy(buf, s, len);
    buf[len] = '\0';
    return time_from_epoch(strtod(buf, NULL), out_ms);
}

int time_parse_lenient(const char *s, unsigned long len, int64_t *out_ms)
{
    unsigned long i = 0;
    int y, mo, d;
    char sep;
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
        len--;
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    s += i;
    len -= i;
    i = 0;
    if (epoch_text(s, len, out_ms) == HR_OK)
        return HR_OK;
    /* YYYY-M-D or YYYY/M/D (one or two digits), or YYYYMMDD */
    if (digits(s, len, &i, 4, &y) || i >= len)
        return HR_INVAL;
    sep = s[i];
    if (sep == '-' || sep == '/') {
        i++;
        if (upto(s, len, &i, 2, &mo) || i >= len || s[i++] != sep || upto(s, len, &i, 2, &d))
            return HR_INVAL;
    } else if (digits(s, len, &i, 2, &mo) || digits(s, len, &i, 2, &d)) {
        return HR_INVAL;
    }
    return finish(s, len, i, true, y, mo, d, out_ms);
}
