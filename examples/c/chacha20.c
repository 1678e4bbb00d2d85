/* chacha20.c - the ChaCha20 stream cipher (RFC 8439) over a buffer.
 * Exercises: 32-bit add-rotate-xor quarter rounds on a 16-word state,
 * little-endian packing, a keystream xored into a large array.
 * Usage: chacha20 [kib] [rounds]   (defaults 256, 4) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

#define ROTL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))
#define QR(a, b, c, d)                                                         \
    (a += b, d ^= a, d = ROTL(d, 16), c += d, b ^= c, b = ROTL(b, 12),         \
     a += b, d ^= a, d = ROTL(d, 8), c += d, b ^= c, b = ROTL(b, 7))

static void block(const uint32_t in[16], uint8_t out[64]) {
    uint32_t x[16];
    for (int i = 0; i < 16; i++)
        x[i] = in[i];
    for (int i = 0; i < 10; i++) {
        QR(x[0], x[4], x[8], x[12]);
        QR(x[1], x[5], x[9], x[13]);
        QR(x[2], x[6], x[10], x[14]);
        QR(x[3], x[7], x[11], x[15]);
        QR(x[0], x[5], x[10], x[15]);
        QR(x[1], x[6], x[11], x[12]);
        QR(x[2], x[7], x[8], x[13]);
        QR(x[3], x[4], x[9], x[14]);
    }
    for (int i = 0; i < 16; i++) {
        uint32_t v = x[i] + in[i];
        out[4 * i] = (uint8_t)v;
        out[4 * i + 1] = (uint8_t)(v >> 8);
        out[4 * i + 2] = (uint8_t)(v >> 16);
        out[4 * i + 3] = (uint8_t)(v >> 24);
    }
}

static void xor_stream(uint32_t state[16], uint8_t *p, size_t n) {
    uint8_t ks[64];
    for (size_t i = 0; i < n; i += 64) {
        block(state, ks);
        state[12]++;
        for (size_t k = 0; k < 64 && i + k < n; k++)
            p[i + k] ^= ks[k];
    }
}

int main(int argc, char **argv) {
    size_t kib = argc > 1 ? (size_t)atol(argv[1]) : 256;
    int rounds = argc > 2 ? atoi(argv[2]) : 4;
    size_t n = kib * 1024;
    uint32_t state[16] = {0x61707865, 0x3320646e, 0x79622d32, 0x6b206574};
    for (int i = 0; i < 8; i++)
        state[4 + i] = 0x03020100u + 0x04040404u * (uint32_t)i;
    state[12] = 1;
    state[13] = 0x09000000;
    state[14] = 0x4a000000;
    state[15] = 0;
    uint8_t first[64];
    block(state, first);
    printf("rfc8439 block ");
    for (int k = 0; k < 16; k++)
        printf("%02x", first[k]);
    printf("\n");
    uint8_t *data = malloc(n ? n : 1);
    if (!data)
        return 2;
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i * 7);
    for (int r = 0; r < rounds; r++)
        xor_stream(state, data, n);
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ data[i]) * 16777619u;
    printf("stream fnv1a %08x counter %u\n", h, state[12]);
    free(data);
    return 0;
}
