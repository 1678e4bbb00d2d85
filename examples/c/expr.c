/* expr.c - a tokenizer and recursive-descent parser for arithmetic
 * expressions with variables, building an AST in an arena and evaluating
 * it, over generated source text.
 * Exercises: character classification, a token array, recursion by
 * precedence level, tree nodes addressed by index, a symbol table.
 * Usage: expr [statements] [passes]   (defaults 3000, 5) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

enum { T_NUM, T_ID, T_OP, T_LP, T_RP, T_ASSIGN, T_SEMI, T_END };
struct token { int kind, value; };
struct node { int op, left, right, value; };

static struct token *toks;
static int ntok, pos;
static struct node *nodes;
static int nnode;
static int32_t vars[26];

static int new_node(int op, int left, int right, int value) {
    nodes[nnode] = (struct node){op, left, right, value};
    return nnode++;
}

static void tokenize(const char *s) {
    ntok = 0;
    while (*s) {
        char c = *s;
        if (c == ' ' || c == '\n') {
            s++;
        } else if (c >= '0' && c <= '9') {
            int v = 0;
            while (*s >= '0' && *s <= '9')
                v = v * 10 + (*s++ - '0');
            toks[ntok++] = (struct token){T_NUM, v};
        } else if (c >= 'a' && c <= 'z') {
            toks[ntok++] = (struct token){T_ID, c - 'a'};
            s++;
        } else {
            int kind = c == '(' ? T_LP : c == ')' ? T_RP : c == '=' ? T_ASSIGN : c == ';' ? T_SEMI : T_OP;
            toks[ntok++] = (struct token){kind, c};
            s++;
        }
    }
    toks[ntok++] = (struct token){T_END, 0};
}

static int expression(void);
static int primary(void) {
    struct token t = toks[pos++];
    if (t.kind == T_NUM)
        return new_node('n', -1, -1, t.value);
    if (t.kind == T_ID)
        return new_node('v', -1, -1, t.value);
    if (t.kind == T_LP) {
        int e = expression();
        pos++; /* ')' */
        return e;
    }
    if (t.kind == T_OP && t.value == '-')
        return new_node('~', primary(), -1, 0);
    return new_node('n', -1, -1, 0);
}
static int term(void) {
    int left = primary();
    while (toks[pos].kind == T_OP && strchr("*/%", toks[pos].value)) {
        int op = toks[pos++].value;
        left = new_node(op, left, primary(), 0);
    }
    return left;
}
static int sum(void) {
    int left = term();
    while (toks[pos].kind == T_OP && (toks[pos].value == '+' || toks[pos].value == '-')) {
        int op = toks[pos++].value;
        left = new_node(op, left, term(), 0);
    }
    return left;
}
static int expression(void) {
    int left = sum();
    while (toks[pos].kind == T_OP && (toks[pos].value == '<' || toks[pos].value == '&')) {
        int op = toks[pos++].value;
        left = new_node(op, left, sum(), 0);
    }
    return left;
}
static int32_t eval(int n) {
    struct node *d = &nodes[n];
    switch (d->op) {
    case 'n': return d->value;
    case 'v': return vars[d->value];
    case '~': return (int32_t)(0u - (uint32_t)eval(d->left));
    }
    uint32_t a = (uint32_t)eval(d->left), b = (uint32_t)eval(d->right);
    switch (d->op) {
    case '+': return (int32_t)(a + b);
    case '-': return (int32_t)(a - b);
    case '*': return (int32_t)(a * b);
    case '/': return b ? (int32_t)(a / b) : 0;
    case '%': return b ? (int32_t)(a % b) : 0;
    case '<': return (int32_t)a < (int32_t)b;
    default: return (int32_t)(a & b);
    }
}

static uint32_t rng = 17;
static uint32_t next_random(void) {
    rng = rng * 1664525u + 1013904223u;
    return rng >> 8;
}
static char *src;
static size_t len;
static void gen(int depth) {
    uint32_t r = next_random();
    if (depth > 5 || r % 4 == 0) {
        if (r & 16)
            len += (size_t)sprintf(src + len, "%c", 'a' + (int)(r >> 5) % 26);
        else
            len += (size_t)sprintf(src + len, "%u", (r >> 5) % 1000);
        return;
    }
    static const char ops[] = "+-*/%<&+-*";
    src[len++] = '(';
    gen(depth + 1);
    src[len++] = ops[(r >> 3) % 10];
    gen(depth + 1);
    src[len++] = ')';
}

int main(int argc, char **argv) {
    int statements = argc > 1 ? atoi(argv[1]) : 3000;
    int passes = argc > 2 ? atoi(argv[2]) : 5;
    src = malloc((size_t)statements * 1024 + 16);
    toks = malloc(sizeof(struct token) * ((size_t)statements * 1024 + 16));
    nodes = malloc(sizeof(struct node) * ((size_t)statements * 1024 + 16));
    if (!src || !toks || !nodes)
        return 2;
    for (int s = 0; s < statements; s++) {
        len += (size_t)sprintf(src + len, "%c = ", 'a' + s % 26);
        gen(0);
        src[len++] = ';';
        src[len++] = '\n';
    }
    src[len] = 0;
    uint32_t check = 0;
    for (int pass = 0; pass < passes; pass++) {
        tokenize(src);
        memset(vars, 0, sizeof vars);
        pos = 0;
        nnode = 0;
        while (toks[pos].kind != T_END) {
            int var = toks[pos].value;
            pos += 2;
            int e = expression();
            pos++; /* ';' */
            vars[var] = (int32_t)((uint32_t)eval(e) + (uint32_t)pass);
        }
        for (int v = 0; v < 26; v++)
            check = check * 31 + (uint32_t)vars[v];
    }
    printf("expr bytes %zu tokens %d nodes %d check %08x\n", len, ntok, nnode, check);
    return 0;
}
