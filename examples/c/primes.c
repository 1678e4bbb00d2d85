/* primes.c: exercises integer arithmetic, byte arrays (memset), malloc/free,
 * nested loops with large strides and argv parsing.
 * Segmented Sieve of Eratosthenes up to a limit from argv[1] (default
 * 2000000); prints the prime count and the last 5 primes <= limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#define SEGMENT 32768

int main(int argc, char **argv) {
    uint64_t limit = 2000000;
    if (argc > 1) {
        long long v = strtoll(argv[1], NULL, 10);
        limit = v < 0 ? 0 : (uint64_t)v;
    }

    /* integer square root */
    uint64_t root = 0;
    while ((root + 1) * (root + 1) <= limit) root++;

    /* small sieve for base primes up to root */
    uint8_t *small = malloc((size_t)root + 1);
    uint32_t *base = malloc(sizeof(uint32_t) * ((size_t)root / 2 + 2));
    uint64_t *next = malloc(sizeof(uint64_t) * ((size_t)root / 2 + 2));
    uint8_t *seg = malloc(SEGMENT);
    if (!small || !base || !next || !seg) {
        printf("out of memory\n");
        return 1;
    }
    memset(small, 1, (size_t)root + 1);
    size_t nbase = 0;
    for (uint64_t i = 2; i <= root; i++) {
        if (!small[i]) continue;
        base[nbase] = (uint32_t)i;
        next[nbase] = i * i;
        nbase++;
        for (uint64_t j = i * i; j <= root; j += i) small[j] = 0;
    }

    uint64_t count = 0;
    uint64_t last[5] = {0, 0, 0, 0, 0};
    uint64_t checksum = 0;

    for (uint64_t lo = 2; lo <= limit; lo += SEGMENT) {
        uint64_t hi = lo + SEGMENT - 1;
        if (hi > limit) hi = limit;
        size_t len = (size_t)(hi - lo + 1);
        memset(seg, 1, len);
        for (size_t b = 0; b < nbase; b++) {
            uint64_t p = base[b];
            uint64_t m = next[b];
            if (m > hi) continue;
            for (; m <= hi; m += p) seg[m - lo] = 0;
            next[b] = m;
        }
        for (size_t i = 0; i < len; i++) {
            if (seg[i]) {
                uint64_t p = lo + i;
                count++;
                checksum = checksum * 1000003u + p;
                last[0] = last[1];
                last[1] = last[2];
                last[2] = last[3];
                last[3] = last[4];
                last[4] = p;
            }
        }
    }

    printf("limit: %llu\n", (unsigned long long)limit);
    printf("primes: %llu\n", (unsigned long long)count);
    printf("last:");
    for (int i = 0; i < 5; i++)
        if (last[i]) printf(" %llu", (unsigned long long)last[i]);
    printf("\n");
    printf("checksum: %016llx\n", (unsigned long long)checksum);

    free(seg);
    free(next);
    free(base);
    free(small);
    return 0;
}
