/* html.c: the retention report as one self-contained HTML page: inline CSS (screen and print), an inline
 * SVG plot of bytes per tier over time drawn here, no scripts and no external assets. The summary comes
 * first, then the plot, violations, policies, cost, streams, objects, erasure requests, CloudWatch,
 * retrievability drills and the audit trail's state. */
#include "audit/report_int.h"

#include "common/timeutil.h"

#include <stdio.h>
#include <string.h>

static const char *const tier_color[ST_TIER_COUNT] = {"#d9534f", "#f0ad4e", "#5bc0de",
                                                      "#5cb85c", "#337ab7", "#6f42c1"};

static void esc(st_buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '<': st_buf_puts(b, "&lt;"); break;
        case '>': st_buf_puts(b, "&gt;"); break;
        case '&': st_buf_puts(b, "&amp;"); break;
        case '"': st_buf_puts(b, "&quot;"); break;
        case '\'': st_buf_puts(b, "&#39;"); break;
        default: st_buf_putc(b, *s);
        }
    }
}

static void td(st_buf_t *b, const char *s, bool num)
{
    st_buf_puts(b, num ? "<td class=\"n\">" : "<td>");
    esc(b, s);
    st_buf_puts(b, "</td>");
}

static void td_time(st_buf_t *b, int64_t ns)
{
    char t[40];
    st_report_time(ns, t);
    td(b, t[0] ? t : "—", false);
}

static void td_u64(st_buf_t *b, uint64_t v)
{
    char t[32];
    snprintf(t, sizeof t, "%llu", (unsigned long long)v);
    td(b, t, true);
}

static void td_bytes(st_buf_t *b, uint64_t v)
{
    char t[32];
    st_report_bytes(v, t);
    st_buf_printf(b, "<td class=\"n\" title=\"%llu bytes\">", (unsigned long long)v);
    esc(b, t);
    st_buf_puts(b, "</td>");
}

/* Dollars with the precision small amounts need ("$12.34", "$0.0123", "$4.1e-06"). */
static void money(double v, char out[40])
{
    if (v == 0 || v >= 1)
        snprintf(out, 40, "$%.2f", v);
    else if (v >= 0.0001)
        snprintf(out, 40, "$%.4f", v);
    else
        snprintf(out, 40, "$%.2g", v);
}

static void td_money(st_buf_t *b, double v)
{
    char t[40];
    money(v, t);
    td(b, t, true);
}

static const char *css =
    "body{font:14px/1.45 -apple-system,'Segoe UI',Helvetica,Arial,sans-serif;color:#222;margin:0 "
    "auto;max-width:1100px;"
    "padding:24px}h1{font-size:26px;margin:0 0 4px}h2{font-size:19px;border-bottom:2px solid "
    "#ddd;padding-bottom:4px;"
    "margin-top:32px}.meta{color:#555;margin:0}table{border-collapse:collapse;width:100%;margin:8px 0}"
    "th,td{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top}th{background:#f4f4f4}"
    "td.n{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}code,.mono{font-family:Menlo,"
    "Consolas,"
    "monospace;font-size:12px;word-break:break-all}.verdict{font-size:20px;font-weight:bold;padding:10px "
    "14px;"
    "border-radius:6px;margin:12px 0}.ok{background:#e6f4ea;color:#1e6b34;border:1px solid "
    "#9cd3ac}.bad{background:"
    "#fdecea;color:#8a1c1c;border:1px solid #f1a9a0}.kv "
    "td:first-child{width:260px;color:#555}.swatch{display:inline-"
    "block;width:12px;height:12px;margin-right:6px;vertical-align:middle}.note{color:#666;font-size:12px}"
    "svg{max-width:100%;height:auto;border:1px solid #eee}"
    "@media "
    "print{body{max-width:none;padding:0;font-size:10pt}h2{break-after:avoid}table,svg,.verdict{break-inside:"
    "avoid}a{color:inherit;text-decoration:none}}";

/* ---- the plot ---------------------------------------------------------------------------------------------
 */

