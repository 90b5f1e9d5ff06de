/* drain.c: the Drain log-pattern miner behind /loki/api/v1/patterns: lines are split into tokens,
 * routed through a fixed-depth prefix tree (token count, then the first tokens, digits going to a
 * wildcard child) to a few candidate clusters, and joined to the most similar one (positions that
 * differ become "<_>") or start a new cluster. Settings follow Loki's pattern ingester (meta_int.h). */
#include "querier/meta_int.h"

#include "common/err.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LINE      3000
#define MAX_TOKENS    127
#define MIN_TRAIN     4
#define MAX_TRAIN     80
#define TREE_DEPTH    (30 - 2)
#define SIM_THRESHOLD 0.3
#define MAX_CHILDREN  15
#define MAX_CLUSTERS  300

static const char param[] = "<_>";

typedef struct node {
    char **keys; /* owned */
    struct node **kids;
    size_t nkids, capkids;
    int *ids;
    size_t nids, capids;
} node_t;

typedef struct {
    bool alive;
    char **tok; /* owned strings */
    size_t ntok;
    int *spaces; /* indices of tokens followed by one space each (in order) */
    size_t nspaces;
    uint64_t used;
} cluster_t;

struct st_drain {
    node_t root;
    cluster_t *cl;
    size_t ncl, capcl, nalive;
    uint64_t clock;
    st_str_t *tok; /* tokenizer scratch: views into the line */
    int *spaces;
    size_t ntok, nspaces;
};

int st_drain_new(st_drain_t **out)
{
    st_drain_t *d = calloc(1, sizeof *d);
    if (d == NULL) return -ENOMEM;
    d->tok = malloc(MAX_TOKENS * sizeof *d->tok);
    d->spaces = malloc(MAX_LINE * sizeof *d->spaces);
    if (d->tok == NULL || d->spaces == NULL) {
        st_drain_free(d);
        return -ENOMEM;
    }
    *out = d;
    return 0;
}

static void node_dispose(node_t *n)
{
    for (size_t i = 0; i < n->nkids; i++) {
        free(n->keys[i]);
        node_dispose(n->kids[i]);
        free(n->kids[i]);
    }
    free(n->keys);
    free(n->kids);
    free(n->ids);
}

static void cluster_dispose(cluster_t *c)
{
    for (size_t i = 0; i < c->ntok; i++) free(c->tok[i]);
    free(c->tok);
    free(c->spaces);
    memset(c, 0, sizeof *c);
}

void st_drain_free(st_drain_t *d)
{
    if (d == NULL) return;
    node_dispose(&d->root);
    for (size_t i = 0; i < d->ncl; i++) cluster_dispose(&d->cl[i]);
    free(d->cl);
    free(d->tok);
    free(d->spaces);
    free(d);
}

/* ---- tokenizer ------------------------------------------------------------------------------------- */

/* ASCII punctuation that unicode.IsPunct reports, minus the characters kept inside tokens. */
static bool splits(unsigned char c)
{
    return c == ' ' || c == '=' || (c < 0x80 && strchr("!\"#%&'()*,;?@[\\]{}", c) != NULL && c != '\0');
}

static void tokenize(st_drain_t *d, st_str_t line)
{
    d->ntok = d->nspaces = 0;
    size_t start = 0;
    for (size_t i = 0; i < line.n; i++) {
        if (d->ntok >= MAX_TOKENS) break;
        unsigned char c = (unsigned char)line.p[i];
        if (!splits(c)) continue;
        if (i > start) d->tok[d->ntok++] = st_str(line.p + start, i - start);
        if (c == ' ') {
            if (d->ntok > 0) d->spaces[d->nspaces++] = (int)d->ntok - 1; /* leading spaces are dropped */
        } else if (d->ntok < MAX_TOKENS) {
            d->tok[d->ntok++] = st_str(line.p + i, 1);
        }
        start = i + 1;
    }
    if (start < line.n && d->ntok < MAX_TOKENS) d->tok[d->ntok++] = st_str(line.p + start, line.n - start);
}

/* ---- tree ------------------------------------------------------------------------------------------ */

static node_t *child(const node_t *n, st_str_t key)
{
    for (size_t i = 0; i < n->nkids; i++)
        if (strlen(n->keys[i]) == key.n && memcmp(n->keys[i], key.p, key.n) == 0) return n->kids[i];
    return NULL;
}

