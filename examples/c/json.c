/* json.c - generates a JSON document and parses it back.
 * Exercises: byte-at-a-time scanning with character classes, a recursive
 * descent parser, string escapes, number conversion by hand, a snprintf-
 * built document in one growing buffer.
 * Usage: json [records] [passes]   (defaults 4000, 5) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static char *doc;
static size_t len, cap;

static void emit(const char *s, size_t n) {
    if (len + n + 1 > cap) {
        cap = (cap + n + 1) * 2;
        doc = realloc(doc, cap);
        if (!doc)
            exit(2);
    }
    memcpy(doc + len, s, n);
    len += n;
    doc[len] = 0;
}
static void emits(const char *s) { emit(s, strlen(s)); }

struct stats {
    long objects, arrays, strings, numbers, keys, bools, nulls, depth_max;
    long long int_sum;
    uint32_t string_hash;
};

static const char *p;
static struct stats st;

static void ws(void) {
    while (*p == ' ' || *p == '\n' || *p == '\t' || *p == '\r')
        p++;
}
static int value(int depth);
static int string(void) {
    if (*p != '"')
        return 0;
    p++;
    uint32_t h = 2166136261u;
    while (*p != '"') {
        char c = *p++;
        if (c == 0)
            return 0;
        if (c == '\\') {
            c = *p++;
            switch (c) {
            case 'n': c = '\n'; break;
            case 't': c = '\t'; break;
            case '"': case '\\': case '/': break;
            case 'u': {
                unsigned v = 0;
                for (int k = 0; k < 4; k++) {
                    char d = *p++;
                    v = v * 16 + (unsigned)(d >= 'a' ? d - 'a' + 10 : d >= 'A' ? d - 'A' + 10 : d - '0');
                }
                c = (char)v;
                break;
            }
            default: return 0;
            }
        }
        h = (h ^ (uint8_t)c) * 16777619u;
    }
    p++;
    st.strings++;
    st.string_hash ^= h;
    return 1;
}
static int number(void) {
    int neg = *p == '-';
    if (neg)
        p++;
    if (*p < '0' || *p > '9')
        return 0;
    long long v = 0;
    while (*p >= '0' && *p <= '9')
        v = v * 10 + (*p++ - '0');
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    st.numbers++;
    st.int_sum += neg ? -v : v;
    return 1;
}
static int value(int depth) {
    ws();
    if (depth > st.depth_max)
        st.depth_max = depth;
    switch (*p) {
    case '{':
        p++;
        st.objects++;
        ws();
        if (*p == '}') {
            p++;
            return 1;
        }
        for (;;) {
            ws();
            if (!string())
                return 0;
            st.keys++;
            ws();
            if (*p++ != ':')
                return 0;
            if (!value(depth + 1))
                return 0;
            ws();
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p++ == '}')
                return 1;
            return 0;
        }
    case '[':
        p++;
        st.arrays++;
        ws();
        if (*p == ']') {
            p++;
            return 1;
        }
        for (;;) {
            if (!value(depth + 1))
                return 0;
            ws();
            if (*p == ',') {
                p++;
                continue;
            }
            if (*p++ == ']')
                return 1;
            return 0;
        }
    case '"':
        return string();
    case 't':
        if (strncmp(p, "true", 4))
            return 0;
        p += 4;
        st.bools++;
        return 1;
    case 'f':
        if (strncmp(p, "false", 5))
            return 0;
        p += 5;
        st.bools++;
        return 1;
    case 'n':
        if (strncmp(p, "null", 4))
            return 0;
        p += 4;
        st.nulls++;
        return 1;
    default:
        return number();
    }
}

int main(int argc, char **argv) {
    long records = argc > 1 ? atol(argv[1]) : 4000;
    int passes = argc > 2 ? atoi(argv[2]) : 5;
    char buf[256];
    uint32_t x = 42;
    emits("{\"records\": [\n");
    for (long i = 0; i < records; i++) {
        x = x * 1103515245u + 12345u;
        int n = snprintf(buf, sizeof buf,
                         "  {\"id\": %ld, \"name\": \"item\\t%u\\u0041\", \"price\": %d.%02d, "
                         "\"tags\": [\"a\", \"b%u\", null], \"ok\": %s, \"nested\": {\"depth\": [[%d], {}]}}%s\n",
                         i, x >> 20, (int)(x >> 8) % 1000 - 500, (int)(x % 100), x & 7,
                         x & 1 ? "true" : "false", (int)(x >> 28), i + 1 < records ? "," : "");
        emit(buf, (size_t)n);
    }
    emits("], \"count\": ");
    snprintf(buf, sizeof buf, "%ld}", records);
    emits(buf);
    int ok = 1;
    for (int pass = 0; pass < passes; pass++) {
        memset(&st, 0, sizeof st);
        p = doc;
        ok &= value(0);
        ws();
        ok &= *p == 0;
    }
    printf("ok %d bytes %zu objects %ld arrays %ld strings %ld numbers %ld keys %ld bools %ld "
           "nulls %ld depth %ld sum %lld hash %08x\n",
           ok, len, st.objects, st.arrays, st.strings, st.numbers, st.keys, st.bools, st.nulls,
           st.depth_max, st.int_sum, st.string_hash);
    free(doc);
    return 0;
}
