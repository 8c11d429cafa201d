/* log.h: structured logs, one line per event in key=value form:
 *   ts=2026-11-28T21:40:00.123Z level=info event=http.request rid=... key=value ...
 * The request id of the calling thread (log_set_rid) is added automatically.
 * Callers must never pass secrets (keys, provider credentials) to these functions. */
#ifndef HERALD_UTIL_LOG_H
#define HERALD_UTIL_LOG_H

#include "rc.h"

#include <stdio.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

/* log_level_parse: "debug|info|warn|error|off" -> level; returns 0 or HR_INVAL. */
int log_level_parse(const char *s, enum log_level *out);
void log_set_level(enum log_level lvl);
enum log_level log_get_level(void);
/* log_set_stream: where lines go (NULL: stderr, the default); the caller keeps owning
 * f. Waits for lines being written to the previous stream, so once it returns the
 * previous stream may be closed. Any thread. */
void log_set_stream(FILE *f);
/* log_set_rid: request id for this thread's lines (copied; NULL clears). */
void log_set_rid(const char *rid);
const char *log_get_rid(void);

/* log_emit: `event` is a dotted name; `fmt` formats the rest of the line as
 * key=value pairs. Values with spaces should be quoted by the caller via %s with
 * log_q(). Thread-safe: one write() per line. */
void log_emit(enum log_level lvl, const char *event, const char *fmt, ...) HR_PRINTF(3, 4);

#define LOG_D(ev, ...) do { if (log_get_level() <= LOG_DEBUG) log_emit(LOG_DEBUG, ev, __VA_ARGS__); } while (0)
#define LOG_I(ev, ...) do { if (log_get_level() <= LOG_INFO) log_emit(LOG_INFO, ev, __VA_ARGS__); } while (0)
#define LOG_W(ev, ...) do { if (log_get_level() <= LOG_WARN) log_emit(LOG_WARN, ev, __VA_ARGS__); } while (0)
#define LOG_E(ev, ...) do { if (log_get_level() <= LOG_ERROR) log_emit(LOG_ERROR, ev, __VA_ARGS__); } while (0)

/* log_q: quote a value for a key=value line into out (cap bytes); returns out.
 * Escapes quotes, backslashes and control characters. */
char *log_q(char *out, size_t cap, const char *s);

#endif
