/* qsort_bench.c - sorting benchmark.
 * Exercises: libc qsort on a large uint32_t array and on an array of
 * structs with a multi-key comparator (total order via a unique id, so the
 * result does not depend on the libc's qsort algorithm or stability), a
 * hand-written top-down merge sort with a scratch buffer, memcpy/memcmp,
 * 64-bit arithmetic, and a deterministic xorshift PRNG (no rand()).
 * Usage: qsort_bench [count] [seed]   (defaults 300000, 88172645463325252)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

static uint64_t rng = 88172645463325252ull;

static uint64_t xorshift64(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/* Top-down merge sort; tmp has room for n elements. */
static void merge_sort_rec(uint32_t *a, uint32_t *tmp, size_t n) {
    if (n <= 16) {
        for (size_t i = 1; i < n; i++) {
            uint32_t v = a[i];
            size_t j = i;
            while (j > 0 && a[j - 1] > v) {
                a[j] = a[j - 1];
                j--;
            }
            a[j] = v;
        }
        return;
    }
    size_t mid = n / 2;
    merge_sort_rec(a, tmp, mid);
    merge_sort_rec(a + mid, tmp, n - mid);
    if (a[mid - 1] <= a[mid])
        return; /* already in order */
    memcpy(tmp, a, mid * sizeof(uint32_t));
    size_t i = 0, j = mid, k = 0;
    while (i < mid && j < n)
        a[k++] = (tmp[i] <= a[j]) ? tmp[i++] : a[j++];
    while (i < mid)
        a[k++] = tmp[i++];
}

static void merge_sort(uint32_t *a, size_t n) {
    uint32_t *tmp = (uint32_t *)xmalloc((n / 2 + 1) * sizeof(uint32_t));
    merge_sort_rec(a, tmp, n);
    free(tmp);
}

static uint64_t checksum_u32(const uint32_t *a, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= a[i];
        h *= 1099511628211ull;
        h ^= h >> 29;
    }
    return h;
}

static int is_sorted_u32(const uint32_t *a, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (a[i - 1] > a[i])
            return 0;
    return 1;
}

/* ---- structs with a multi-key order ---- */
typedef struct {
    char name[8];     /* short generated name, may repeat */
    int32_t score;    /* may be negative, many ties */
    uint16_t group;   /* few distinct values */
    uint32_t id;      /* unique */
} record;

/* group ascending, score descending, name ascending, id ascending */
static int cmp_record(const void *a, const void *b) {
    const record *x = (const record *)a, *y = (const record *)b;
    if (x->group != y->group)
        return x->group < y->group ? -1 : 1;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    int c = strcmp(x->name, y->name);
    if (c != 0)
        return c < 0 ? -1 : 1;
    return (x->id > y->id) - (x->id < y->id);
}

