/* template_int.h: internals of the template engine shared by template.c (lexer, parser, executor)
 * and template_funcs.c (Loki's function map, Go's built-ins and fmt's printf). Values model the Go
 * types a LogQL template can produce; errors unwind with longjmp to st_tmpl_exec. */
#ifndef ST_QUERIER_TEMPLATE_INT_H
#define ST_QUERIER_TEMPLATE_INT_H

#include "querier/golike.h"
#include "querier/template.h"

#include <setjmp.h>

/* Longest string a template may build (Go has no limit; this bounds memory and time). */
#define TX_MAX_STR (16u << 20)
/* Most range iterations one execution may run. */
#define TX_MAX_ITER 1000000
/* Work one execution may do (bytes handled by functions and output, plus calls and iterations). */
#define TX_MAX_WORK (UINT64_C(1) << 28)

typedef enum {
    V_NIL,   /* Go's invalid reflect.Value / nil interface */
    V_STR,   /* string */
    V_INT,   /* int */
    V_INT64, /* int64 */
    V_FLOAT, /* float64 */
    V_BOOL,  /* bool */
    V_TIME,  /* time.Time */
    V_MAP,   /* the dot: map[string]string of the labels */
} vkind_t;

typedef struct {
    uint8_t k;
    union {
        st_str_t s;
        int64_t i;
        double f;
        bool b;
        st_go_time_t t;
    };
} tval_t;

/* Parameter types of template functions. */
enum {
    P_STR = 's',   /* string */
    P_INT = 'i',   /* int */
    P_FLOAT = 'f', /* float64 */
    P_BOOL = 'b',  /* bool */
    P_TIME = 't',  /* time.Time */
    P_ANY = 'a',   /* interface{} */
    P_VAL = 'v',   /* reflect.Value (built-ins) */
};

typedef struct tx tx_t;
typedef struct tnode tnode_t;

/* A function: params like "si" (string, int); a trailing '*' makes the last one variadic. Returns
 * 0, or -1 with the error text in x->fnerr ("error calling <name>: <text>"). */
typedef int (*tfn_t)(tx_t *x, tnode_t *call, const tval_t *a, size_t n, tval_t *out);

typedef struct {
    const char *name;
    const char *params;
    tfn_t fn;
} tfunc_t;

/* Finds a function of the map (NULL if not defined). */
const tfunc_t *tx_func(st_str_t name);

/* Regex cache of one call site (regexReplaceAll, count). */
typedef struct tx_re tx_re_t;
void tx_re_free(tx_re_t *r);

struct tnode {
    uint8_t kind;
    uint32_t pos;
    st_str_t text; /* see template.c */
    st_str_t quoted;
    st_str_t *idents;
    size_t nidents;
    tnode_t *child;
    tnode_t **v;
    size_t n;
    tnode_t **decl;
    size_t ndecl;
    bool is_assign;
    tnode_t *list, *else_list;
    bool is_int, is_uint, is_float, b;
    int64_t i;
    double f;
    const tfunc_t *fn;
    tx_re_t *re;      /* call sites of regex functions */
    tnode_t *next_re; /* chain of nodes owning a regex cache */
};

typedef struct {
    st_str_t name;
    tval_t v;
} tvar_t;

/* Execution state (one per st_tmpl_t, reused). */
struct tx {
    st_tmpl_t *t;
    const st_tmpl_data_t *d;
    st_buf_t *out;
    size_t out_start;
    tnode_t *at; /* node for error context */
    jmp_buf jb;
    int rc; /* ST_EPARSE or -ENOMEM when unwinding */
    tvar_t *vars;
    size_t nvars, capvars;
    size_t iters;
    uint64_t work;
    st_buf_t fnerr; /* a function's error text */
    st_buf_t msg;   /* the final error message */
    st_buf_t tmp;   /* scratch for functions */
    /* exec arena */
    struct tx_blk *blk_head, *blk_cur;
};

/* Exec helpers used by functions. */
char *tx_alloc(tx_t *x, size_t n); /* longjmps with -ENOMEM */
st_str_t tx_strdup(tx_t *x, const char *p, size_t n);
st_str_t tx_buf_str(tx_t *x, const st_buf_t *b); /* arena copy of b */
_Noreturn void tx_oom(tx_t *x);
/* Sets x->fnerr and returns -1. */
int tx_fn_fail(tx_t *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Go's fmt %v of a value appended to b. */
void tx_print(tx_t *x, st_buf_t *b, const tval_t *v);
/* Go type name ("string", "int", "map[string]string", ...). */
const char *tx_type_name(const tval_t *v);
/* text/template's truth; false in *ok for values that have none. */
bool tx_truth(const tval_t *v, bool *ok);
/* Labels of the dot map sorted by name (for range and printing); valid during the execution. */
const st_label_t *tx_sorted_labels(tx_t *x, size_t *n);
/* The value of key in the dot map (missingkey=zero: ""). */
st_str_t tx_map_get(tx_t *x, st_str_t key, bool *found);
/* Compiles (cached per call site) a Go regexp; NULL with x->fnerr set on a bad expression. names
 * gets the capture group names by index (empty for unnamed groups). */
const void *tx_regex(tx_t *x, tnode_t *call, st_str_t re, void **md, const st_str_t **names, size_t *nnames);

#endif
