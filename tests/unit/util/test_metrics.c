/* test_metrics.c: the metrics registry: counters, cumulative histogram buckets, label
 * escaping, the Prometheus text lines, the series cap and thread safety. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../../../src/util/buf.h"
#include "../../../src/util/metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *render(void)
{
    struct buf b;
    size_t n;
    buf_init(&b, 1 << 24);
    assert_int_equal(metrics_render(&b), HR_OK);
    return buf_steal(&b, &n);
}

/* has_line: out contains exactly this line. */
static bool has_line(const char *out, const char *line)
{
    size_t n = strlen(line);
    for (const char *p = out; (p = strstr(p, line)) != NULL; p += n)
        if ((p == out || p[-1] == '\n') && p[n] == '\n')
            return true;
    return false;
}

static int count_substr(const char *out, const char *s)
{
    int k = 0;
    for (const char *p = out; (p = strstr(p, s)) != NULL; p += strlen(s))
        k++;
    return k;
}

static int reset(void **state)
{
    metrics_reset();
    return 0;
}

static void test_http_counters(void **state)
{
    metrics_http_observe("profiles.get", 200, 0.003);
    metrics_http_observe("profiles.get", 200, 0.004);
    metrics_http_observe("profiles.get", 404, 0.001);
    metrics_http_observe(NULL, 405, 0.0);
    char *out = render();
    assert_true(has_line(out, "# HELP herald_http_requests_total HTTP requests by route and status."));
    assert_true(has_line(out, "# TYPE herald_http_requests_total counter"));
    assert_true(has_line(out, "herald_http_requests_total{route=\"profiles.get\",status=\"200\"} 2"));
    assert_true(has_line(out, "herald_http_requests_total{route=\"profiles.get\",status=\"404\"} 1"));
    assert_true(has_line(out, "herald_http_requests_total{route=\"unmatched\",status=\"405\"} 1"));
    assert_int_equal(count_substr(out, "# TYPE herald_http_requests_total"), 1);
    free(out);
}

static void test_histogram_cumulative(void **state)
{
    metrics_http_observe("send", 202, 0.0005); /* <= 0.001 */
    metrics_http_observe("send", 202, 0.001);  /* on the bound: counts in le="0.001" */
    metrics_http_observe("send", 202, 0.03);   /* <= 0.05 */
    metrics_http_observe("send", 500, 3.0);    /* <= 5 */
    metrics_http_observe("send", 500, 60.0);   /* only +Inf */
    char *out = render();
    assert_true(has_line(out, "# TYPE herald_http_request_duration_seconds histogram"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"0.001\"} 2"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"0.0025\"} 2"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"0.025\"} 2"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"0.05\"} 3"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"2.5\"} 3"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"5\"} 4"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"10\"} 4"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"send\",le=\"+Inf\"} 5"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_count{route=\"send\"} 5"));
    assert_non_null(strstr(out, "herald_http_request_duration_seconds_sum{route=\"send\"} 63.0315"));
    assert_int_equal(count_substr(out, "herald_http_request_duration_seconds_bucket{route=\"send\""), 14);

    /* buckets are monotonic, in order */
    const char *p = out;
    long prev = -1;
    int seen = 0;
    while ((p = strstr(p, "_bucket{route=\"send\"")) != NULL) {
        const char *sp = strchr(p, ' ');
        long v = strtol(sp + 1, NULL, 10);
        assert_true(v >= prev);
        prev = v;
        p = sp;
        seen++;
    }
    assert_int_equal(seen, 14);
    free(out);
}

static void test_jobs_and_custom(void **state)
{
    metrics_job_outcome("send", "done");
    metrics_job_outcome("send", "done");
    metrics_job_outcome("send", "retry");
    metrics_counter_add("herald_provider_calls_total", "Provider calls.", "provider", "smtp", 1);
    metrics_counter_add("herald_provider_calls_total", "Provider calls.", "provider", "smtp", 2.5);
    metrics_counter_add("herald_provider_calls_total", "Provider calls.", "provider", "webhook", 1);
    metrics_counter_add("herald_plain_total", "No labels.", NULL, NULL, 7);
    char *out = render();
    assert_true(has_line(out, "herald_jobs_total{kind=\"send\",outcome=\"done\"} 2"));
    assert_true(has_line(out, "herald_jobs_total{kind=\"send\",outcome=\"retry\"} 1"));
    assert_true(has_line(out, "# TYPE herald_jobs_total counter"));
    assert_true(has_line(out, "# HELP herald_provider_calls_total Provider calls."));
    assert_true(has_line(out, "# TYPE herald_provider_calls_total counter"));
    assert_int_equal(count_substr(out, "# TYPE herald_provider_calls_total"), 1);
    assert_true(has_line(out, "herald_provider_calls_total{provider=\"smtp\"} 3.5"));
    assert_true(has_line(out, "herald_provider_calls_total{provider=\"webhook\"} 1"));
    assert_true(has_line(out, "herald_plain_total 7"));
    assert_true(has_line(out, "herald_metrics_dropped_series_total 0"));
    free(out);
}

static void test_gauge(void **state)
{
    metrics_gauge_add("herald_things_in_flight", "Things now.", 3);
    metrics_gauge_add("herald_things_in_flight", "Things now.", -2);
    char *out = render();
    assert_true(has_line(out, "# TYPE herald_things_in_flight gauge"));
    assert_true(has_line(out, "herald_things_in_flight 1"));
    free(out);
}

static void test_label_escaping(void **state)
{
    metrics_counter_add("herald_odd_total", "Help with \\ and\nnewline.", "v", "a\"b\\c\nd", 1);
    char *out = render();
    assert_true(has_line(out, "herald_odd_total{v=\"a\\\"b\\\\c\\nd\"} 1"));
    assert_true(has_line(out, "# HELP herald_odd_total Help with \\\\ and\\nnewline."));
    free(out);
}

static void test_format_lines(void **state)
{
    metrics_http_observe("a", 200, 0.01);
    metrics_job_outcome("k", "dead");
    char *out = render();
    /* every line is a comment or "name{labels} value"; HELP precedes TYPE precedes samples */
    const char *family = NULL;
    for (const char *ln = out; *ln;) {
        const char *nl = strchr(ln, '\n'), *start = ln;
        char line[512];
        assert_non_null(nl);
        assert_true((size_t)(nl - ln) < sizeof line);
        memcpy(line, ln, (size_t)(nl - ln));
        line[nl - ln] = '\0';
        ln = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            family = start + 7; /* points into out */
            continue;
        }
        assert_non_null(family);
        size_t flen = strcspn(family, " ");
        if (strncmp(line, "# TYPE ", 7) == 0) {
            assert_int_equal(strncmp(line + 7, family, flen), 0);
            assert_int_equal(line[7 + flen], ' ');
            continue;
        }
        assert_int_equal(strncmp(line, family, flen), 0);
        assert_true(line[flen] == '{' || line[flen] == ' ' || line[flen] == '_');
        const char *sp = strrchr(line, ' ');
        assert_non_null(sp);
        char *end;
        strtod(sp + 1, &end);
        assert_int_equal(*end, '\0');
    }
    assert_int_equal(out[strlen(out) - 1], '\n');
    free(out);
}