static void plot(const report_t *r, st_buf_t *b)
{
    const int W = 960, H = 340, L = 90, R = 60, T = 20, B = 50;
    int pw = W - L - R, ph = H - T - B;
    /* points: at least two (a single point is drawn as a flat band over a day) */
    rpoint_t one[2];
    const rpoint_t *pts = r->hist;
    size_t n = r->nhist;
    if (n == 1) {
        one[0] = r->hist[0];
        one[0].t -= ST_NS_PER_DAY;
        one[1] = r->hist[0];
        pts = one;
        n = 2;
    }
    int64_t t0 = n ? pts[0].t : r->as_of - ST_NS_PER_DAY, t1 = n ? pts[n - 1].t : r->as_of;
    if (t1 <= t0) t1 = t0 + ST_NS_PER_DAY;
    uint64_t ymax = 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t s = 0;
        for (int k = 0; k < ST_TIER_COUNT; k++) s += pts[i].bytes[k];
        if (s > ymax) ymax = s;
    }
    /* a round top: 1, 2 or 5 times a power of 1024-ish steps in bytes */
    double top = 1;
    while (top < (double)ymax) top *= 2;
    st_buf_printf(
        b,
        "<svg id=\"plot\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 %d %d\" width=\"%d\" "
        "height=\"%d\" "
        "role=\"img\" aria-label=\"Bytes per tier over time\"><title>Bytes per tier over time</title>",
        W, H, W, H);
    st_buf_printf(b, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"#fafafa\" stroke=\"#ccc\"/>",
                  L, T, pw, ph);
    for (int i = 0; i <= 4; i++) {
        double v = top * i / 4;
        int y = T + ph - (int)(ph * i / 4);
        char lab[32];
        st_report_bytes((uint64_t)v, lab);
        st_buf_printf(
            b,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#e3e3e3\"/><text x=\"%d\" y=\"%d\" "
            "font-size=\"11\" text-anchor=\"end\" fill=\"#555\">%s</text>",
            L, y, L + pw, y, L - 6, y + 4, lab);
    }
    for (int i = 0; i <= 4; i++) {
        int64_t t = t0 + (t1 - t0) / 4 * i;
        int x = L + (int)((double)pw * i / 4);
        char d[40];
        st_report_time(t, d);
        if (t1 - t0 < 4 * ST_NS_PER_DAY) { /* "MM-DD HH:MM" */
            memmove(d, d + 5, 11);
            d[5] = ' ';
            d[11] = '\0';
        } else {
            d[10] = '\0';
        }
        st_buf_printf(
            b,
            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#999\"/><text x=\"%d\" y=\"%d\" "
            "font-size=\"11\" text-anchor=\"middle\" fill=\"#555\">%s</text>",
            x, T + ph, x, T + ph + 5, x, T + ph + 18, d);
    }
    /* stacked areas, warmest at the bottom */
    for (int k = 0; k < ST_TIER_COUNT && n; k++) {
        bool any = false;
        for (size_t i = 0; i < n; i++) any |= pts[i].bytes[k] != 0;
        if (!any) continue;
        st_buf_printf(b,
                      "<polygon class=\"tier-%s\" fill=\"%s\" fill-opacity=\"0.85\" stroke=\"%s\" points=\"",
                      st_audit_tier_name(k), tier_color[k], tier_color[k]);
        /* a step chart: bytes change at the recorded events and stay until the next one; the top edge
         * left to right, then the bottom edge back */
        for (int pass = 0; pass < 2; pass++) {
            for (size_t j = 0; j < n; j++) {
                size_t i = pass == 0 ? j : n - 1 - j;
                for (int half = 0; half < 2; half++) {
                    /* top: (x_i, v_i) then (x_i+1, v_i); bottom: (x_i, v_i) then (x_i, v_i-1) */
                    size_t xi = pass == 0 && half == 1 ? i + 1 : i;
                    size_t vi = pass == 1 && half == 1 ? i - 1 : i;
                    if (xi >= n || (pass == 1 && half == 1 && i == 0)) continue;
                    uint64_t v = 0;
                    for (int q = 0; q < k + (pass == 0); q++) v += pts[vi].bytes[q];
                    double x = L + (double)pw * (double)(pts[xi].t - t0) / (double)(t1 - t0);
                    double y = T + ph - (double)ph * (double)v / top;
                    st_buf_printf(b, "%.1f,%.1f ", x, y);
                }
            }
        }
        st_buf_puts(b, "\"/>");
    }
    if (n == 0)
        st_buf_printf(b, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#777\">no data</text>",
                      L + pw / 2, T + ph / 2);
    /* legend */
    int lx = L;
    for (int k = 0; k < ST_TIER_COUNT; k++) {
        st_buf_printf(
            b,
            "<rect x=\"%d\" y=\"%d\" width=\"12\" height=\"12\" fill=\"%s\"/><text x=\"%d\" y=\"%d\" "
            "font-size=\"12\" fill=\"#333\">%s</text>",
            lx, H - 16, tier_color[k], lx + 16, H - 6, st_audit_tier_name(k));
        lx += 30 + (int)strlen(st_audit_tier_name(k)) * 8;
    }
    st_buf_puts(b, "</svg>");
}

