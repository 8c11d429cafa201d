/* clock.h: an injectable clock (ms since the epoch) so backoff, leases and delays
 * are tested without sleeping. */
#ifndef HERALD_UTIL_CLOCK_H
#define HERALD_UTIL_CLOCK_H

#include <stdint.h>

struct hclock {
    int64_t (*now_ms)(void *ctx);
    void *ctx;
};

/* hclock_system: the process-wide wall clock (static storage, never freed). */
struct hclock *hclock_system(void);
static inline int64_t hclock_now(const struct hclock *c) { return c->now_ms(c->ctx); }

/* A manual clock for tests: set and advance by hand. Thread-safe. */
struct hclock_manual {
    struct hclock base; /* must be first */
    int64_t now;        /* ms */
};
void hclock_manual_init(struct hclock_manual *m, int64_t start_ms);
void hclock_manual_advance(struct hclock_manual *m, int64_t ms);

/* Wall time helpers (not injectable; for logs and receivedAt formatting). */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/* time_fmt_iso: format ms-since-epoch as "2026-11-28T21:40:00.123Z" into out (>= 25 bytes). */
void time_fmt_iso(int64_t ms, char *out, unsigned cap);
/* time_parse_iso: parse ISO-8601 (date, or date-time with optional fraction and Z or
 * +hh:mm / +hhmm offset) into ms since epoch; returns 0 or HR_INVAL. */
int time_parse_iso(const char *s, unsigned long len, int64_t *out_ms);

/* The instants time_fmt_iso can write with a four-digit year: 0000-01-01 to 9999-12-31. */
#define TIME_ISO_MIN_MS (-62167219200000LL)
#define TIME_ISO_MAX_MS (253402300799999LL)
/* An epoch number below this is seconds, at or above it milliseconds (31557600000 ms is
 * 1971-01-01; Segment's new-date draws the same line). */
#define TIME_EPOCH_SECONDS_BELOW 31557600000.0

/* time_from_epoch: v seconds or milliseconds since the epoch (by TIME_EPOCH_SECONDS_BELOW)
 * into ms, rounded; HR_INVAL when not finite or outside TIME_ISO_MIN_MS..MAX. */
int time_from_epoch(double v, int64_t *out_ms);
/* time_parse_lenient: what time_parse_iso takes, plus the loose forms clients send:
 * one-digit month, day, hour, minute or second ("2015-2-02T0:30:12.984Z"), '/' between
 * date fields, YYYYMMDD, a space before the zone, "UTC"/"GMT" as the zone, surrounding
 * blanks, and a string of 9+ digits as an epoch number (time_from_epoch). No zone means
 * UTC. Returns 0 or HR_INVAL. */
int time_parse_lenient(const char *s, unsigned long len, int64_t *out_ms);

#endif
