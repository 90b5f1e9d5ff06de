/* metrics.c: registry and text exposition behind metrics.h. Registration takes a mutex; updates are
 * relaxed atomics (doubles are stored as bit patterns and updated with compare-and-swap). */
#include "common/metrics.h"

#include "common/json.h"

#include <pthread.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

typedef enum { M_COUNTER, M_GAUGE, M_HISTOGRAM, M_GAUGE_FN } mtype_t;

struct st_metric {
    mtype_t type;
    char *name;
    char *help;
    char *labels;
    _Atomic uint64_t count;    /* counter value, or histogram count */
    _Atomic uint64_t dbits;    /* gauge value or histogram sum (double bits) */
    double *bounds;
    _Atomic uint64_t *buckets; /* per-bound counts (non-cumulative) */
    int nbounds;
    double (*fn)(void *);
    void *arg;
    struct st_metric *next;
};

const double st_latency_buckets[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1,     2.5,  5,     10,   30};
const int st_latency_nbuckets = (int)(sizeof st_latency_buckets / sizeof st_latency_buckets[0]);

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static st_metric_t *reg_head, *reg_tail;

static st_metric_t *lookup_or_add(mtype_t type, const char *name, const char *help, const char *labels)
{
    if (labels == NULL) labels = "";
    pthread_mutex_lock(&reg_mu);
    for (st_metric_t *m = reg_head; m; m = m->next) {
        if (strcmp(m->name, name) == 0 && strcmp(m->labels, labels) == 0) {
            pthread_mutex_unlock(&reg_mu);
            return m;
        }
    }
    st_metric_t *m = calloc(1, sizeof *m);
    if (m == NULL) abort(); /* registration happens at start-up or on a tiny set of label values */
    m->type = type;
    m->name = strdup(name);
    m->help = strdup(help);
    m->labels = strdup(labels);
    if (!m->name || !m->help || !m->labels) abort();
    /* Keep metrics of one name adjacent so HELP/TYPE print once: insert after the last same name. */
    st_metric_t *after = NULL;
    for (st_metric_t *x = reg_head; x; x = x->next)
        if (strcmp(x->name, name) == 0) after = x;
    if (after) {
        m->next = after->next;
        after->next = m;
        if (reg_tail == after) reg_tail = m;
    } else if (reg_tail) {
        reg_tail->next = m;
        reg_tail = m;
    } else {
        reg_head = reg_tail = m;
    }
    pthread_mutex_unlock(&reg_mu);
    return m;
}

st_metric_t *st_counter(const char *name, const char *help, const char *labels)
{
    return lookup_or_add(M_COUNTER, name, help, labels);
}

st_metric_t *st_gauge(const char *name, const char *help, const char *labels)
{
    return lookup_or_add(M_GAUGE, name, help, labels);
}

st_metric_t *st_gauge_fn(const char *name, const char *help, const char *labels, double (*fn)(void *), void *arg)
{
    st_metric_t *m = lookup_or_add(M_GAUGE_FN, name, help, labels);
    pthread_mutex_lock(&reg_mu);
    m->fn = fn;
    m->arg = arg;
    pthread_mutex_unlock(&reg_mu);
    return m;
}

st_metric_t *st_histogram(const char *name, const char *help, const char *labels, const double *bounds, int nbounds)
{
    st_metric_t *m = lookup_or_add(M_HISTOGRAM, name, help, labels);
    pthread_mutex_lock(&reg_mu);
    if (m->bounds == NULL) {
        m->bounds = malloc(sizeof(double) * (size_t)nbounds);
        m->buckets = calloc((size_t)nbounds + 1, sizeof(uint64_t));
        if (!m->bounds || !m->buckets) abort();
        memcpy(m->bounds, bounds, sizeof(double) * (size_t)nbounds);
        m->nbounds = nbounds;
    }
    pthread_mutex_unlock(&reg_mu);
    return m;
}

void st_counter_add(st_metric_t *m, uint64_t v) { atomic_fetch_add_explicit(&m->count, v, memory_order_relaxed); }
uint64_t st_counter_value(const st_metric_t *m) { return atomic_load_explicit(&m->count, memory_order_relaxed); }

static double bits_to_d(uint64_t b)
{
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

static uint64_t d_to_bits(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return b;
}

void st_gauge_set(st_metric_t *m, double v) { atomic_store_explicit(&m->dbits, d_to_bits(v), memory_order_relaxed); }

void st_gauge_add(st_metric_t *m, double v)
{
    uint64_t old = atomic_load_explicit(&m->dbits, memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&m->dbits, &old, d_to_bits(bits_to_d(old) + v),
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
}

void st_histogram_observe(st_metric_t *m, double v)
{
    int i = 0;
    while (i < m->nbounds && v > m->bounds[i]) i++;
    atomic_fetch_add_explicit(&m->buckets[i], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->count, 1, memory_order_relaxed);
    st_gauge_add(m, v);
}

static void put_series(st_buf_t *out, const char *name, const char *suffix, const char *labels, const char *extra)
{
    st_buf_puts(out, name);
    st_buf_puts(out, suffix);
    bool has = labels[0] != '\0', hasx = extra != NULL;
    if (has || hasx) {
        st_buf_putc(out, '{');
        if (has) st_buf_puts(out, labels);
        if (has && hasx) st_buf_putc(out, ',');
        if (hasx) st_buf_puts(out, extra);
        st_buf_putc(out, '}');
    }
    st_buf_putc(out, ' ');
}

int st_metrics_render(st_buf_t *out)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram", "gauge"};
    pthread_mutex_lock(&reg_mu);
    const char *last = "";
    for (st_metric_t *m = reg_head; m; m = m->next) {
        if (strcmp(last, m->name) != 0) {
            st_buf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, type_names[m->type]);
            last = m->name;
        }
        switch (m->type) {
        case M_COUNTER:
            put_series(out, m->name, "", m->labels, NULL);
            st_buf_printf(out, "%llu\n", (unsigned long long)st_counter_value(m));
            break;
        case M_GAUGE:
        case M_GAUGE_FN: {
            double v = m->type == M_GAUGE_FN ? m->fn(m->arg) : bits_to_d(atomic_load(&m->dbits));
            put_series(out, m->name, "", m->labels, NULL);
            st_json_put_float_str(out, v);
            st_buf_putc(out, '\n');
            break;
        }
        case M_HISTOGRAM: {
            uint64_t cum = 0;
            char le[64];
            for (int i = 0; i <= m->nbounds; i++) {
                cum += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
                if (i < m->nbounds) {
                    st_buf_t t = ST_BUF_INIT;
                    st_json_put_float_str(&t, m->bounds[i]);
                    snprintf(le, sizeof le, "le=\"%s\"", st_buf_cstr(&t));
                    st_buf_free(&t);
                } else {
                    snprintf(le, sizeof le, "le=\"+Inf\"");
                }
                put_series(out, m->name, "_bucket", m->labels, le);
                st_buf_printf(out, "%llu\n", (unsigned long long)cum);
            }
            put_series(out, m->name, "_sum", m->labels, NULL);
            st_json_put_float_str(out, bits_to_d(atomic_load(&m->dbits)));
            st_buf_putc(out, '\n');
            put_series(out, m->name, "_count", m->labels, NULL);
            st_buf_printf(out, "%llu\n", (unsigned long long)cum);
            break;
        }
        }
    }
    pthread_mutex_unlock(&reg_mu);
    return 0;
}
