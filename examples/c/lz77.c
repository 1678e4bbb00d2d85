/* lz77.c - LZ77-style compression with a hash chain, then decompression.
 * Exercises: byte-oriented match search over a sliding window (a hash
 * head table and a chain array), variable-length token output, a
 * decompressor copying overlapping matches, and a round-trip check.
 * Usage: lz77 [kib] (default 256) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#define WINDOW 32768
#define HASH_BITS 14
#define MIN_MATCH 4
#define MAX_MATCH 258
#define MAX_CHAIN 32

static size_t compress(const uint8_t *in, size_t n, uint8_t *out) {
    static int32_t head[1 << HASH_BITS];
    int32_t *chain = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!chain)
        exit(2);
    memset(head, -1, sizeof head);
    size_t o = 0, i = 0, lit_start = 0;
    while (i < n) {
        size_t best = 0, best_dist = 0;
        if (i + MIN_MATCH <= n) {
            uint32_t h = ((uint32_t)in[i] << 16 ^ (uint32_t)in[i + 1] << 8 ^ in[i + 2] ^
                          (uint32_t)in[i + 3] << 4) * 2654435761u >> (32 - HASH_BITS);
            int32_t cand = head[h];
            for (int c = 0; c < MAX_CHAIN && cand >= 0 && i - (size_t)cand <= WINDOW; c++) {
                size_t len = 0, max = n - i < MAX_MATCH ? n - i : MAX_MATCH;
                while (len < max && in[cand + len] == in[i + len])
                    len++;
                if (len > best) {
                    best = len;
                    best_dist = i - (size_t)cand;
                }
                cand = chain[cand];
            }
            chain[i] = head[h];
            head[h] = (int32_t)i;
        }
        if (best >= MIN_MATCH) {
            /* Flush literals: 0LLLLLLL then bytes (runs of up to 128). */
            while (lit_start < i) {
                size_t run = i - lit_start < 128 ? i - lit_start : 128;
                out[o++] = (uint8_t)(run - 1);
                memcpy(out + o, in + lit_start, run);
                o += run;
                lit_start += run;
            }
            /* Match: 1LLLLLLL len-4 (0..127, more in a second byte), dist. */
            size_t l = best - MIN_MATCH;
            out[o++] = (uint8_t)(0x80 | (l < 127 ? l : 127));
            if (l >= 127)
                out[o++] = (uint8_t)(l - 127);
            out[o++] = (uint8_t)(best_dist >> 8);
            out[o++] = (uint8_t)best_dist;
            for (size_t k = 1; k < best && i + k + MIN_MATCH <= n; k++) {
                size_t j = i + k;
                uint32_t h = ((uint32_t)in[j] << 16 ^ (uint32_t)in[j + 1] << 8 ^ in[j + 2] ^
                              (uint32_t)in[j + 3] << 4) * 2654435761u >> (32 - HASH_BITS);
                chain[j] = head[h];
                head[h] = (int32_t)j;
            }
            i += best;
            lit_start = i;
        } else {
            i++;
        }
    }
    while (lit_start < n) {
        size_t run = n - lit_start < 128 ? n - lit_start : 128;
        out[o++] = (uint8_t)(run - 1);
        memcpy(out + o, in + lit_start, run);
        o += run;
        lit_start += run;
    }
    free(chain);
    return o;
}

static size_t decompress(const uint8_t *in, size_t n, uint8_t *out) {
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t t = in[i++];
        if (t & 0x80) {
            size_t l = t & 0x7f;
            if (l == 127)
                l += in[i++];
            l += MIN_MATCH;
            size_t dist = (size_t)in[i] << 8 | in[i + 1];
            if (dist == 0)
                dist = 65536;
            i += 2;
            for (size_t k = 0; k < l; k++, o++)
                out[o] = out[o - dist];
        } else {
            size_t run = (size_t)t + 1;
            memcpy(out + o, in + i, run);
            i += run;
            o += run;
        }
    }
    return o;
}

int main(int argc, char **argv) {
    size_t n = (argc > 1 ? (size_t)atol(argv[1]) : 256) * 1024;
    uint8_t *text = malloc(n + 1), *packed = malloc(n + n / 64 + 16), *back = malloc(n + 1);
    if (!text || !packed || !back)
        return 2;
    static const char *words[] = {"the ", "sandbox ", "region ", "pointer ", "moves ", "while ",
                                  "guest ", "runs ", "and ", "kernel ", "patches ", "every ",
                                  "frame ", "\n", "of ", "arena "};
    uint32_t x = 99;
    size_t i = 0;
    while (i < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) & 15];
        if ((x & 0x300) == 0x300) {
            text[i++] = (uint8_t)('a' + (x >> 24) % 26);
            continue;
        }
        while (*w && i < n)
            text[i++] = (uint8_t)*w++;
    }
    size_t packed_len = compress(text, n, packed);
    size_t back_len = decompress(packed, packed_len, back);
    uint32_t h = 2166136261u;
    for (size_t k = 0; k < packed_len; k++)
        h = (h ^ packed[k]) * 16777619u;
    printf("lz77 in %zu out %zu roundtrip %d hash %08x\n", n, packed_len,
           back_len == n && memcmp(text, back, n) == 0, h);
    return 0;
}
