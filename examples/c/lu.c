/* lu.c - dense linear algebra: LU decomposition without pivoting of a
 * diagonally dominant matrix, then forward and back substitution, then a
 * residual check; and the same in 32-bit modular integers.
 * Exercises: triangular loop nests whose bounds depend on outer indices,
 * row-major double arrays, column walks with a stride of n.
 * Usage: lu [n]   (default 160) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 160;
    if (n < 2)
        return 2;
    double *a = malloc(sizeof(double) * n * n), *m = malloc(sizeof(double) * n * n);
    double *b = malloc(sizeof(double) * n), *x = malloc(sizeof(double) * n), *y = malloc(sizeof(double) * n);
    uint32_t *ia = malloc(sizeof(uint32_t) * n * n);
    if (!a || !m || !b || !x || !y || !ia)
        return 2;
    for (int i = 0; i < n; i++) {
        for (int j = 0; j < n; j++) {
            a[i * n + j] = (double)((i * 7 + j * 3) % 17) / 17.0 - 0.5;
            ia[i * n + j] = (uint32_t)(i * 2654435761u) ^ (uint32_t)(j * 40503u);
        }
        a[i * n + i] += n;
        b[i] = (double)(i % 13) - 6.0;
    }
    for (int i = 0; i < n * n; i++)
        m[i] = a[i];
    /* Doolittle, in place. */
    for (int k = 0; k < n; k++)
        for (int i = k + 1; i < n; i++) {
            double l = m[i * n + k] / m[k * n + k];
            m[i * n + k] = l;
            for (int j = k + 1; j < n; j++)
                m[i * n + j] -= l * m[k * n + j];
        }
    /* L y = b, U x = y. */
    for (int i = 0; i < n; i++) {
        double s = b[i];
        for (int j = 0; j < i; j++)
            s -= m[i * n + j] * y[j];
        y[i] = s;
    }
    for (int i = n - 1; i >= 0; i--) {
        double s = y[i];
        for (int j = i + 1; j < n; j++)
            s -= m[i * n + j] * x[j];
        x[i] = s / m[i * n + i];
    }
    double residual = 0, xsum = 0;
    for (int i = 0; i < n; i++) {
        double s = 0;
        for (int j = 0; j < n; j++)
            s += a[i * n + j] * x[j];
        double d = s - b[i];
        residual += d < 0 ? -d : d;
        xsum += x[i] * (i + 1);
    }
    /* Integer elimination mod 2^32 (odd pivots made so), for exactness. */
    for (int k = 0; k < n; k++) {
        ia[k * n + k] |= 1;
        for (int i = k + 1; i < n; i++) {
            uint32_t f = ia[i * n + k];
            for (int j = k; j < n; j++)
                ia[i * n + j] = ia[i * n + j] * ia[k * n + k] - f * ia[k * n + j];
        }
    }
    uint32_t h = 0;
    for (int i = 0; i < n * n; i++)
        h = h * 31 + ia[i];
    printf("lu n=%d xsum=%.9e residual_small=%d int=%08x\n", n, xsum, residual < 1e-6, h);
    return 0;
}
