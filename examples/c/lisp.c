/* lisp.c - a tiny Lisp interpreter.
 * Exercises: a recursive-descent reader (ctype, strtoll-free number
 * parsing), tagged heap objects allocated from a bump arena (malloc'd
 * chunks), symbol interning with strcmp, lexical closures, an eval loop
 * with proper tail calls, special forms (quote if define set! lambda let
 * begin cond and or), int64 arithmetic with defined wrap-around, and
 * printing with printf %lld. Runs a built-in program: recursive fib,
 * factorials 0..20 in int64, higher-order list functions, a sieve, a
 * quicksort, closures with mutable state, and a tail-recursive loop.
 * Usage: lisp [fib_n]   (default 20, range 0..27)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <ctype.h>

typedef enum { T_NIL, T_INT, T_SYM, T_STR, T_PAIR, T_PRIM, T_LAMBDA, T_TRUE } tag;

struct env;
typedef struct obj obj;
typedef obj *(*primfn)(int argc, obj **argv);

struct obj {
    tag t;
    union {
        int64_t i;
        const char *s;            /* T_SYM (interned name), T_STR */
        struct { obj *car, *cdr; } p;
        struct { primfn fn; const char *name; } prim;
        struct { obj *params, *body; struct env *env; } lam;
    } u;
};

typedef struct env {
    struct env *parent;
    int n, cap;
    obj **syms;
    obj **vals;
} env;

/* ---- arena ---- */
#define CHUNK (256 * 1024)
static char *arena_ptr;
static size_t arena_left;
static uint64_t objects_made, frames_made, calls_made;

static void **arena_chunks; /* newest chunk; each starts with a link */

static void *arena_alloc(size_t n) {
    n = (n + 15) & ~(size_t)15;
    if (n > arena_left) {
        size_t sz = n > CHUNK ? n : CHUNK;
        char *chunk = (char *)malloc(sz + 16);
        if (chunk == NULL) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        *(void **)chunk = arena_chunks;
        arena_chunks = (void **)chunk;
        arena_ptr = chunk + 16;
        arena_left = sz;
    }
    void *p = arena_ptr;
    arena_ptr += n;
    arena_left -= n;
    return p;
}

static void arena_free_all(void) {
    while (arena_chunks != NULL) {
        void **next = (void **)*arena_chunks;
        free(arena_chunks);
        arena_chunks = next;
    }
    arena_ptr = NULL;
    arena_left = 0;
}

static obj NIL_OBJ = {T_NIL, {0}};
static obj TRUE_OBJ = {T_TRUE, {0}};
#define NIL (&NIL_OBJ)
#define TRUE (&TRUE_OBJ)

static obj *new_obj(tag t) {
    obj *o = (obj *)arena_alloc(sizeof(obj));
    o->t = t;
    objects_made++;
    return o;
}

#define SMALL_MIN (-64)
#define SMALL_MAX 1024
static obj small_ints[SMALL_MAX - SMALL_MIN + 1];

static obj *mk_int(int64_t v) {
    if (v >= SMALL_MIN && v <= SMALL_MAX)
        return &small_ints[v - SMALL_MIN];
    obj *o = new_obj(T_INT);
    o->u.i = v;
    return o;
}

static obj *cons(obj *a, obj *b) {
    obj *o = new_obj(T_PAIR);
    o->u.p.car = a;
    o->u.p.cdr = b;
    return o;
}

