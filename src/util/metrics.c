/* metrics.c: the process-wide metrics registry. Every series (a family name plus up to
 * two label values) lives in one open-addressing hash table under one mutex; the
 * number of series is capped (SERIES_MAX) so a bug that puts unbounded values in a
 * label costs a counter (herald_metrics_dropped_series_total), not memory. Rendering
 * sorts the series by family and labels, so the output is stable. */
#include "metrics.h"

#include "xalloc.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SERIES_MAX 4096
#define TABLE_SIZE 8192 /* power of two, > SERIES_MAX */
#define VALUE_MAX 64    /* label value bytes, with the NUL */

#define F_REQS "herald_http_requests_total"
#define F_DUR "herald_http_request_duration_seconds"
#define F_JOBS "herald_jobs_total"
#define F_DROPPED "herald_metrics_dropped_series_total"

static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                0.25,  0.5,    1,     2.5,  5,     10};
static const char *const bound_txt[] = {"0.001", "0.0025", "0.005", "0.01", "0.025",
                                        "0.05",  "0.1",    "0.25",  "0.5",  "1",
                                        "2.5",   "5",      "10"};
#define NBOUNDS (sizeof bounds / sizeof bounds[0])

enum mtype { M_COUNTER, M_HISTOGRAM, M_GAUGE };

struct series {
    const char *family; /* static */
    const char *help;   /* static */
    enum mtype type;
    const char *lname[2]; /* static; NULL when unused */
    char lval[2][VALUE_MAX];
    double value;                /* counters */
    uint64_t buckets[NBOUNDS];   /* histograms: cumulative counts per bound */
    double sum;
    uint64_t count;
};

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static struct series *g_table[TABLE_SIZE];
static size_t g_n;
static uint64_t g_dropped;

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; s && *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h * 1099511628211ull; /* separator */
}

