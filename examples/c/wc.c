/*
 * wc.c -- exercises reading stdin to EOF with fread(): counts lines
 * (newline characters), words (maximal runs of non-space bytes, ASCII
 * whitespace only) and bytes, like `wc`.
 *
 * Usage: wc < FILE
 * Output: "LINES WORDS BYTES", then the longest line length. Exit status 0.
 */
#include <stdio.h>

static int is_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int main(void)
{
    unsigned char buf[4096];
    unsigned long lines = 0, words = 0, bytes = 0, longest = 0, cur = 0;
    int in_word = 0;
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, stdin)) > 0) {
        for (size_t i = 0; i < n; i++) {
            int c = buf[i];
            bytes++;
            if (c == '\n') {
                lines++;
                if (cur > longest)
                    longest = cur;
                cur = 0;
            } else {
                cur++;
            }
            if (is_space(c)) {
                in_word = 0;
            } else if (!in_word) {
                in_word = 1;
                words++;
            }
        }
    }
    if (cur > longest)
        longest = cur;
    if (ferror(stdin)) {
        fprintf(stderr, "wc: read error\n");
        return 1;
    }
    printf("%7lu %7lu %7lu\n", lines, words, bytes);
    printf("longest line: %lu\n", longest);
    return 0;
}
