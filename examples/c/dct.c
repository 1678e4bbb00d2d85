/* dct.c - JPEG-style image coding: 8x8 integer forward DCT,
 * quantisation, zigzag, run-length counting, dequantisation and inverse
 * DCT, over a generated greyscale image, with a PSNR-like error sum.
 * Exercises: 8x8 blocks at constant offsets, row then column passes,
 * small constant tables, int32 fixed-point multiplies.
 * Usage: dct [width] [height] [passes]   (defaults 256, 256, 4) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

static const uint8_t zigzag[64] = {
    0, 1, 8, 16, 9, 2, 3, 10, 17, 24, 32, 25, 18, 11, 4, 5, 12, 19, 26, 33, 40, 48,
    41, 34, 27, 20, 13, 6, 7, 14, 21, 28, 35, 42, 49, 56, 57, 50, 43, 36, 29, 22,
    15, 23, 30, 37, 44, 51, 58, 59, 52, 45, 38, 31, 39, 46, 53, 60, 61, 54, 47, 55, 62, 63};
static const uint8_t quant[64] = {
    16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57,
    69, 56, 14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64,
    81, 104, 113, 92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99};
/* cos((2x+1) u pi / 16) * 2^12, with the 1/sqrt(2) for u = 0 folded in. */
static int32_t basis[8][8];

static void make_basis(void) {
    static const int32_t c[8] = {4096, 4017, 3784, 3406, 2896, 2276, 1567, 799};
    for (int u = 0; u < 8; u++)
        for (int x = 0; x < 8; x++) {
            int k = ((2 * x + 1) * u) % 32, sign = 1;
            if (k > 16)
                k = 32 - k;
            if (k > 8) {
                k = 16 - k;
                sign = -1;
            }
            int32_t v = k == 8 ? 0 : sign * c[k];
            basis[u][x] = u == 0 ? 2896 : v;
        }
}

static void fdct(const int32_t in[64], int32_t out[64]) {
    int32_t tmp[64];
    for (int y = 0; y < 8; y++)
        for (int u = 0; u < 8; u++) {
            int32_t s = 0;
            for (int x = 0; x < 8; x++)
                s += in[y * 8 + x] * basis[u][x];
            tmp[y * 8 + u] = s >> 12;
        }
    for (int u = 0; u < 8; u++)
        for (int v = 0; v < 8; v++) {
            int32_t s = 0;
            for (int y = 0; y < 8; y++)
                s += tmp[y * 8 + u] * basis[v][y];
            out[v * 8 + u] = s >> 14;
        }
}

static void idct(const int32_t in[64], int32_t out[64]) {
    int32_t tmp[64];
    for (int v = 0; v < 8; v++)
        for (int x = 0; x < 8; x++) {
            int32_t s = 0;
            for (int u = 0; u < 8; u++)
                s += in[v * 8 + u] * basis[u][x];
            tmp[v * 8 + x] = s >> 12;
        }
    for (int x = 0; x < 8; x++)
        for (int y = 0; y < 8; y++) {
            int32_t s = 0;
            for (int v = 0; v < 8; v++)
                s += tmp[v * 8 + x] * basis[v][y];
            out[y * 8 + x] = s >> 10;
        }
}

int main(int argc, char **argv) {
    int w = argc > 1 ? atoi(argv[1]) : 256, h = argc > 2 ? atoi(argv[2]) : 256;
    int passes = argc > 3 ? atoi(argv[3]) : 4;
    w &= ~7;
    h &= ~7;
    if (w <= 0 || h <= 0)
        return 2;
    uint8_t *img = malloc((size_t)w * h), *out = malloc((size_t)w * h);
    if (!img || !out)
        return 2;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            img[y * w + x] = (uint8_t)((x * x + y * 3 + ((x ^ y) & 31) * 4) & 255);
    make_basis();
    long zeros = 0, runs = 0;
    int64_t err = 0;
    for (int pass = 0; pass < passes; pass++) {
        zeros = runs = 0;
        err = 0;
        for (int by = 0; by < h; by += 8)
            for (int bx = 0; bx < w; bx += 8) {
                int32_t block[64], coef[64], q[64];
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++)
                        block[y * 8 + x] = img[(by + y) * w + bx + x] - 128;
                fdct(block, coef);
                int run = 0;
                for (int k = 0; k < 64; k++) {
                    int z = zigzag[k];
                    int32_t c = coef[z];
                    int32_t qv = (c >= 0 ? c + quant[z] / 2 : c - quant[z] / 2) / quant[z];
                    q[z] = qv * quant[z];
                    if (qv == 0) {
                        zeros++;
                        run++;
                    } else {
                        runs += run > 0;
                        run = 0;
                    }
                }
                idct(q, block);
                for (int y = 0; y < 8; y++)
                    for (int x = 0; x < 8; x++) {
                        int32_t v = block[y * 8 + x] + 128;
                        v = v < 0 ? 0 : v > 255 ? 255 : v;
                        int32_t d = v - img[(by + y) * w + bx + x];
                        err += d * d;
                        out[(by + y) * w + bx + x] = (uint8_t)v;
                    }
            }
        /* Feed the decoded image back in, slightly shifted. */
        for (int i = 0; i < w * h; i++)
            img[i] = out[(i + 1) % (w * h)];
    }
    uint32_t hash = 0;
    for (int i = 0; i < w * h; i++)
        hash = hash * 31 + out[i];
    printf("dct %dx%d zeros %ld runs %ld err %lld hash %08x\n", w, h, zeros, runs, (long long)err, hash);
    return 0;
}