/* ---- the page
 * ---------------------------------------------------------------------------------------------- */

int st_report_html(const report_t *r, st_buf_t *b)
{
    char t1[40], t2[40], tmp[600];
    st_report_time(r->as_of, t1);
    st_report_time(r->generated, t2);
    st_buf_puts(b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
                   "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>Strata "
                   "retention report, as of ");
    esc(b, t1);
    st_buf_printf(b, "</title><style>%s</style></head><body>\n", css);
    st_buf_puts(b, "<header><h1>Retention report</h1><p class=\"meta\">As of <b>");
    esc(b, t1);
    st_buf_puts(b, "</b> · generated ");
    esc(b, t2);
    st_buf_puts(b, " · scope: ");
    if (r->o.tenant) {
        st_buf_puts(b, "tenant <code>");
        esc(b, r->o.tenant);
        st_buf_puts(b, "</code>");
    } else {
        st_buf_puts(b, "all tenants");
    }
    if (r->o.policy) {
        st_buf_puts(b, ", policy <code>");
        esc(b, r->o.policy);
        st_buf_puts(b, "</code>");
    }
    st_buf_puts(b, "</p></header>\n");

    /* summary */
    st_buf_puts(b, "<section id=\"summary\"><h2>Summary</h2>");
    if (r->nviol)
        st_buf_printf(b, "<div class=\"verdict bad\" id=\"verdict\">%zu violation%s found</div>", r->nviol,
                      r->nviol == 1 ? "" : "s");
    else
        st_buf_puts(b, "<div class=\"verdict ok\" id=\"verdict\">No violations</div>");
    st_buf_puts(b, "<table class=\"kv\">");
    char bb[32];
    st_report_bytes(r->bytes, bb);
    snprintf(tmp, sizeof tmp, "%zu streams, %llu chunks, %s stored (%llu entries)", r->nstreams,
             (unsigned long long)r->chunks, bb, (unsigned long long)r->entries);
    st_buf_puts(b, "<tr><td>Data</td>");
    td(b, tmp, false);
    st_buf_puts(b, "</tr><tr><td>Objects in S3</td>");
    snprintf(tmp, sizeof tmp, "%zu", r->nobjects);
    td(b, tmp, false);
    st_buf_puts(b, "</tr><tr><td>Monthly cost (price table)</td>");
    char m1[40], m2[40];
    money(r->total_cost, m1);
    money(r->cost_all_hot, m2);
    snprintf(tmp, sizeof tmp, "%s per month; the same data kept hot: %s per month", m1, m2);
    td(b, tmp, false);
    st_buf_puts(b, "</tr><tr><td>Audit trail</td>");
    if (!r->audit_present)
        snprintf(tmp, sizeof tmp, "%s", r->audit_enabled ? "enabled, but no trail found" : "not enabled");
    else
        snprintf(tmp, sizeof tmp, "%s: %llu records in %llu segments, %llu sealed",
                 r->audit_ok ? "intact" : "BROKEN", (unsigned long long)r->audit_records,
                 (unsigned long long)r->audit_segments, (unsigned long long)r->audit_seals);
    td(b, tmp, false);
    st_buf_puts(b, "</tr><tr><td>Erasure requests</td>");
    snprintf(tmp, sizeof tmp, "%zu", r->nerasures);
    td(b, tmp, false);
    st_buf_puts(b, "</tr></table>");
    st_buf_puts(b, "<table id=\"tiers\"><tr><th>Tier</th><th>Chunks</th><th>Chunk bytes</th><th>Objects</th>"
                   "<th>Billed bytes</th><th>Storage $/month</th><th>Requests $/month</th></tr>");
    for (int t = 0; t < ST_TIER_COUNT; t++) {
        st_buf_printf(b, "<tr><td><span class=\"swatch\" style=\"background:%s\"></span>%s</td>",
                      tier_color[t], st_audit_tier_name(t));
        td_u64(b, r->tier[t].chunks);
        td_bytes(b, r->tier[t].bytes);
        td_u64(b, t == ST_TIER_HOT ? 0 : r->objects_per_tier[t]);
        td_bytes(b, t == ST_TIER_HOT ? r->tier[t].bytes : r->object_bytes[t]);
        td_money(b, r->storage_cost[t]);
        td_money(b, r->request_cost[t]);
        st_buf_puts(b, "</tr>");
    }
    st_buf_puts(b, "</table></section>\n");

    /* plot */
    st_buf_puts(b, "<section id=\"history\"><h2>Bytes per tier over time</h2>");
    plot(r, b);
    st_buf_puts(
        b, "<p class=\"note\">Replayed from the audit trail (chunk writes, uploads, repacks, transitions, "
           "deletions at their run's as-of time); the last point is the index as of the "
           "report.</p></section>\n");

    /* violations */
    st_buf_printf(b, "<section id=\"violations\"><h2>Violations (%zu)</h2>", r->nviol);
    if (r->nviol == 0) {
        st_buf_puts(b, "<p>None.</p>");
    } else {
        st_buf_puts(b, "<table><tr><th>Kind</th><th>Policy</th><th>Tenant</th><th>Where</th><th>Chunks</"
                       "th><th>Bytes</th>"
                       "<th>Since</th><th>Details</th></tr>");
        for (size_t i = 0; i < r->nviol; i++) {
            const rviolation_t *v = &r->viol[i];
            st_buf_puts(b, "<tr>");
            td(b, v->kind, false);
            td(b, v->policy, false);
            td(b, v->tenant, false);
            st_buf_puts(b, "<td class=\"mono\">");
            esc(b, v->stream[0] ? v->stream : v->key);
            st_buf_puts(b, "</td>");
            td_u64(b, v->chunks);
            td_bytes(b, v->bytes);
            td_time(b, v->since);
            td(b, v->message, false);
            st_buf_puts(b, "</tr>");
        }
        st_buf_puts(b, "</table>");
    }
    st_buf_puts(b, "</section>\n");

    /* policies */
    st_buf_puts(
        b,
        "<section id=\"policies\"><h2>Policies</h2><table><tr><th>Policy</th><th>Legal basis</th>"
        "<th>Tiers</th><th>Delete after</th><th>Object Lock</th><th>Streams</th><th>Bytes</th><th>Oldest</th>"
        "<th>Newest</th><th>Next deletion</th><th>Violations</th></tr>");
    for (int i = 0; i <= r->lc->npolicies; i++) {
        const rpolicy_t *rp = &r->policies[i];
        if (i == r->lc->npolicies && rp->streams == 0) continue;
        if (r->o.policy && (i == r->lc->npolicies || strcmp(r->lc->policies[i].name, r->o.policy) != 0))
            continue;
        const st_lc_policy_t *p = i < r->lc->npolicies ? &r->lc->policies[i] : NULL;
        st_buf_puts(b, "<tr>");
        td(b, p ? p->name : "(no policy: kept forever)", false);
        td(b, p ? p->legal_basis : "", false);
        tmp[0] = '\0';
        for (int t = 0; p && t < p->ntiers; t++) {
            char u[40];
            st_format_prom_duration(p->tiers[t].until_ns, u);
            size_t l = strlen(tmp);
            snprintf(tmp + l, sizeof tmp - l, "%s%s < %s", t ? ", " : "",
                     st_audit_tier_name(p->tiers[t].tier), u);
        }
        td(b, tmp, false);
        char d[40] = "never";
        if (p && p->delete_after_ns) st_format_prom_duration(p->delete_after_ns, d);
        td(b, d, false);
        snprintf(tmp, sizeof tmp, "%s%s (%llu objects locked)",
                 p && p->object_lock == ST_LOCK_COMPLIANCE   ? "COMPLIANCE"
                 : p && p->object_lock == ST_LOCK_GOVERNANCE ? "GOVERNANCE"
                                                             : "none",
                 p && p->immutable ? ", immutable" : "", (unsigned long long)rp->locked_objects);
        td(b, tmp, false);
        td_u64(b, rp->streams);
        td_bytes(b, rp->bytes);
        td_time(b, rp->oldest);
        td_time(b, rp->newest);
        td_time(b, rp->next_deletion);
        td_u64(b, rp->violations);
        st_buf_puts(b, "</tr>");
    }
    st_buf_puts(b, "</table></section>\n");

    /* cost */
    st_buf_puts(b, "<section id=\"cost\"><h2>Cost</h2><table class=\"kv\">");
    st_buf_puts(b, "<tr><td>Storage and requests, per month</td>");
    td_money(b, r->total_cost);
    st_buf_puts(b, "</tr><tr><td>Everything kept hot (local disk)</td>");
    td_money(b, r->cost_all_hot);
    st_buf_puts(b, "</tr><tr><td>Everything in S3 Standard</td>");
    td_money(b, r->cost_all_standard);
    st_buf_puts(b, "</tr><tr><td>Everything in CloudWatch Logs (storage per month)</td>");
    td_money(b, r->cost_cloudwatch_month);
    st_buf_puts(b, "</tr><tr><td>CloudWatch Logs ingestion of the same data (once)</td>");
    td_money(b, r->cost_cloudwatch_ingest);
    st_buf_puts(
        b,
        "</tr></table><p class=\"note\">Prices from lifecycle.prices (USD per GB-month, GB = 2<sup>30</sup> "
        "bytes; requests per 1,000 over the last 30 days of the audit trail). Archive classes add their "
        "per-object overhead.</p></section>\n");

    /* streams */
    st_buf_printf(b,
                  "<section id=\"streams\"><h2>Streams "
                  "(%zu)</h2><table><tr><th>Tenant</th><th>Stream</th><th>Policy</th>"
                  "<th>Where</th><th>Bytes</th><th>Oldest</th><th>Newest</th><th>Next transition</th>"
                  "<th>Next deletion</th></tr>",
                  r->nstreams);
    for (size_t i = 0; i < r->nstreams; i++) {
        const rstream_t *s = &r->streams[i];
        st_buf_puts(b, "<tr>");
        td(b, s->tenant, false);
        st_buf_puts(b, "<td class=\"mono\">");
        esc(b, s->labels);
        st_buf_puts(b, "</td>");
        td(b, s->policy >= 0 ? r->lc->policies[s->policy].name : "—", false);
        tmp[0] = '\0';
        for (int t = 0; t < ST_TIER_COUNT; t++) {
            if (!s->tier[t].chunks) continue;
            size_t l = strlen(tmp);
            snprintf(tmp + l, sizeof tmp - l, "%s%s: %llu", l ? ", " : "", st_audit_tier_name(t),
                     (unsigned long long)s->tier[t].chunks);
        }
        td(b, tmp, false);
        td_bytes(b, s->bytes);
        td_time(b, s->oldest);
        td_time(b, s->newest);
        char nt[40];
        st_report_time(s->next_transition, nt);
        if (s->next_transition)
            snprintf(tmp, sizeof tmp, "%s → %s", nt, st_audit_tier_name(s->next_tier));
        else
            snprintf(tmp, sizeof tmp, "—");
        td(b, tmp, false);
        td_time(b, s->next_deletion);
        st_buf_puts(b, "</tr>");
    }
    st_buf_puts(b, "</table></section>\n");

    /* objects */
    st_buf_printf(b, "<section id=\"objects\"><h2>Objects (%zu)</h2>", r->nobjects);
    if (r->nobjects) {
        st_buf_puts(b, "<table><tr><th>Key</th><th>Class</th><th>Size</th><th>Chunks</th><th>Delete at</th>"
                       "<th>Object Lock</th><th>Status</th></tr>");
        for (size_t i = 0; i < r->nobjects; i++) {
            const st_pack_state_t *ps = &r->objects[i].ps;
            st_buf_puts(b, "<tr><td class=\"mono\">");
            esc(b, ps->key);
            st_buf_puts(b, "</td>");
            td(b, st_audit_tier_name(ps->tier), false);
            td_bytes(b, ps->size);
            td_u64(b, ps->chunks);
            td_time(b, ps->delete_at == INT64_MAX ? 0 : ps->delete_at);
            char ru[40];
            st_report_time(ps->retain_until * ST_NS_PER_SEC, ru);
            snprintf(tmp, sizeof tmp, "%s%s%s", ps->lock_mode[0] ? ps->lock_mode : "none",
                     ps->lock_mode[0] ? " until " : "", ps->lock_mode[0] ? ru : "");
            td(b, tmp, false);
            td(b, r->objects[i].status, false);
            st_buf_puts(b, "</tr>");
        }
        st_buf_puts(b, "</table>");
    }
    st_buf_puts(b, "</section>\n");

    /* erasure requests */
    st_buf_printf(b, "<section id=\"erasure\"><h2>Erasure requests (%zu)</h2>", r->nerasures);
    if (r->nerasures) {
        st_buf_puts(b, "<table><tr><th>Tenant</th><th>Id</th><th>Query</th><th>Range</th><th>Received</th>"
                       "<th>Status</th><th>Finished</th><th>Lines removed</th><th>Message</th></tr>");
        for (size_t i = 0; i < r->nerasures; i++) {
            const rerasure_t *e = &r->erasures[i];
            st_buf_puts(b, "<tr>");
            td(b, e->tenant, false);
            td(b, e->id, false);
            st_buf_puts(b, "<td class=\"mono\">");
            esc(b, e->query);
            st_buf_puts(b, "</td>");
            char a[40], z[40];
            st_report_time(e->start, a);
            st_report_time(e->end, z);
            snprintf(tmp, sizeof tmp, "%s – %s", a, z);
            td(b, tmp, false);
            td_time(b, e->created);
            td(b, e->status, false);
            td_time(b, e->finished);
            td_u64(b, e->lines);
            td(b, e->message, false);
            st_buf_puts(b, "</tr>");
        }
        st_buf_puts(b, "</table>");
    }
    st_buf_puts(b, "</section>\n");

    /* CloudWatch */
    if (r->lc->cloudwatch.configured) {
        st_buf_puts(b, "<section id=\"cloudwatch\"><h2>CloudWatch Logs retention</h2>");
        if (r->cw_error[0]) {
            st_buf_puts(b, "<p class=\"note\">");
            esc(b, r->cw_error);
            st_buf_puts(b, "</p>");
        }
        st_buf_puts(b, "<table><tr><th>Log group</th><th>Retention</th><th>Policy "
                       "asks</th><th>Policy</th><th>Stored</th></tr>");
        for (size_t i = 0; i < r->ncw; i++) {
            st_buf_puts(b, "<tr><td class=\"mono\">");
            esc(b, r->cw[i].name);
            st_buf_puts(b, "</td>");
            if (r->cw[i].retention_days)
                snprintf(tmp, sizeof tmp, "%d days", r->cw[i].retention_days);
            else
                snprintf(tmp, sizeof tmp, "never expires");
            td(b, tmp, false);
            snprintf(tmp, sizeof tmp, "%d days", r->cw[i].expected_days);
            td(b, r->cw[i].expected_days ? tmp : "—", false);
            td(b, r->cw[i].policy, false);
            td_bytes(b, r->cw[i].stored_bytes);
            st_buf_puts(b, "</tr>");
        }
        st_buf_puts(b, "</table></section>\n");
    }

    /* retrievability */
    st_buf_puts(b, "<section id=\"retrievability\"><h2>Retrievability drills</h2>");
    bool any = false;
    for (int t = 0; t < ST_TIER_COUNT; t++) any |= r->drills[t].at != 0;
    if (!any) {
        st_buf_puts(b, "<p>No restore drill recorded (<code>strata audit restore-test</code>).</p>");
    } else {
        st_buf_puts(b, "<table><tr><th>Class</th><th>Tested</th><th>Restore "
                       "took</th><th>Outcome</th><th>Object</th></tr>");
        for (int t = 0; t < ST_TIER_COUNT; t++) {
            const rdrill_t *d = &r->drills[t];
            if (!d->at) continue;
            st_buf_puts(b, "<tr>");
            td(b, d->tier, false);
            td_time(b, d->at);
            snprintf(tmp, sizeof tmp, "%.1f s", d->seconds);
            td(b, tmp, true);
            td(b, d->outcome, false);
            st_buf_puts(b, "<td class=\"mono\">");
            esc(b, d->key);
            st_buf_puts(b, "</td></tr>");
        }
        st_buf_puts(b, "</table>");
    }
    st_buf_puts(b, "</section>\n");

    /* audit */
    st_buf_puts(b, "<section id=\"audit\"><h2>Audit trail</h2><table class=\"kv\"><tr><td>Directory</td><td "
                   "class=\"mono\">");
    esc(b, r->audit_dir);
    st_buf_puts(b, "</td></tr><tr><td>State</td>");
    if (!r->audit_present)
        snprintf(tmp, sizeof tmp, "%s", r->audit_enabled ? "enabled, no trail found" : "not enabled");
    else if (r->audit_ok)
        snprintf(tmp, sizeof tmp, "chain intact");
    else
        snprintf(tmp, sizeof tmp, "BROKEN at segment %llu line %llu (seq %llu): %s",
                 (unsigned long long)r->audit_break.segment, (unsigned long long)r->audit_break.line,
                 (unsigned long long)r->audit_break.seq, r->audit_break.what);
    td(b, tmp, false);
    snprintf(tmp, sizeof tmp, "%llu records, %llu segments, %llu seals, %llu closed segments awaiting a seal",
             (unsigned long long)r->audit_records, (unsigned long long)r->audit_segments,
             (unsigned long long)r->audit_seals, (unsigned long long)r->audit_unsealed);
    st_buf_puts(b, "</tr><tr><td>Records</td>");
    td(b, tmp, false);
    st_buf_puts(b, "</tr><tr><td>Last record</td><td class=\"mono\">");
    snprintf(tmp, sizeof tmp, "seq %llu, SHA-256 %s", (unsigned long long)r->audit_last_seq,
             r->audit_present ? r->audit_last_hash : "");
    esc(b, tmp);
    st_buf_puts(b, "</td></tr><tr><td>Last seal</td>");
    td_time(b, r->audit_last_seal);
    st_buf_puts(b,
                "</tr></table><p class=\"note\">Anyone with read access verifies the trail independently: "
                "<code>strata audit verify</code>, or the procedure in docs/compliance.md (SHA-256 over each "
                "line).</p></section>\n");
    st_buf_puts(b, "<footer class=\"note\">Strata " ST_VERSION " retention report</footer></body></html>\n");
    return 0;
}
