/* metrics.h: process-wide counters and histograms, rendered in Prometheus text format.
 * Label sets are small and fixed (route names, status codes, job kinds), so a table
 * under one mutex is enough. Never put secrets or unbounded values in labels. */
#ifndef HERALD_UTIL_METRICS_H
#define HERALD_UTIL_METRICS_H

#include "buf.h"
#include "rc.h"

/* metrics_http_observe: one request: route name (or "unmatched"), status, duration. */
void metrics_http_observe(const char *route, int status, double seconds);
/* metrics_job_outcome: one job outcome: kind, outcome ("done","retry","failed","dead",
 * "lost_lease","deferred"). */
void metrics_job_outcome(const char *kind, const char *outcome);
/* metrics_counter_add: a free-form counter "name{label=\"value\"}" += n; name and label
 * must be static strings; value is copied (<= 63 chars). */
void metrics_counter_add(const char *name, const char *help, const char *label,
                         const char *value, double n);
/* metrics_gauge_add: a gauge without labels "name" += delta (negative to lower it); name
 * and help must be static strings. Any thread. */
void metrics_gauge_add(const char *name, const char *help, double delta);
/* metrics_render: append all metrics in Prometheus text format 0.0.4. */
int metrics_render(struct buf *out) HR_MUSTCHECK;
/* metrics_reset: forget everything (tests only). */
void metrics_reset(void);

#endif
