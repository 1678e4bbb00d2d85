/* fft.c: exercises double-precision arithmetic, sqrt, bit-reversal with
 * uint32_t shifts, strided array access and structs passed by value.
 * Runs an iterative radix-2 complex FFT over 4096 points of a deterministic
 * signal, then the inverse FFT, and prints rounded magnitudes of a few bins
 * and the maximum round-trip error.  Twiddle factors are built from
 * half-angle identities using only +,-,*,/ and sqrt (all correctly rounded in
 * IEEE 754), so no sin/cos from libm is needed and results are bit-identical
 * across C libraries. */
#include <stdio.h>
#include <stdint.h>
#include <math.h>

#define LOGN 12
#define N (1 << LOGN)

typedef struct {
    double re, im;
} cplx;

static cplx data[N], orig[N];
static cplx twiddle[N / 2]; /* twiddle[k] = exp(-2*pi*i*k/N) */

static cplx cmul(cplx a, cplx b) {
    cplx r;
    r.re = a.re * b.re - a.im * b.im;
    r.im = a.re * b.im + a.im * b.re;
    return r;
}

/* Build twiddle table without libm trig. */
static void build_twiddles(void) {
    /* base[j] = exp(-2*pi*i / 2^j) for j = 2..LOGN via half angles,
     * starting from exp(-2*pi*i/4) = -i. */
    cplx base[LOGN + 1];
    double c = 0.0, s = 1.0; /* cos, sin of 2*pi/4 */
    int j, k;
    base[2].re = c;
    base[2].im = -s;
    for (j = 3; j <= LOGN; j++) {
        /* half angle: cos(t/2) = sqrt((1+cos t)/2), sin(t/2) = sin t / (2 cos(t/2)) */
        double c2 = sqrt((1.0 + c) * 0.5);
        double s2 = s / (2.0 * c2);
        c = c2;
        s = s2;
        base[j].re = c;
        base[j].im = -s;
    }
    /* twiddle[k] for k = sum of bits: multiply the base powers.
     * exp(-2*pi*i*2^b/N) = base[LOGN - b]. */
    twiddle[0].re = 1.0;
    twiddle[0].im = 0.0;
    for (k = 1; k < N / 2; k++) {
        /* lowest set bit b; twiddle[k] = twiddle[k - 2^b] * base[LOGN - b] */
        int b = 0;
        while (!((k >> b) & 1)) b++;
        twiddle[k] = cmul(twiddle[k - (1 << b)], base[LOGN - b]);
    }
}

static uint32_t bitrev(uint32_t x, int bits) {
    uint32_t r = 0;
    int i;
    for (i = 0; i < bits; i++) {
        r = (r << 1) | (x & 1u);
        x >>= 1;
    }
    return r;
}

/* In-place iterative FFT; inverse uses conjugated twiddles and scales by 1/N. */
static void fft(cplx *a, int inverse) {
    uint32_t i, j;
    uint32_t len;
    for (i = 0; i < N; i++) {
        j = bitrev(i, LOGN);
        if (i < j) {
            cplx t = a[i];
            a[i] = a[j];
            a[j] = t;
        }
    }
    for (len = 2; len <= N; len <<= 1) {
        uint32_t half = len >> 1;
        uint32_t step = N / len;
        for (i = 0; i < N; i += len) {
            for (j = 0; j < half; j++) {
                cplx w = twiddle[j * step];
                if (inverse) w.im = -w.im;
                cplx u = a[i + j];
                cplx v = cmul(a[i + j + half], w);
                a[i + j].re = u.re + v.re;
                a[i + j].im = u.im + v.im;
                a[i + j + half].re = u.re - v.re;
                a[i + j + half].im = u.im - v.im;
            }
        }
    }
    if (inverse) {
        double scale = 1.0 / N;
        for (i = 0; i < N; i++) {
            a[i].re *= scale;
            a[i].im *= scale;
        }
    }
}

static uint32_t rng = 2463534242u;
static uint32_t xorshift32(void) {
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

int main(void) {
    int n, k;
    build_twiddles();

    /* Signal: sum of cosines at bins 5, 100 and 1000 (taken from the twiddle
     * table, cos(2*pi*f*n/N) = twiddle[(f*n) mod N].re with symmetry), a
     * square wave of period 64, and small deterministic noise. */
    for (n = 0; n < N; n++) {
        double v = 0.0;
        static const int freq[3] = {5, 100, 1000};
        static const double amp[3] = {3.0, 1.5, 0.75};
        for (k = 0; k < 3; k++) {
            uint32_t idx = (uint32_t)(freq[k] * n) % N;
            double cs = idx < N / 2 ? twiddle[idx].re : -twiddle[idx - N / 2].re;
            v += amp[k] * cs;
        }
        v += ((n / 32) & 1) ? 0.5 : -0.5;
        v += ((double)(xorshift32() >> 8) / 16777216.0 - 0.5) * 0.01;
        data[n].re = v;
        data[n].im = 0.0;
        orig[n] = data[n];
    }

    fft(data, 0);

    static const int bins[] = {0, 1, 5, 64, 100, 192, 1000, 2048, 3096, 4091};
    for (k = 0; k < (int)(sizeof bins / sizeof bins[0]); k++) {
        int b = bins[k];
        double mag = sqrt(data[b].re * data[b].re + data[b].im * data[b].im);
        printf("bin %4d: |X|*1000 = %lld\n", b, (long long)llround(mag * 1000.0));
    }

    /* Total energy (Parseval) and the strongest bin. */
    double energy = 0.0, best = -1.0;
    int best_bin = -1;
    for (k = 0; k < N; k++) {
        double p = data[k].re * data[k].re + data[k].im * data[k].im;
        energy += p;
        if (k <= N / 2 && p > best) {
            best = p;
            best_bin = k;
        }
    }
    printf("strongest bin: %d\n", best_bin);
    printf("spectral energy/N: %.6f\n", energy / N);

    fft(data, 1);

    double maxerr = 0.0;
    for (n = 0; n < N; n++) {
        double er = fabs(data[n].re - orig[n].re);
        double ei = fabs(data[n].im - orig[n].im);
        if (er > maxerr) maxerr = er;
        if (ei > maxerr) maxerr = ei;
    }
    printf("max round-trip error: %.6e\n", maxerr);
    printf("round-trip ok: %s\n", maxerr < 1e-9 ? "yes" : "no");
    return 0;
}