static bool same_name(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

/* find_or_add: the series for family+labels, created when new. Caller holds g_mu.
 * NULL when the table is full (counted as dropped). Values are truncated to 63 bytes. */
static struct series *find_or_add(const char *family, const char *help, enum mtype type,
                                  const char *n0, const char *v0, const char *n1,
                                  const char *v1)
{
    char c0[VALUE_MAX], c1[VALUE_MAX];
    uint64_t h;
    size_t i;
    struct series *s = NULL;

    str_copy(c0, sizeof c0, str_c(n0 ? v0 : NULL));
    str_copy(c1, sizeof c1, str_c(n1 ? v1 : NULL));
    h = fnv(fnv(fnv(fnv(fnv(14695981039346656037ull, family), n0), c0), n1), c1);
    for (i = (size_t)h & (TABLE_SIZE - 1);; i = (i + 1) & (TABLE_SIZE - 1)) {
        s = g_table[i];
        if (!s)
            break;
        if (strcmp(s->family, family) == 0 && same_name(s->lname[0], n0) &&
            same_name(s->lname[1], n1) && strcmp(s->lval[0], c0) == 0 &&
            strcmp(s->lval[1], c1) == 0)
            goto out;
    }
    if (g_n >= SERIES_MAX) {
        g_dropped++;
        s = NULL;
        goto out;
    }
    s = xcalloc(1, sizeof *s);
    s->family = family;
    s->help = help;
    s->type = type;
    s->lname[0] = n0;
    s->lname[1] = n1;
    memcpy(s->lval[0], c0, sizeof c0);
    memcpy(s->lval[1], c1, sizeof c1);
    g_table[i] = s;
    g_n++;
out:
    return s;
}

void metrics_http_observe(const char *route, int status, double seconds)
{
    char st[16];
    struct series *s;

    if (!route)
        route = "unmatched";
    if (isnan(seconds) || seconds < 0)
        seconds = 0;
    snprintf(st, sizeof st, "%d", status);
    pthread_mutex_lock(&g_mu);
    s = find_or_add(F_REQS, "HTTP requests by route and status.", M_COUNTER, "route", route,
                    "status", st);
    if (s)
        s->value += 1;
    s = find_or_add(F_DUR, "HTTP request duration in seconds, by route.", M_HISTOGRAM, "route",
                    route, NULL, NULL);
    if (s) {
        for (size_t i = 0; i < NBOUNDS; i++)
            if (seconds <= bounds[i])
                s->buckets[i]++;
        s->sum += seconds;
        s->count++;
    }
    pthread_mutex_unlock(&g_mu);
}

void metrics_job_outcome(const char *kind, const char *outcome)
{
    struct series *s;
    pthread_mutex_lock(&g_mu);
    s = find_or_add(F_JOBS, "Job attempts by kind and outcome.", M_COUNTER, "kind", kind,
                    "outcome", outcome);
    if (s)
        s->value += 1;
    pthread_mutex_unlock(&g_mu);
}

void metrics_counter_add(const char *name, const char *help, const char *label,
                         const char *value, double n)
{
    struct series *s;
    if (!name || isnan(n))
        return;
    pthread_mutex_lock(&g_mu);
    s = find_or_add(name, help, M_COUNTER, label, value, NULL, NULL);
    if (s)
        s->value += n;
    pthread_mutex_unlock(&g_mu);
}

void metrics_gauge_add(const char *name, const char *help, double delta)
{
    struct series *s;
    if (!name || isnan(delta))
        return;
    pthread_mutex_lock(&g_mu);
    s = find_or_add(name, help, M_GAUGE, NULL, NULL, NULL, NULL);
    if (s)
        s->value += delta;
    pthread_mutex_unlock(&g_mu);
}

void metrics_reset(void)
{
    pthread_mutex_lock(&g_mu);
    for (size_t i = 0; i < TABLE_SIZE; i++) {
        free(g_table[i]);
        g_table[i] = NULL;
    }
    g_n = 0;
    g_dropped = 0;
    pthread_mutex_unlock(&g_mu);
}

/* ---- rendering ---- */

static int cmp_series(const void *a, const void *b)
{
    const struct series *x = *(const struct series *const *)a;
    const struct series *y = *(const struct series *const *)b;
    int c = strcmp(x->family, y->family);
    if (c == 0)
        c = strcmp(x->lval[0], y->lval[0]);
    if (c == 0)
        c = strcmp(x->lval[1], y->lval[1]);
    return c;
}

/* put_escaped: a label value (\\, \" and \n escaped) or, with help, a HELP text
 * (\\ and \n escaped). */
static int put_escaped(struct buf *out, const char *s, bool help)
{
    int rc = HR_OK;
    for (; s && *s && rc == HR_OK; s++) {
        if (*s == '\\')
            rc = buf_append_c(out, "\\\\");
        else if (*s == '\n')
            rc = buf_append_c(out, "\\n");
        else if (*s == '"' && !help)
            rc = buf_append_c(out, "\\\"");
        else
            rc = buf_putc(out, *s);
    }
    return rc;
}

/* put_num: integers exactly, other values with full precision. */
static int put_num(struct buf *out, double v)
{
    if (isinf(v))
        return buf_append_c(out, v > 0 ? "+Inf" : "-Inf");
    if (v == floor(v) && fabs(v) < 9007199254740992.0)
        return buf_printf(out, "%.0f", v);
    return buf_printf(out, "%.17g", v);
}

/* put_labels: {a="x",b="y",le="..."} or nothing when there are no labels. */
static int put_labels(struct buf *out, const struct series *s, const char *le)
{
    int rc = HR_OK;
    bool any = false;
    for (int k = 0; k < 2 && rc == HR_OK; k++) {
        if (!s->lname[k])
            continue;
        rc = buf_printf(out, "%s%s=\"", any ? "," : "{", s->lname[k]);
        if (rc == HR_OK)
            rc = put_escaped(out, s->lval[k], false);
        if (rc == HR_OK)
            rc = buf_putc(out, '"');
        any = true;
    }
    if (rc == HR_OK && le)
        rc = buf_printf(out, "%sle=\"%s\"", any ? "," : "{", le);
    if (rc == HR_OK && (any || le))
        rc = buf_putc(out, '}');
    return rc;
}

static int put_series(struct buf *out, const struct series *s)
{
    int rc = HR_OK;
    if (s->type == M_COUNTER || s->type == M_GAUGE) {
        rc = buf_append_c(out, s->family);
        if (rc == HR_OK)
            rc = put_labels(out, s, NULL);
        if (rc == HR_OK)
            rc = buf_putc(out, ' ');
        if (rc == HR_OK)
            rc = put_num(out, s->value);
        if (rc == HR_OK)
            rc = buf_putc(out, '\n');
        goto out;
    }
    for (size_t i = 0; i <= NBOUNDS && rc == HR_OK; i++) {
        rc = buf_printf(out, "%s_bucket", s->family);
        if (rc == HR_OK)
            rc = put_labels(out, s, i < NBOUNDS ? bound_txt[i] : "+Inf");
        if (rc == HR_OK)
            rc = buf_printf(out, " %llu\n",
                            (unsigned long long)(i < NBOUNDS ? s->buckets[i] : s->count));
    }
    if (rc == HR_OK)
        rc = buf_printf(out, "%s_sum", s->family);
    if (rc == HR_OK)
        rc = put_labels(out, s, NULL);
    if (rc == HR_OK)
        rc = buf_putc(out, ' ');
    if (rc == HR_OK)
        rc = put_num(out, s->sum);
    if (rc == HR_OK)
        rc = buf_printf(out, "\n%s_count", s->family);
    if (rc == HR_OK)
        rc = put_labels(out, s, NULL);
    if (rc == HR_OK)
        rc = buf_printf(out, " %llu\n", (unsigned long long)s->count);
out:
    return rc;
}

/* metrics_render: see metrics.h. Appends to out (HR_TOOBIG when out's cap is hit; out
 * then holds a partial rendering). Any thread. */
int metrics_render(struct buf *out)
{
    int rc = HR_OK;
    struct series **all = NULL;
    size_t n = 0;
    uint64_t dropped;

    pthread_mutex_lock(&g_mu);
    all = xmalloc((g_n ? g_n : 1) * sizeof *all);
    for (size_t i = 0; i < TABLE_SIZE; i++)
        if (g_table[i])
            all[n++] = g_table[i];
    qsort(all, n, sizeof *all, cmp_series);
    for (size_t i = 0; i < n && rc == HR_OK; i++) {
        const struct series *s = all[i];
        if (i == 0 || strcmp(all[i - 1]->family, s->family) != 0) {
            rc = buf_printf(out, "# HELP %s ", s->family);
            if (rc == HR_OK)
                rc = put_escaped(out, s->help ? s->help : s->family, true);
            if (rc == HR_OK)
                rc = buf_printf(out, "\n# TYPE %s %s\n", s->family,
                                s->type == M_HISTOGRAM ? "histogram"
                                : s->type == M_GAUGE   ? "gauge"
                                                       : "counter");
        }
        if (rc == HR_OK)
            rc = put_series(out, s);
    }
    dropped = g_dropped;
    pthread_mutex_unlock(&g_mu);
    if (rc == HR_OK)
        rc = buf_printf(out,
                        "# HELP " F_DROPPED " Metric series not recorded because the "
                        "series cap (%d) was reached.\n# TYPE " F_DROPPED " counter\n" F_DROPPED
                        " %llu\n",
                        SERIES_MAX, (unsigned long long)dropped);
    free(all);
    return rc;
}
