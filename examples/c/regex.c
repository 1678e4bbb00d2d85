/* regex.c - a backtracking regular-expression matcher over generated text.
 * Exercises: recursion over pattern and text pointers, character
 * classes, byte comparisons, many short calls (a grep-like loop).
 * Supports c . ^ $ * + ? and [classes] with ranges.
 * Usage: regex [kib] (default 128) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static int match_here(const char *re, const char *text);

/* The length of one pattern atom at re: a char, '.', or a [class]. */
static int atom_len(const char *re) {
    if (*re == '[') {
        const char *p = re + 1;
        if (*p == '^')
            p++;
        if (*p == ']')
            p++;
        while (*p && *p != ']')
            p++;
        return (int)(p - re) + (*p == ']');
    }
    return 1;
}

static int atom_matches(const char *re, char c) {
    if (c == 0)
        return 0;
    if (*re == '.')
        return 1;
    if (*re != '[')
        return *re == c;
    const char *p = re + 1;
    int negate = *p == '^', found = 0;
    if (negate)
        p++;
    for (int first = 1; *p && (*p != ']' || first); first = 0, p++) {
        if (p[1] == '-' && p[2] && p[2] != ']') {
            if (c >= p[0] && c <= p[2])
                found = 1;
            p += 2;
        } else if (*p == c) {
            found = 1;
        }
    }
    return found != negate;
}

static int match_repeat(const char *atom, int min, int max_one, const char *re, const char *text) {
    const char *t = text;
    int count = 0;
    while ((!max_one || count < 1) && atom_matches(atom, *t)) {
        t++;
        count++;
    }
    for (; count >= min; count--, t--)
        if (match_here(re, t))
            return 1;
    return 0;
}

static int match_here(const char *re, const char *text) {
    for (;;) {
        if (re[0] == 0)
            return 1;
        if (re[0] == '$' && re[1] == 0)
            return *text == 0 || *text == '\n';
        int n = atom_len(re);
        char op = re[n];
        if (op == '*' || op == '+' || op == '?')
            return match_repeat(re, op == '+', op == '?', re + n + 1, text);
        if (!atom_matches(re, *text))
            return 0;
        re += n;
        text++;
    }
}

static int match_line(const char *re, const char *line) {
    if (re[0] == '^')
        return match_here(re + 1, line);
    do {
        if (match_here(re, line))
            return 1;
    } while (*line++);
    return 0;
}

int main(int argc, char **argv) {
    size_t n = (argc > 1 ? (size_t)atol(argv[1]) : 128) * 1024;
    char *text = malloc(n + 1);
    if (!text)
        return 2;
    static const char *parts[] = {"error", "warn", "info", "id=", "0x", "ff", "region", " ",
                                  "42", "moved", "to", "at", "-", ":", "a", "z"};
    uint32_t x = 5;
    size_t i = 0, col = 0;
    while (i < n) {
        x = x * 1664525u + 1013904223u;
        if (col > 40 + (x >> 28)) {
            text[i++] = '\n';
            col = 0;
            continue;
        }
        const char *p = parts[(x >> 20) & 15];
        while (*p && i < n) {
            text[i++] = *p++;
            col++;
        }
    }
    text[n] = 0;
    static const char *patterns[] = {"error.*moved", "^info", "id=[0-9]+", "0x[0-9a-f]+ff",
                                     "re?gion +to", "[^a-z ]-[a-z]$", "warn:?a*z", "a.z.a",
                                     "(moved)", "4+2"};
    uint32_t result = 0;
    for (int p = 0; p < 10; p++) {
        long lines = 0, hits = 0;
        char *line = text;
        while (*line) {
            char *end = strchr(line, '\n');
            if (end)
                *end = 0;
            lines++;
            hits += match_line(patterns[p], line);
            if (!end)
                break;
            *end = '\n';
            line = end + 1;
        }
        printf("%-16s %ld of %ld lines\n", patterns[p], hits, lines);
        result = result * 31 + (uint32_t)hits;
    }
    printf("regex %08x\n", result);
    return 0;
}
