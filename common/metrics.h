/* metrics.h: a process-wide Prometheus metrics registry and its text exposition.
 *
 * Metrics are created once (or looked up again by name + label string) and then updated lock-free
 * with atomics from any thread. Handles stay valid for the life of the process. Label strings are in
 * exposition form without braces, e.g. "route=\"push\",code=\"204\"" (NULL or "" for none). */
#ifndef ST_COMMON_METRICS_H
#define ST_COMMON_METRICS_H

#include "common/buf.h"

#include <stdint.h>

typedef struct st_metric st_metric_t;

st_metric_t *st_counter(const char *name, const char *help, const char *labels);
st_metric_t *st_gauge(const char *name, const char *help, const char *labels);
/* bounds: ascending upper bounds (+Inf is implicit); copied. */
st_metric_t *st_histogram(const char *name, const char *help, const char *labels, const double *bounds,
                          int nbounds);
/* A gauge whose value is computed at scrape time. */
st_metric_t *st_gauge_fn(const char *name, const char *help, const char *labels, double (*fn)(void *),
                         void *arg);

void st_counter_add(st_metric_t *m, uint64_t v);
static inline void st_counter_inc(st_metric_t *m) { st_counter_add(m, 1); }
void st_gauge_set(st_metric_t *m, double v);
void st_gauge_add(st_metric_t *m, double v);
void st_histogram_observe(st_metric_t *m, double v);
uint64_t st_counter_value(const st_metric_t *m);

/* Latency buckets in seconds used by every *_duration_seconds histogram. */
extern const double st_latency_buckets[];
extern const int st_latency_nbuckets;

/* Appends the Prometheus text format (version 0.0.4) of every registered metric. */
int st_metrics_render(st_buf_t *out);

#endif
