/* log.c: key=value line logger. */
#include "log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static _Atomic int g_level = LOG_INFO;
/* g_stream under g_stream_lock: each line holds it shared, log_set_stream exclusive */
static FILE *g_stream;
static pthread_rwlock_t g_stream_lock = PTHREAD_RWLOCK_INITIALIZER;
static _Thread_local char t_rid[72];

int log_level_parse(const char *s, enum log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i < 5; i++)
        if (strcmp(s, names[i]) == 0) {
            *out = (enum log_level)i;
            return HR_OK;
        }
    return HR_INVAL;
}

void log_set_level(enum log_level lvl) { atomic_store(&g_level, (int)lvl); }
enum log_level log_get_level(void) { return (enum log_level)atomic_load(&g_level); }
void log_set_stream(FILE *f)
{
    pthread_rwlock_wrlock(&g_stream_lock);
    g_stream = f;
    pthread_rwlock_unlock(&g_stream_lock);
}

void log_set_rid(const char *rid)
{
    if (!rid)
        t_rid[0] = '\0';
    else
        snprintf(t_rid, sizeof t_rid, "%s", rid);
}

const char *log_get_rid(void) { return t_rid; }

char *log_q(char *out, size_t cap, const char *s)
{
    size_t o = 0;
    if (cap < 3) {
        if (cap)
            out[0] = '\0';
        return out;
    }
    out[o++] = '"';
    for (; s && *s && o + 6 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    out[o++] = '"';
    out[o] = '\0';
    return out;
}

void log_emit(enum log_level lvl, const char *event, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error", "off"};
    char line[4096];
    struct timeval tv;
    struct tm tm;
    size_t n;
    int k;
    va_list ap;
    FILE *f;

    if ((int)lvl < atomic_load(&g_level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    k = snprintf(line, sizeof line, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s event=%s",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000), names[lvl], event);
    n = k > 0 ? (size_t)k : 0;
    if (t_rid[0] && n < sizeof line) {
        k = snprintf(line + n, sizeof line - n, " rid=%s", t_rid);
        n += k > 0 ? (size_t)k : 0;
    }
    if (fmt && fmt[0] && n + 1 < sizeof line) {
        line[n++] = ' ';
        va_start(ap, fmt);
        k = vsnprintf(line + n, sizeof line - n, fmt, ap);
        va_end(ap);
        n += k > 0 ? (size_t)k : 0;
    }
    if (n > sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    pthread_rwlock_rdlock(&g_stream_lock);
    f = g_stream ? g_stream : stderr;
    fflush(f);
    if (write(fileno(f), line, n) < 0) {
        /* nowhere left to report it */
    }
    pthread_rwlock_unlock(&g_stream_lock);
}