static void test_series_cap(void **state)
{
    char v[32];
    for (int i = 0; i < 5000; i++) {
        snprintf(v, sizeof v, "u%d", i);
        metrics_counter_add("herald_many_total", "Many.", "user", v, 1);
    }
    metrics_counter_add("herald_many_total", "Many.", "user", "u1", 1); /* existing: counted */
    char *out = render();
    assert_int_equal(count_substr(out, "herald_many_total{"), 4096);
    assert_true(has_line(out, "herald_many_total{user=\"u1\"} 2"));
    assert_true(has_line(out, "herald_metrics_dropped_series_total 904"));
    free(out);
    metrics_reset();
    out = render();
    assert_null(strstr(out, "herald_many_total"));
    assert_true(has_line(out, "herald_metrics_dropped_series_total 0"));
    free(out);
}

static void test_long_value_truncated(void **state)
{
    char v[200];
    memset(v, 'x', sizeof v - 1);
    v[sizeof v - 1] = '\0';
    metrics_counter_add("herald_long_total", "Long.", "v", v, 1);
    char *out = render();
    char want[128];
    snprintf(want, sizeof want, "herald_long_total{v=\"%.63s\"} 1", v);
    assert_true(has_line(out, want));
    free(out);
}

static void *hammer(void *arg)
{
    for (int i = 0; i < 10000; i++) {
        metrics_http_observe("busy", 200, 0.002);
        metrics_job_outcome("busy", "done");
    }
    return arg;
}

static void test_threads(void **state)
{
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, hammer, NULL), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    char *out = render();
    assert_true(has_line(out, "herald_http_requests_total{route=\"busy\",status=\"200\"} 40000"));
    assert_true(has_line(out, "herald_jobs_total{kind=\"busy\",outcome=\"done\"} 40000"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"busy\",le=\"0.0025\"} 40000"));
    assert_true(has_line(out, "herald_http_request_duration_seconds_bucket{route=\"busy\",le=\"0.001\"} 0"));
    free(out);
}

static void test_render_cap(void **state)
{
    struct buf b;
    metrics_http_observe("x", 200, 0.1);
    buf_init(&b, 64);
    assert_int_equal(metrics_render(&b), HR_TOOBIG);
    buf_cleanup(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_http_counters, reset),
        cmocka_unit_test_setup(test_gauge, reset),
        cmocka_unit_test_setup(test_histogram_cumulative, reset),
        cmocka_unit_test_setup(test_jobs_and_custom, reset),
        cmocka_unit_test_setup(test_label_escaping, reset),
        cmocka_unit_test_setup(test_format_lines, reset),
        cmocka_unit_test_setup(test_series_cap, reset),
        cmocka_unit_test_setup(test_long_value_truncated, reset),
        cmocka_unit_test_setup(test_threads, reset),
        cmocka_unit_test_setup(test_render_cap, reset),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    metrics_reset();
    return rc;
}
