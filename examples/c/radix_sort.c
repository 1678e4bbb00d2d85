/* radix_sort.c - sorting without comparisons, and with a heap.
 * Exercises: LSD radix sort (byte histograms, prefix sums, scatter into a
 * second buffer), heapsort (sift-down with computed child indices),
 * insertion sort of short runs, and a check that all agree.
 * Usage: radix_sort [count] (default 200000) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static void radix(uint32_t *a, uint32_t *tmp, size_t n) {
    for (int shift = 0; shift < 32; shift += 8) {
        size_t count[257];
        memset(count, 0, sizeof count);
        for (size_t i = 0; i < n; i++)
            count[((a[i] >> shift) & 0xff) + 1]++;
        for (int b = 0; b < 256; b++)
            count[b + 1] += count[b];
        for (size_t i = 0; i < n; i++)
            tmp[count[(a[i] >> shift) & 0xff]++] = a[i];
        memcpy(a, tmp, n * sizeof *a);
    }
}

static void sift_down(uint32_t *a, size_t root, size_t n) {
    for (;;) {
        size_t child = 2 * root + 1;
        if (child >= n)
            return;
        if (child + 1 < n && a[child + 1] > a[child])
            child++;
        if (a[root] >= a[child])
            return;
        uint32_t t = a[root];
        a[root] = a[child];
        a[child] = t;
        root = child;
    }
}

static void heapsort(uint32_t *a, size_t n) {
    for (size_t i = n / 2; i-- > 0;)
        sift_down(a, i, n);
    for (size_t end = n; end-- > 1;) {
        uint32_t t = a[0];
        a[0] = a[end];
        a[end] = t;
        sift_down(a, 0, end);
    }
}

static void insertion_runs(uint32_t *a, size_t n, size_t run) {
    for (size_t start = 0; start < n; start += run) {
        size_t end = start + run < n ? start + run : n;
        for (size_t i = start + 1; i < end; i++) {
            uint32_t v = a[i];
            size_t j = i;
            while (j > start && a[j - 1] > v) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
    }
}

int main(int argc, char **argv) {
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 200000;
    uint32_t *a = malloc(n * 4 + 4), *b = malloc(n * 4 + 4), *tmp = malloc(n * 4 + 4);
    if (!a || !b || !tmp)
        return 2;
    uint32_t x = 7;
    for (size_t i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        a[i] = b[i] = x;
    }
    radix(a, tmp, n);
    heapsort(b, n);
    int same = memcmp(a, b, n * 4) == 0;
    for (size_t i = 0; i < n; i++)
        b[i] = a[(i * 7919) % (n ? n : 1)] ^ (uint32_t)i;
    insertion_runs(b, n, 64);
    uint32_t h = 0;
    for (size_t i = 0; i < n; i++)
        h = h * 31 + a[i] + (b[i] >> 3);
    printf("sorted %zu agree %d min %u max %u hash %08x\n", n, same, n ? a[0] : 0,
           n ? a[n - 1] : 0, h);
    return 0;
}
