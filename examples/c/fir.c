/* fir.c - fixed-point DSP kernels (as in Embench's edn): FIR filter,
 * biquad IIR cascade, autocorrelation, LMS adaptive filter, vector
 * multiply-accumulate and a saturating mix.
 * Exercises: short arrays of int16 and int32, inner loops of 16-64 taps,
 * accesses at i+k, 32- and 64-bit accumulators, shifts and clamps.
 * Usage: fir [samples] [reps]   (defaults 8192, 8) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#define TAPS 32

static int16_t sat16(int32_t v) { return (int16_t)(v > 32767 ? 32767 : v < -32768 ? -32768 : v); }

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 8192;
    int reps = argc > 2 ? atoi(argv[2]) : 8;
    if (n < 64)
        return 2;
    int16_t *x = malloc(sizeof(int16_t) * (n + TAPS)), *y = malloc(sizeof(int16_t) * n);
    int32_t *acf = malloc(sizeof(int32_t) * 64);
    if (!x || !y || !acf)
        return 2;
    int16_t h[TAPS], w[16];
    for (int k = 0; k < TAPS; k++)
        h[k] = (int16_t)((k < TAPS / 2 ? k + 1 : TAPS - k) * 300 - 2000);
    uint32_t r = 1;
    for (int i = 0; i < n + TAPS; i++) {
        r = r * 1103515245u + 12345u;
        x[i] = (int16_t)((int32_t)(r >> 16) % 16384 - 8192 + (i % 50) * 100);
    }
    uint32_t check = 0;
    for (int rep = 0; rep < reps; rep++) {
        /* FIR. */
        for (int i = 0; i < n; i++) {
            int32_t acc = 0;
            for (int k = 0; k < TAPS; k++)
                acc += (int32_t)x[i + k] * h[k];
            y[i] = sat16(acc >> 15);
        }
        /* A cascade of two biquads in Q14. */
        static const int32_t b[2][3] = {{4096, 8192, 4096}, {3000, -6000, 3000}};
        static const int32_t a[2][2] = {{-12000, 5000}, {-9000, 4000}};
        for (int s = 0; s < 2; s++) {
            int32_t x1 = 0, x2 = 0, y1 = 0, y2 = 0;
            for (int i = 0; i < n; i++) {
                int32_t in = y[i];
                int32_t out = (b[s][0] * in + b[s][1] * x1 + b[s][2] * x2 - a[s][0] * y1 - a[s][1] * y2) >> 14;
                x2 = x1;
                x1 = in;
                y2 = y1;
                y1 = sat16(out);
                y[i] = (int16_t)y1;
            }
        }
        /* Autocorrelation, 64 lags. */
        for (int lag = 0; lag < 64; lag++) {
            int64_t acc = 0;
            for (int i = 0; i + lag < n; i++)
                acc += (int32_t)y[i] * y[i + lag];
            acf[lag] = (int32_t)(acc >> 16);
        }
        /* LMS adaptive filter, 16 taps, learning x -> y. */
        for (int k = 0; k < 16; k++)
            w[k] = 0;
        int64_t err_energy = 0;
        for (int i = 0; i < n - 16; i++) {
            int32_t est = 0;
            for (int k = 0; k < 16; k++)
                est += (int32_t)w[k] * x[i + k];
            int32_t e = y[i] - (est >> 15);
            err_energy += (int64_t)e * e;
            for (int k = 0; k < 16; k++)
                w[k] = sat16(w[k] + (((int32_t)e * x[i + k]) >> 18));
        }
        /* Mix back into the input, saturating. */
        for (int i = 0; i < n; i++)
            x[i] = sat16(x[i] + (y[i] >> 2) - (acf[i & 63] >> 8));
        check = check * 31 + (uint32_t)acf[1] + (uint32_t)(err_energy >> 10) + (uint32_t)w[3];
    }
    uint32_t hy = 0;
    for (int i = 0; i < n; i++)
        hy = hy * 17 + (uint16_t)y[i];
    printf("fir check %08x y %08x\n", check, hy);
    return 0;
}