int main(int argc, char **argv) {
    long n = 300000;
    if (argc > 1)
        n = atol(argv[1]);
    if (argc > 2)
        rng = strtoull(argv[2], NULL, 10);
    if (n < 1 || n > 20000000 || rng == 0) {
        fprintf(stderr, "usage: qsort_bench [count 1..20000000] [seed != 0]\n");
        return 1;
    }
    size_t cnt = (size_t)n;

    uint32_t *orig = (uint32_t *)xmalloc(cnt * sizeof(uint32_t));
    uint64_t sum = 0;
    for (size_t i = 0; i < cnt; i++) {
        uint64_t r = xorshift64();
        /* mix of full-range values and a narrow band with many duplicates */
        orig[i] = (i % 5 == 0) ? (uint32_t)(r % 1000u) : (uint32_t)(r >> 32);
        sum += orig[i];
    }
    printf("generated %lu values, sum %llu, unsorted checksum %016llx\n",
           (unsigned long)cnt, (unsigned long long)sum,
           (unsigned long long)checksum_u32(orig, cnt));

    uint32_t *a = (uint32_t *)xmalloc(cnt * sizeof(uint32_t));
    uint32_t *b = (uint32_t *)xmalloc(cnt * sizeof(uint32_t));
    memcpy(a, orig, cnt * sizeof(uint32_t));
    memcpy(b, orig, cnt * sizeof(uint32_t));

    qsort(a, cnt, sizeof(uint32_t), cmp_u32);
    merge_sort(b, cnt);

    int agree = memcmp(a, b, cnt * sizeof(uint32_t)) == 0;
    printf("qsort sorted: %s, merge sort sorted: %s, agree: %s\n",
           is_sorted_u32(a, cnt) ? "yes" : "no", is_sorted_u32(b, cnt) ? "yes" : "no",
           agree ? "yes" : "no");
    uint64_t sorted_sum = 0;
    size_t distinct = cnt ? 1 : 0;
    for (size_t i = 0; i < cnt; i++) {
        sorted_sum += a[i];
        if (i > 0 && a[i] != a[i - 1])
            distinct++;
    }
    printf("qsort checksum %016llx, merge checksum %016llx\n",
           (unsigned long long)checksum_u32(a, cnt), (unsigned long long)checksum_u32(b, cnt));
    printf("sum preserved: %s, distinct values %lu\n", sorted_sum == sum ? "yes" : "no",
           (unsigned long)distinct);
    printf("min %u, median %u, max %u\n", (unsigned)a[0], (unsigned)a[cnt / 2],
           (unsigned)a[cnt - 1]);
    printf("quantiles:");
    for (int q = 1; q < 10; q++)
        printf(" %u", (unsigned)a[(cnt - 1) * (size_t)q / 10]);
    printf("\n");

    /* Binary search a few probes with bsearch on the sorted array. */
    uint32_t found = 0;
    for (uint32_t v = 0; v < 2000; v += 7) {
        if (bsearch(&v, a, cnt, sizeof(uint32_t), cmp_u32) != NULL)
            found++;
    }
    printf("bsearch: %u of 286 small probes found\n", (unsigned)found);

    /* Sort already-sorted and reversed inputs too. */
    for (size_t i = 0; i < cnt / 2; i++) {
        uint32_t t = b[i];
        b[i] = b[cnt - 1 - i];
        b[cnt - 1 - i] = t;
    }
    merge_sort(b, cnt);
    qsort(a, cnt, sizeof(uint32_t), cmp_u32);
    printf("re-sort (sorted / reversed input) agree: %s\n",
           memcmp(a, b, cnt * sizeof(uint32_t)) == 0 ? "yes" : "no");

    /* Records. */
    size_t nrec = cnt / 10 + 1;
    record *recs = (record *)xmalloc(nrec * sizeof(record));
    static const char SYL[][3] = {"ka", "lo", "mi", "ne", "ru", "so", "ta", "vi"};
    for (size_t i = 0; i < nrec; i++) {
        uint64_t r = xorshift64();
        record *p = &recs[i];
        memset(p->name, 0, sizeof p->name);
        int syl = 1 + (int)(r % 3);
        for (int s = 0; s < syl; s++)
            memcpy(p->name + 2 * s, SYL[(r >> (8 + 3 * s)) & 7], 2);
        p->score = (int32_t)((r >> 20) % 201) - 100;
        p->group = (uint16_t)((r >> 40) % 7);
        p->id = (uint32_t)i;
    }
    qsort(recs, nrec, sizeof(record), cmp_record);
    int rec_ok = 1;
    for (size_t i = 1; i < nrec; i++)
        if (cmp_record(&recs[i - 1], &recs[i]) >= 0)
            rec_ok = 0;
    uint64_t rh = 1469598103934665603ull;
    for (size_t i = 0; i < nrec; i++) {
        rh = (rh ^ recs[i].id) * 1099511628211ull;
        rh = (rh ^ (uint32_t)recs[i].score) * 1099511628211ull;
    }
    printf("records: %lu sorted %s, checksum %016llx\n", (unsigned long)nrec,
           rec_ok ? "ok" : "BAD", (unsigned long long)rh);
    printf("first records:\n");
    for (size_t i = 0; i < nrec && i < 6; i++)
        printf("  group %u score %4d name %-6s id %u\n", (unsigned)recs[i].group,
               (int)recs[i].score, recs[i].name, (unsigned)recs[i].id);
    /* first record of each group */
    printf("group leaders:");
    for (size_t i = 0; i < nrec; i++)
        if (i == 0 || recs[i].group != recs[i - 1].group)
            printf(" %u:%s/%d/%u", (unsigned)recs[i].group, recs[i].name,
                   (int)recs[i].score, (unsigned)recs[i].id);
    printf("\n");

    free(recs);
    free(a);
    free(b);
    free(orig);
    return (agree && rec_ok) ? 0 : 3;
}