static node_t *add_child(node_t *n, st_str_t key)
{
    if (n->nkids == n->capkids) {
        size_t cap = n->capkids ? n->capkids * 2 : 2;
        char **k = realloc(n->keys, cap * sizeof *k);
        if (k == NULL) return NULL;
        n->keys = k;
        node_t **c = realloc(n->kids, cap * sizeof *c);
        if (c == NULL) return NULL;
        n->kids = c;
        n->capkids = cap;
    }
    node_t *c = calloc(1, sizeof *c);
    char *k = st_str_dup(key);
    if (c == NULL || k == NULL) {
        free(c);
        free(k);
        return NULL;
    }
    n->keys[n->nkids] = k;
    n->kids[n->nkids++] = c;
    return c;
}

static bool has_digit(st_str_t s)
{
    for (size_t i = 0; i < s.n; i++)
        if (s.p[i] >= '0' && s.p[i] <= '9') return true;
    return false;
}

static bool is_param(const char *t)
{
    return strcmp(t, param) == 0;
}

static node_t *tree_leaf(st_drain_t *d, size_t n, bool create)
{
    char cnt[16];
    snprintf(cnt, sizeof cnt, "%zu", n);
    node_t *cur = child(&d->root, st_cstr(cnt));
    if (cur == NULL && create) cur = add_child(&d->root, st_cstr(cnt));
    return cur;
}

/* The leaf node for tokens, or NULL when no path exists. */
static node_t *tree_search(st_drain_t *d)
{
    node_t *cur = tree_leaf(d, d->ntok, false);
    if (cur == NULL) return NULL;
    size_t depth = 1;
    for (size_t i = 0; i < d->ntok; i++) {
        if (depth >= TREE_DEPTH || depth == d->ntok) break;
        node_t *next = child(cur, d->tok[i]);
        if (next == NULL) next = child(cur, st_cstr(param));
        if (next == NULL) return NULL;
        cur = next;
        depth++;
    }
    return cur;
}

static int add_to_tree(st_drain_t *d, int id)
{
    const cluster_t *c = &d->cl[id];
    node_t *cur = tree_leaf(d, c->ntok, true);
    if (cur == NULL) return -ENOMEM;
    size_t depth = 1;
    for (size_t i = 0; i <= c->ntok; i++) {
        if (depth >= TREE_DEPTH || depth >= c->ntok || i == c->ntok) {
            size_t k = 0;
            for (size_t j = 0; j < cur->nids; j++)
                if (d->cl[cur->ids[j]].alive) cur->ids[k++] = cur->ids[j];
            cur->nids = k;
            if (cur->nids == cur->capids) {
                size_t cap = cur->capids ? cur->capids * 2 : 4;
                int *x = realloc(cur->ids, cap * sizeof *x);
                if (x == NULL) return -ENOMEM;
                cur->ids = x;
                cur->capids = cap;
            }
            cur->ids[cur->nids++] = id;
            return 0;
        }
        st_str_t tok = st_cstr(c->tok[i]);
        node_t *next = child(cur, tok);
        if (next == NULL) {
            node_t *pn = child(cur, st_cstr(param));
            if (!has_digit(tok)) {
                if (pn) {
                    next = cur->nkids < MAX_CHILDREN ? add_child(cur, tok) : pn;
                } else if (cur->nkids + 1 < MAX_CHILDREN) {
                    next = add_child(cur, tok);
                } else {
                    next = add_child(cur, st_cstr(param));
                }
            } else {
                next = pn ? pn : add_child(cur, st_cstr(param));
            }
            if (next == NULL) return -ENOMEM;
        }
        cur = next;
        depth++;
    }
    return 0;
}

/* ---- clusters -------------------------------------------------------------------------------------- */

static double similarity(const cluster_t *c, const st_drain_t *d, int *params)
{
    size_t same = 0;
    *params = 0;
    for (size_t i = 0; i < c->ntok; i++) {
        if (is_param(c->tok[i]))
            (*params)++;
        else if (strlen(c->tok[i]) == d->tok[i].n && memcmp(c->tok[i], d->tok[i].p, d->tok[i].n) == 0)
            same++;
    }
    return (double)same / (double)c->ntok;
}

