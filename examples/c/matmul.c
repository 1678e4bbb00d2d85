/* matmul.c: exercises nested loops, 32/64-bit integer multiply-add with
 * wraparound, double-precision multiply-add (no libm), row/column memory
 * access patterns (including a transposed variant), and static arrays.
 * Multiplies 96x96 integer and double matrices and prints checksums. */
#include <stdio.h>
#include <stdint.h>
#include <math.h>

#define N 96

static uint32_t ia[N][N], ib[N][N], ic[N][N];
static int64_t la[N][N], lb[N][N], lc[N][N];
static double da[N][N], db[N][N], dc[N][N], dbt[N][N], dc2[N][N];

static uint32_t rng_state = 0x12345678u;
static uint32_t xorshift32(void) {
    uint32_t x = rng_state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    rng_state = x;
    return x;
}

int main(void) {
    int i, j, k;

    /* Fill inputs deterministically. */
    for (i = 0; i < N; i++) {
        for (j = 0; j < N; j++) {
            ia[i][j] = xorshift32();
            ib[i][j] = xorshift32();
            la[i][j] = (int64_t)(xorshift32() % 2001u) - 1000;
            lb[i][j] = (int64_t)(xorshift32() % 2001u) - 1000;
            /* Dyadic values: products and sums stay exact in double. */
            da[i][j] = (double)((int32_t)(xorshift32() % 257u) - 128) / 64.0;
            db[i][j] = (double)((int32_t)(xorshift32() % 257u) - 128) / 32.0;
        }
    }

    /* uint32 matmul with wraparound. */
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            uint32_t s = 0;
            for (k = 0; k < N; k++)
                s += ia[i][k] * ib[k][j];
            ic[i][j] = s;
        }

    /* int64 matmul (i-k-j order). */
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++)
            lc[i][j] = 0;
    for (i = 0; i < N; i++)
        for (k = 0; k < N; k++) {
            int64_t a = la[i][k];
            for (j = 0; j < N; j++)
                lc[i][j] += a * lb[k][j];
        }

    /* double matmul, plain and with transposed B. */
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++)
            dbt[j][i] = db[i][j];
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            double s = 0.0, t = 0.0;
            for (k = 0; k < N; k++) {
                s += da[i][k] * db[k][j];
                t += da[i][k] * dbt[j][k];
            }
            dc[i][j] = s;
            dc2[i][j] = t;
        }

    /* Checksums. */
    uint32_t ihash = 2166136261u; /* FNV-1a over the result words */
    uint64_t isum = 0;
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            uint32_t v = ic[i][j];
            isum += v;
            for (k = 0; k < 4; k++) {
                ihash ^= (v >> (8 * k)) & 0xffu;
                ihash *= 16777619u;
            }
        }

    int64_t lsum = 0, ltrace = 0, lmax = INT64_MIN, lmin = INT64_MAX;
    uint64_t lweighted = 0;
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            int64_t v = lc[i][j];
            lsum += v;
            if (i == j) ltrace += v;
            if (v > lmax) lmax = v;
            if (v < lmin) lmin = v;
            lweighted = lweighted * 31u + (uint64_t)v;
        }

    double dsum = 0.0, dtrace = 0.0;
    int mismatches = 0;
    int64_t dweighted = 0;
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            dsum += dc[i][j];
            if (i == j) dtrace += dc[i][j];
            if (dc[i][j] != dc2[i][j]) mismatches++;
            dweighted += (int64_t)llround(dc[i][j] * 4096.0) * (i + 1) * (j + 1);
        }

    /* A non-exact double product: scale by 1/3 so rounding happens. */
    double fsum = 0.0;
    for (i = 0; i < N; i++)
        for (j = 0; j < N; j++) {
            double s = 0.0;
            for (k = 0; k < N; k++)
                s += (da[i][k] / 3.0) * (db[k][j] / 7.0);
            fsum += s * (double)((i ^ j) & 7);
        }

    printf("matmul %dx%d\n", N, N);
    printf("u32 sum: %llu\n", (unsigned long long)isum);
    printf("u32 fnv: %08x\n", (unsigned)ihash);
    printf("u32 c[0][0]=%u c[%d][%d]=%u\n", (unsigned)ic[0][0], N - 1, N - 1,
           (unsigned)ic[N - 1][N - 1]);
    printf("i64 sum: %lld trace: %lld\n", (long long)lsum, (long long)ltrace);
    printf("i64 min: %lld max: %lld\n", (long long)lmin, (long long)lmax);
    printf("i64 weighted: %llu\n", (unsigned long long)lweighted);
    printf("f64 sum: %.6f trace: %.6f\n", dsum, dtrace);
    printf("f64 weighted: %lld\n", (long long)dweighted);
    printf("f64 transposed mismatches: %d\n", mismatches);
    printf("f64 inexact sum*1e6: %lld\n", (long long)llround(fsum * 1e6));
    return 0;
}
