/*
 * csv_sum.c -- exercises buffered file output and line-oriented parsing:
 * writes a CSV file of 2000 rows generated with its own PRNG (fprintf),
 * reads it back with fgets, parses fields with strtol/strtod, and prints
 * per-column sums (integers, and a double column printed with %.2f) and a
 * per-group aggregate (count, sum, min, max, mean).
 *
 * Usage: csv_sum DIR    (DIR must exist and be writable; the file
 *                        "data.csv" is created in it and removed at the end)
 * Exit status: 0 on success, 1 on any failure (message on stderr).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ROWS 2000
#define NGROUPS 5

static const char *group_names[NGROUPS] = { "alpha", "bravo", "charlie", "delta", "echo" };

static uint32_t rng_state = 12345u;

static uint32_t rng(void)
{
    /* xorshift32 */
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    return rng_state = x;
}

static void fail(const char *what)
{
    fprintf(stderr, "csv_sum: FAILED: %s (errno %d)\n", what, errno);
    exit(1);
}

struct group {
    long count;
    long long qty_sum;
    long qty_min, qty_max;
    double price_sum;
    long long cents_sum;
};

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: csv_sum DIR\n");
        return 1;
    }
    char file[4096];
    if (snprintf(file, sizeof file, "%s/data.csv", argv[1]) >= (int)sizeof file)
        fail("path too long");

    /* Write. */
    FILE *f = fopen(file, "w");
    if (!f)
        fail("fopen for writing");
    fprintf(f, "id,group,qty,price,delta\n");
    long long w_qty = 0, w_cents = 0, w_delta = 0;
    for (int i = 0; i < ROWS; i++) {
        int g = (int)(rng() % NGROUPS);
        long qty = (long)(rng() % 1000);
        long cents = (long)(rng() % 100000);     /* price = cents / 100 */
        long delta = (long)(rng() % 2001) - 1000; /* -1000..1000 */
        if (fprintf(f, "%d,%s,%ld,%ld.%02ld,%ld\n", i + 1, group_names[g], qty,
                    cents / 100, cents % 100, delta) < 0)
            fail("fprintf");
        w_qty += qty;
        w_cents += cents;
        w_delta += delta;
    }
    long written = ftell(f);
    if (fclose(f) != 0)
        fail("fclose after writing");
    printf("wrote %d rows, %ld bytes\n", ROWS, written);

    /* Read back and parse. */
    f = fopen(file, "r");
    if (!f)
        fail("fopen for reading");
    char line[256];
    if (!fgets(line, sizeof line, f))
        fail("reading header");
    line[strcspn(line, "\n")] = '\0';
    printf("header: %s\n", line);

    struct group groups[NGROUPS];
    memset(groups, 0, sizeof groups);
    long long sum_id = 0, sum_qty = 0, sum_delta = 0, sum_cents = 0;
    double sum_price = 0.0;
    long rows = 0, neg_delta = 0;
    while (fgets(line, sizeof line, f)) {
        char *p = line, *end;
        long id = strtol(p, &end, 10);
        if (end == p || *end != ',')
            fail("parse id");
        p = end + 1;
        char *comma = strchr(p, ',');
        if (!comma)
            fail("parse group");
        *comma = '\0';
        int g = -1;
        for (int k = 0; k < NGROUPS; k++)
            if (strcmp(p, group_names[k]) == 0)
                g = k;
        if (g < 0)
            fail("unknown group");
        p = comma + 1;
        long qty = strtol(p, &end, 10);
        if (end == p || *end != ',')
            fail("parse qty");
        p = end + 1;
        double price = strtod(p, &end);
        if (end == p || *end != ',')
            fail("parse price");
        p = end + 1;
        long delta = strtol(p, &end, 10);
        if (end == p || (*end != '\n' && *end != '\0'))
            fail("parse delta");

        /* Exact cents from the double: round to nearest. */
        long long cents = (long long)(price * 100.0 + 0.5);
        rows++;
        sum_id += id;
        sum_qty += qty;
        sum_delta += delta;
        sum_price += price;
        sum_cents += cents;
        if (delta < 0)
            neg_delta++;
        struct group *gr = &groups[g];
        if (gr->count == 0 || qty < gr->qty_min)
            gr->qty_min = qty;
        if (gr->count == 0 || qty > gr->qty_max)
            gr->qty_max = qty;
        gr->count++;
        gr->qty_sum += qty;
        gr->price_sum += price;
        gr->cents_sum += cents;
    }
    if (ferror(f))
        fail("fgets");
    fclose(f);

    printf("rows read: %ld\n", rows);
    printf("sum id: %lld\n", sum_id);
    printf("sum qty: %lld (written %lld)\n", sum_qty, w_qty);
    printf("sum delta: %lld (written %lld), negative: %ld\n", sum_delta, w_delta, neg_delta);
    printf("sum price: %.2f (cents %lld, written %lld)\n", sum_price, sum_cents, w_cents);
    printf("mean price: %.4f\n", sum_price / (double)rows);
    printf("%-8s %6s %9s %6s %6s %9s %14s\n", "group", "count", "qty_sum", "min", "max", "qty_mean", "price_cents");
    for (int k = 0; k < NGROUPS; k++) {
        struct group *gr = &groups[k];
        printf("%-8s %6ld %9lld %6ld %6ld %9.3f %14lld\n", group_names[k], gr->count,
               gr->qty_sum, gr->qty_min, gr->qty_max,
               gr->count ? (double)gr->qty_sum / (double)gr->count : 0.0, gr->cents_sum);
    }
    int ok = rows == ROWS && sum_qty == w_qty && sum_delta == w_delta && sum_cents == w_cents;
    printf("check: %s\n", ok ? "ok" : "MISMATCH");

    if (unlink(file) != 0)
        fail("unlink");
    printf("removed data.csv\n");
    return ok ? 0 : 1;
}