static void evict_lru(st_drain_t *d)
{
    size_t victim = SIZE_MAX;
    for (size_t i = 0; i < d->ncl; i++)
        if (d->cl[i].alive && (victim == SIZE_MAX || d->cl[i].used < d->cl[victim].used)) victim = i;
    if (victim == SIZE_MAX) return;
    cluster_dispose(&d->cl[victim]);
    d->nalive--;
}

static int new_cluster(st_drain_t *d, int *out)
{
    if (d->nalive >= MAX_CLUSTERS) evict_lru(d);
    if (d->ncl == d->capcl) {
        size_t cap = d->capcl ? d->capcl * 2 : 16;
        cluster_t *x = realloc(d->cl, cap * sizeof *x);
        if (x == NULL) return -ENOMEM;
        d->cl = x;
        d->capcl = cap;
    }
    cluster_t *c = &d->cl[d->ncl];
    memset(c, 0, sizeof *c);
    c->tok = calloc(d->ntok, sizeof *c->tok);
    c->spaces = malloc((d->nspaces ? d->nspaces : 1) * sizeof *c->spaces);
    int rc = c->tok && c->spaces ? 0 : -ENOMEM;
    for (size_t i = 0; i < d->ntok && rc == 0; i++) {
        if ((c->tok[i] = st_str_dup(d->tok[i])) == NULL) rc = -ENOMEM;
        c->ntok = i + 1;
    }
    if (rc < 0) {
        cluster_dispose(c);
        return rc;
    }
    memcpy(c->spaces, d->spaces, d->nspaces * sizeof *c->spaces);
    c->nspaces = d->nspaces;
    c->alive = true;
    c->used = ++d->clock;
    int id = (int)d->ncl++;
    d->nalive++;
    if ((rc = add_to_tree(d, id)) < 0) return rc;
    *out = id;
    return 0;
}

int st_drain_train(st_drain_t *d, st_str_t line, int *cluster)
{
    *cluster = -1;
    if (line.n > MAX_LINE) return 0;
    tokenize(d, line);
    if (d->ntok < MIN_TRAIN || d->ntok > MAX_TRAIN) return 0;
    node_t *leaf = tree_search(d);
    int best = -1, best_params = -1;
    double best_sim = -1;
    for (size_t i = 0; leaf && i < leaf->nids; i++) {
        const cluster_t *c = &d->cl[leaf->ids[i]];
        if (!c->alive || c->ntok != d->ntok) continue;
        int params;
        double sim = similarity(c, d, &params);
        if (sim > best_sim || (sim == best_sim && params > best_params)) {
            best_sim = sim;
            best_params = params;
            best = leaf->ids[i];
        }
    }
    if (best < 0 || best_sim < SIM_THRESHOLD) return new_cluster(d, cluster);
    cluster_t *c = &d->cl[best];
    for (size_t i = 0; i < c->ntok; i++) {
        if (is_param(c->tok[i])) continue;
        if (strlen(c->tok[i]) == d->tok[i].n && memcmp(c->tok[i], d->tok[i].p, d->tok[i].n) == 0) continue;
        char *p = strdup(param);
        if (p == NULL) return -ENOMEM;
        free(c->tok[i]);
        c->tok[i] = p;
    }
    c->used = ++d->clock;
    *cluster = best;
    return 0;
}

size_t st_drain_cap(const st_drain_t *d)
{
    return d->ncl;
}

bool st_drain_alive(const st_drain_t *d, int cluster)
{
    return cluster >= 0 && (size_t)cluster < d->ncl && d->cl[cluster].alive;
}

int st_drain_pattern(const st_drain_t *d, int cluster, st_buf_t *out)
{
    if (!st_drain_alive(d, cluster)) return ST_ENOTFOUND;
    const cluster_t *c = &d->cl[cluster];
    size_t si = 0;
    bool prev_param = false;
    for (size_t i = 0; i < c->ntok; i++) {
        bool p = is_param(c->tok[i]);
        /* "<_><_>" (no separator between them) collapses into one placeholder */
        if (!(p && prev_param)) ST_TRY(st_buf_puts(out, c->tok[i]));
        prev_param = p;
        while (si < c->nspaces && c->spaces[si] == (int)i) {
            ST_TRY(st_buf_putc(out, ' '));
            si++;
            prev_param = false;
        }
    }
    return 0;
}