static void die(const char *msg, const char *detail) {
    fflush(stdout);
    fprintf(stderr, "lisp error: %s%s%s\n", msg, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* ---- symbols ---- */
static obj **symtab;
static int nsyms, capsyms;

static obj *intern(const char *name, size_t len) {
    for (int i = 0; i < nsyms; i++)
        if (strlen(symtab[i]->u.s) == len && strncmp(symtab[i]->u.s, name, len) == 0)
            return symtab[i];
    if (nsyms == capsyms) {
        capsyms = capsyms ? capsyms * 2 : 64;
        symtab = (obj **)realloc(symtab, (size_t)capsyms * sizeof(obj *));
        if (symtab == NULL)
            die("out of memory", NULL);
    }
    char *copy = (char *)arena_alloc(len + 1);
    memcpy(copy, name, len);
    copy[len] = '\0';
    obj *o = new_obj(T_SYM);
    o->u.s = copy;
    symtab[nsyms++] = o;
    return o;
}

static obj *sym(const char *name) { return intern(name, strlen(name)); }

static obj *S_QUOTE, *S_IF, *S_DEFINE, *S_SET, *S_LAMBDA, *S_LET, *S_BEGIN, *S_COND,
    *S_ELSE, *S_AND, *S_OR;

/* ---- environments ---- */
static env *new_env(env *parent, int cap) {
    env *e = (env *)arena_alloc(sizeof(env));
    e->parent = parent;
    e->n = 0;
    e->cap = cap;
    e->syms = cap ? (obj **)arena_alloc((size_t)cap * sizeof(obj *)) : NULL;
    e->vals = cap ? (obj **)arena_alloc((size_t)cap * sizeof(obj *)) : NULL;
    frames_made++;
    return e;
}

static void env_define(env *e, obj *s, obj *v) {
    for (int i = 0; i < e->n; i++)
        if (e->syms[i] == s) {
            e->vals[i] = v;
            return;
        }
    if (e->n == e->cap) {
        int nc = e->cap ? e->cap * 2 : 4;
        obj **ns = (obj **)arena_alloc((size_t)nc * sizeof(obj *));
        obj **nv = (obj **)arena_alloc((size_t)nc * sizeof(obj *));
        if (e->n) {
            memcpy(ns, e->syms, (size_t)e->n * sizeof(obj *));
            memcpy(nv, e->vals, (size_t)e->n * sizeof(obj *));
        }
        e->syms = ns;
        e->vals = nv;
        e->cap = nc;
    }
    e->syms[e->n] = s;
    e->vals[e->n] = v;
    e->n++;
}

static obj **env_lookup(env *e, obj *s) {
    for (; e; e = e->parent)
        for (int i = 0; i < e->n; i++)
            if (e->syms[i] == s)
                return &e->vals[i];
    return NULL;
}

/* ---- reader (recursive descent) ---- */
static const char *src;
static int src_line = 1;

static void skip_ws(void) {
    for (;;) {
        while (*src && isspace((unsigned char)*src)) {
            if (*src == '\n')
                src_line++;
            src++;
        }
        if (*src == ';') {
            while (*src && *src != '\n')
                src++;
            continue;
        }
        return;
    }
}

static obj *read_expr(void);

static int is_delim(char c);

static obj *read_list(void) {
    obj *head = NIL, *tail = NIL;
    for (;;) {
        skip_ws();
        if (*src == '\0')
            die("unexpected end of input in list", NULL);
        if (*src == ')') {
            src++;
            return head;
        }
        if (src[0] == '.' && is_delim(src[1])) { /* dotted tail */
            if (head == NIL)
                die("'.' at start of list", NULL);
            src++;
            obj *last = read_expr();
            if (last == NULL)
                die("unexpected end of input after '.'", NULL);
            tail->u.p.cdr = last;
            skip_ws();
            if (*src != ')')
                die("expected ')' after dotted tail", NULL);
            src++;
            return head;
        }
        obj *cell = cons(read_expr(), NIL);
        if (head == NIL)
            head = cell;
        else
            tail->u.p.cdr = cell;
        tail = cell;
    }
}

static int is_delim(char c) {
    return c == '\0' || c == '(' || c == ')' || c == '\'' || c == '"' || c == ';' ||
           isspace((unsigned char)c);
}

static obj *read_expr(void) {
    skip_ws();
    char c = *src;
    if (c == '\0')
        return NULL;
    if (c == '(') {
        src++;
        return read_list();
    }
    if (c == ')')
        die("unexpected ')'", NULL);
    if (c == '\'') {
        src++;
        obj *q = read_expr();
        if (q == NULL)
            die("quote at end of input", NULL);
        return cons(S_QUOTE, cons(q, NIL));
    }
    if (c == '"') {
        const char *start = ++src;
        while (*src && *src != '"')
            src++;
        if (*src != '"')
            die("unterminated string", NULL);
        size_t len = (size_t)(src - start);
        char *s = (char *)arena_alloc(len + 1);
        memcpy(s, start, len);
        s[len] = '\0';
        src++;
        obj *o = new_obj(T_STR);
        o->u.s = s;
        return o;
    }
    const char *start = src;
    while (!is_delim(*src))
        src++;
    size_t len = (size_t)(src - start);
    /* integer? optional sign then digits */
    size_t k = (start[0] == '-' || start[0] == '+') ? 1 : 0;
    if (len > k) {
        size_t j = k;
        while (j < len && isdigit((unsigned char)start[j]))
            j++;
        if (j == len) {
            uint64_t v = 0;
            for (j = k; j < len; j++)
                v = v * 10u + (uint64_t)(start[j] - '0');
            if (start[0] == '-')
                v = 0u - v;
            return mk_int((int64_t)v);
        }
    }
    if (len == 2 && start[0] == '#' && start[1] == 't')
        return TRUE;
    if (len == 2 && start[0] == '#' && start[1] == 'f')
        return NIL;
    return intern(start, len);
}

/* ---- printer ---- */
static void print_obj(obj *o) {
    switch (o->t) {
    case T_NIL: printf("()"); break;
    case T_TRUE: printf("#t"); break;
    case T_INT: printf("%lld", (long long)o->u.i); break;
    case T_SYM: printf("%s", o->u.s); break;
    case T_STR: printf("\"%s\"", o->u.s); break;
    case T_PRIM: printf("#<primitive %s>", o->u.prim.name); break;
    case T_LAMBDA: printf("#<lambda>"); break;
    case T_PAIR:
        putchar('(');
        for (;;) {
            print_obj(o->u.p.car);
            o = o->u.p.cdr;
            if (o->t != T_PAIR)
                break;
            putchar(' ');
        }
        if (o != NIL) {
            printf(" . ");
            print_obj(o);
        }
        putchar(')');
        break;
    }
}

/* ---- evaluator ---- */
static obj *car(obj *o) {
    if (o->t != T_PAIR)
        die("car of non-pair", NULL);
    return o->u.p.car;
}
static obj *cdr(obj *o) {
    if (o->t != T_PAIR)
        die("cdr of non-pair", NULL);
    return o->u.p.cdr;
}

#define MAX_ARGS 16
static int depth, max_depth;

static obj *eval(obj *x, env *e);

static obj *eval_body(obj *body, env *e, obj **last) {
    /* evaluates all but the last expression; returns the last unevaluated */
    while (cdr(body) != NIL) {
        eval(car(body), e);
        body = cdr(body);
    }
    *last = car(body);
    return NULL;
}

static obj *eval(obj *x, env *e) {
    if (++depth > max_depth)
        max_depth = depth;
    if (depth > 2000)
        die("recursion too deep", NULL);
    obj *result;
    for (;;) {
        switch (x->t) {
        case T_SYM: {
            obj **slot = env_lookup(e, x);
            if (slot == NULL)
                die("unbound symbol", x->u.s);
            result = *slot;
            goto done;
        }
        case T_PAIR: break;
        default:
            result = x;
            goto done;
        }
        obj *op = x->u.p.car;
        obj *args = x->u.p.cdr;
        if (op == S_QUOTE) {
            result = car(args);
            goto done;
        }
        if (op == S_IF) {
            obj *c = eval(car(args), e);
            if (c != NIL) {
                x = car(cdr(args));
            } else {
                obj *alt = cdr(cdr(args));
                if (alt == NIL) {
                    result = NIL;
                    goto done;
                }
                x = car(alt);
            }
            continue;
        }
        if (op == S_DEFINE) {
            obj *target = car(args);
            if (target->t == T_PAIR) { /* (define (f a b) body...) */
                obj *lam = new_obj(T_LAMBDA);
                lam->u.lam.params = cdr(target);
                lam->u.lam.body = cdr(args);
                lam->u.lam.env = e;
                env_define(e, car(target), lam);
                result = car(target);
            } else {
                env_define(e, target, eval(car(cdr(args)), e));
                result = target;
            }
            goto done;
        }
        if (op == S_SET) {
            obj **slot = env_lookup(e, car(args));
            if (slot == NULL)
                die("set! of unbound symbol", car(args)->u.s);
            *slot = eval(car(cdr(args)), e);
            result = *slot;
            goto done;
        }
        if (op == S_LAMBDA) {
            obj *lam = new_obj(T_LAMBDA);
            lam->u.lam.params = car(args);
            lam->u.lam.body = cdr(args);
            lam->u.lam.env = e;
            result = lam;
            goto done;
        }
        if (op == S_BEGIN) {
            if (args == NIL) {
                result = NIL;
                goto done;
            }
            eval_body(args, e, &x);
            continue;
        }
        if (op == S_LET) {
            int n = 0;
            for (obj *b = car(args); b != NIL; b = cdr(b))
                n++;
            env *ne = new_env(e, n);
            for (obj *b = car(args); b != NIL; b = cdr(b))
                env_define(ne, car(car(b)), eval(car(cdr(car(b))), e));
            e = ne;
            eval_body(cdr(args), e, &x);
            continue;
        }
        if (op == S_COND) {
            obj *clause = args;
            for (; clause != NIL; clause = cdr(clause)) {
                obj *test = car(car(clause));
                if (test == S_ELSE || eval(test, e) != NIL)
                    break;
            }
            if (clause == NIL) {
                result = NIL;
                goto done;
            }
            eval_body(cdr(car(clause)), e, &x);
            continue;
        }
        if (op == S_AND || op == S_OR) {
            if (args == NIL) {
                result = op == S_AND ? TRUE : NIL;
                goto done;
            }
            while (cdr(args) != NIL) {
                obj *v = eval(car(args), e);
                if ((op == S_AND) == (v == NIL)) {
                    result = v;
                    goto done;
                }
                args = cdr(args);
            }
            x = car(args);
            continue;
        }
        /* application */
        obj *f = eval(op, e);
        obj *argv[MAX_ARGS];
        int argc = 0;
        for (obj *a = args; a != NIL; a = cdr(a)) {
            if (argc == MAX_ARGS)
                die("too many arguments", NULL);
            argv[argc++] = eval(car(a), e);
        }
        calls_made++;
        if (f->t == T_PRIM) {
            result = f->u.prim.fn(argc, argv);
            goto done;
        }
        if (f->t != T_LAMBDA)
            die("call of non-function", NULL);
        env *ne = new_env(f->u.lam.env, argc);
        int i = 0;
        obj *p = f->u.lam.params;
        for (; p->t == T_PAIR; p = p->u.p.cdr, i++) {
            if (i >= argc)
                die("too few arguments", NULL);
            ne->syms[ne->n] = p->u.p.car;
            ne->vals[ne->n] = argv[i];
            ne->n++;
        }
        if (p != NIL) { /* rest parameter: (lambda (a . rest) ...) or (lambda args ...) */
            obj *rest = NIL;
            for (int j = argc - 1; j >= i; j--)
                rest = cons(argv[j], rest);
            env_define(ne, p, rest);
        } else if (i != argc) {
            die("too many arguments to lambda", NULL);
        }
        e = ne;
        eval_body(f->u.lam.body, e, &x);
    }
done:
    depth--;
    return result;
}

/* ---- primitives ---- */
static int64_t want_int(obj *o) {
    if (o->t != T_INT)
        die("expected an integer", NULL);
    return o->u.i;
}

static obj *p_add(int argc, obj **argv) {
    uint64_t s = 0;
    for (int i = 0; i < argc; i++)
        s += (uint64_t)want_int(argv[i]);
    return mk_int((int64_t)s);
}
static obj *p_mul(int argc, obj **argv) {
    uint64_t s = 1;
    for (int i = 0; i < argc; i++)
        s *= (uint64_t)want_int(argv[i]);
    return mk_int((int64_t)s);
}
static obj *p_sub(int argc, obj **argv) {
    if (argc == 0)
        die("- needs arguments", NULL);
    uint64_t s = (uint64_t)want_int(argv[0]);
    if (argc == 1)
        return mk_int((int64_t)(0u - s));
    for (int i = 1; i < argc; i++)
        s -= (uint64_t)want_int(argv[i]);
    return mk_int((int64_t)s);
}
static obj *p_div(int argc, obj **argv) {
    if (argc != 2)
        die("/ takes two arguments", NULL);
    int64_t a = want_int(argv[0]), b = want_int(argv[1]);
    if (b == 0)
        die("division by zero", NULL);
    if (b == -1)
        return mk_int((int64_t)(0u - (uint64_t)a));
    return mk_int(a / b);
}
static obj *p_mod(int argc, obj **argv) {
    if (argc != 2)
        die("mod takes two arguments", NULL);
    int64_t a = want_int(argv[0]), b = want_int(argv[1]);
    if (b == 0)
        die("division by zero", NULL);
    if (b == -1)
        return mk_int(0);
    int64_t r = a % b;
    if (r != 0 && ((r < 0) != (b < 0)))
        r += b; /* floored modulo, like Scheme's modulo */
    return mk_int(r);
}

#define CMP_PRIM(name, op)                                                  \
    static obj *name(int argc, obj **argv) {                                \
        for (int i = 1; i < argc; i++)                                      \
            if (!(want_int(argv[i - 1]) op want_int(argv[i])))              \
                return NIL;                                                 \
        return TRUE;                                                        \
    }
CMP_PRIM(p_lt, <)
CMP_PRIM(p_gt, >)
CMP_PRIM(p_le, <=)
CMP_PRIM(p_ge, >=)
CMP_PRIM(p_numeq, ==)

static void want_argc(int argc, int n, const char *name) {
    if (argc != n)
        die("wrong number of arguments to", name);
}
static obj *p_cons(int argc, obj **argv) { want_argc(argc, 2, "cons"); return cons(argv[0], argv[1]); }
static obj *p_car(int argc, obj **argv) { want_argc(argc, 1, "car"); return car(argv[0]); }
static obj *p_cdr(int argc, obj **argv) { want_argc(argc, 1, "cdr"); return cdr(argv[0]); }
static obj *p_list(int argc, obj **argv) {
    obj *r = NIL;
    for (int i = argc - 1; i >= 0; i--)
        r = cons(argv[i], r);
    return r;
}
static obj *p_nullp(int argc, obj **argv) { want_argc(argc, 1, "null?"); return argv[0] == NIL ? TRUE : NIL; }
static obj *p_pairp(int argc, obj **argv) { want_argc(argc, 1, "pair?"); return argv[0]->t == T_PAIR ? TRUE : NIL; }
static obj *p_not(int argc, obj **argv) { want_argc(argc, 1, "not"); return argv[0] == NIL ? TRUE : NIL; }
static obj *p_eqp(int argc, obj **argv) {
    want_argc(argc, 2, "eq?");
    if (argv[0]->t == T_INT && argv[1]->t == T_INT)
        return argv[0]->u.i == argv[1]->u.i ? TRUE : NIL;
    return argv[0] == argv[1] ? TRUE : NIL;
}
static obj *p_display(int argc, obj **argv) {
    for (int i = 0; i < argc; i++) {
        if (i)
            putchar(' ');
        if (argv[i]->t == T_STR)
            fputs(argv[i]->u.s, stdout);
        else
            print_obj(argv[i]);
    }
    return NIL;
}
static obj *p_print(int argc, obj **argv) {
    p_display(argc, argv);
    putchar('\n');
    return NIL;
}

static void def_prim(env *e, const char *name, primfn fn) {
    obj *o = new_obj(T_PRIM);
    o->u.prim.fn = fn;
    o->u.prim.name = name;
    env_define(e, sym(name), o);
}

/* ---- the built-in program ---- */
static const char PROGRAM[] =
    "; recursion\n"
    "(define (fib n) (if (< n 2) n (+ (fib (- n 1)) (fib (- n 2)))))\n"
    "(print \"fib\" fib-n \"=\" (fib fib-n))\n"
    "(define (fact n) (if (= n 0) 1 (* n (fact (- n 1)))))\n"
    "\n"
    "; list utilities (tail-recursive where lists get long)\n"
    "(define (reverse-onto xs acc) (if (null? xs) acc (reverse-onto (cdr xs) (cons (car xs) acc))))\n"
    "(define (reverse xs) (reverse-onto xs '()))\n"
    "(define (range a b) (define (go b acc) (if (< b a) acc (go (- b 1) (cons b acc)))) (go b '()))\n"
    "(define (map f xs) (define (go xs acc) (if (null? xs) (reverse acc) (go (cdr xs) (cons (f (car xs)) acc)))) (go xs '()))\n"
    "(define (filter p xs) (define (go xs acc) (cond ((null? xs) (reverse acc)) ((p (car xs)) (go (cdr xs) (cons (car xs) acc))) (else (go (cdr xs) acc)))) (go xs '()))\n"
    "(define (foldl f acc xs) (if (null? xs) acc (foldl f (f acc (car xs)) (cdr xs))))\n"
    "(define (length xs) (foldl (lambda (n x) (+ n 1)) 0 xs))\n"
    "(define (append a b) (reverse-onto (reverse a) b))\n"
    "\n"
    "(print \"factorials:\" (map fact (range 0 20)))\n"
    "(print \"20! / 18! =\" (/ (fact 20) (fact 18)))\n"
    "(print \"21! wraps to\" (fact 21))\n"
    "\n"
    "; primes by trial division, and their squares summed\n"
    "(define (divides? d n) (= (mod n d) 0))\n"
    "(define (prime? n) (and (> n 1) (let ((limit n)) (define (try d) (cond ((> (* d d) n) #t) ((divides? d n) #f) (else (try (+ d 1))))) (try 2))))\n"
    "(define primes (filter prime? (range 1 200)))\n"
    "(print \"primes below 200:\" (length primes))\n"
    "(print (filter (lambda (p) (> p 150)) primes))\n"
    "(print \"sum of squares:\" (foldl + 0 (map (lambda (p) (* p p)) primes)))\n"
    "\n"
    "; quicksort on a list\n"
    "(define (qsort xs) (if (null? xs) '() (let ((p (car xs)) (rest (cdr xs)))\n"
    "  (append (qsort (filter (lambda (x) (< x p)) rest))\n"
    "          (cons p (qsort (filter (lambda (x) (>= x p)) rest)))))))\n"
    "(define (lcg-list n seed) (if (= n 0) '() (cons (mod seed 1000) (lcg-list (- n 1) (mod (+ (* seed 1103515245) 12345) 2147483648)))))\n"
    "(define data (lcg-list 40 7))\n"
    "(print \"data:  \" data)\n"
    "(print \"sorted:\" (qsort data))\n"
    "\n"
    "; closures with state\n"
    "(define (make-counter start step) (lambda () (set! start (+ start step)) start))\n"
    "(define c1 (make-counter 0 1))\n"
    "(define c2 (make-counter 100 -7))\n"
    "(c1) (c1) (c2)\n"
    "(print \"counters:\" (list (c1) (c2) (c1) (c2)))\n"
    "(define (compose f g) (lambda (x) (f (g x))))\n"
    "(define inc (lambda (x) (+ x 1)))\n"
    "(define sq (lambda (x) (* x x)))\n"
    "(print \"compose:\" ((compose sq inc) 9) ((compose inc sq) 9))\n"
    "(define (sum . xs) (foldl + 0 xs))\n"
    "(print \"variadic sum:\" (sum 1 2 3 4 5 6 7 8 9 10))\n"
    "\n"
    "; tail calls: a loop of 100000 iterations in constant C stack\n"
    "(define (sum-to n acc) (if (= n 0) acc (sum-to (- n 1) (+ acc n))))\n"
    "(print \"sum 1..100000 =\" (sum-to 100000 0))\n"
    "(define (collatz n steps) (cond ((= n 1) steps) ((= (mod n 2) 0) (collatz (/ n 2) (+ steps 1))) (else (collatz (+ (* 3 n) 1) (+ steps 1)))))\n"
    "(define (longest-collatz i best best-n) (if (> i 3000) (list best-n best) (let ((s (collatz i 0))) (if (> s best) (longest-collatz (+ i 1) s i) (longest-collatz (+ i 1) best best-n)))))\n"
    "(print \"longest collatz below 3000 (n steps):\" (longest-collatz 1 0 1))\n"
    "\n"
    "; misc\n"
    "(define (gcd a b) (if (= b 0) a (gcd b (mod a b))))\n"
    "(print \"gcd:\" (gcd 1071 462) (gcd 832040 514229))\n"
    "(define (ack m n) (cond ((= m 0) (+ n 1)) ((= n 0) (ack (- m 1) 1)) (else (ack (- m 1) (ack m (- n 1))))))\n"
    "(print \"ackermann(2,3) =\" (ack 2 3))\n"
    "(print \"quoted:\" '(a (b c) . d) (eq? 'x 'x) (eq? 'x 'y) (pair? '()) (not #f))\n"
    "(print \"negatives:\" (- 5) (mod -7 3) (mod 7 -3) (/ -7 2) (* -4611686018427387904 2))\n";

int main(int argc, char **argv) {
    int fib_n = 20;
    if (argc > 1)
        fib_n = atoi(argv[1]);
    if (fib_n < 0 || fib_n > 27) {
        fprintf(stderr, "usage: lisp [fib_n 0..27]\n");
        return 1;
    }
    for (int v = SMALL_MIN; v <= SMALL_MAX; v++) {
        small_ints[v - SMALL_MIN].t = T_INT;
        small_ints[v - SMALL_MIN].u.i = v;
    }
    S_QUOTE = sym("quote");
    S_IF = sym("if");
    S_DEFINE = sym("define");
    S_SET = sym("set!");
    S_LAMBDA = sym("lambda");
    S_LET = sym("let");
    S_BEGIN = sym("begin");
    S_COND = sym("cond");
    S_ELSE = sym("else");
    S_AND = sym("and");
    S_OR = sym("or");

    env *global = new_env(NULL, 32);
    def_prim(global, "+", p_add);
    def_prim(global, "-", p_sub);
    def_prim(global, "*", p_mul);
    def_prim(global, "/", p_div);
    def_prim(global, "mod", p_mod);
    def_prim(global, "<", p_lt);
    def_prim(global, ">", p_gt);
    def_prim(global, "<=", p_le);
    def_prim(global, ">=", p_ge);
    def_prim(global, "=", p_numeq);
    def_prim(global, "cons", p_cons);
    def_prim(global, "car", p_car);
    def_prim(global, "cdr", p_cdr);
    def_prim(global, "list", p_list);
    def_prim(global, "null?", p_nullp);
    def_prim(global, "pair?", p_pairp);
    def_prim(global, "not", p_not);
    def_prim(global, "eq?", p_eqp);
    def_prim(global, "display", p_display);
    def_prim(global, "print", p_print);
    env_define(global, sym("fib-n"), mk_int(fib_n));

    src = PROGRAM;
    int forms = 0;
    for (;;) {
        obj *x = read_expr();
        if (x == NULL)
            break;
        forms++;
        eval(x, global);
    }
    printf("forms %d, calls %llu, frames %llu, objects %llu, symbols %d, max eval depth %d\n",
           forms, (unsigned long long)calls_made, (unsigned long long)frames_made,
           (unsigned long long)objects_made, nsyms, max_depth);
    free(symtab);
    arena_free_all();
    return 0;
}
