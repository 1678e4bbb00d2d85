/* aes.c - AES-128 in CTR mode, byte-oriented (as on an 8-bit MCU).
 * Exercises: S-box table lookups, xtime in GF(2^8), a 176-byte key
 * schedule, 16-byte state arrays indexed by small constants.
 * Usage: aes [kib] (default 64) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

static uint8_t sbox[256];
static uint8_t round_keys[176];

static uint8_t xtime(uint8_t x) { return (uint8_t)((x << 1) ^ ((x >> 7) * 0x1b)); }

static uint8_t gmul(uint8_t a, uint8_t b) {
    uint8_t p = 0;
    while (b) {
        if (b & 1)
            p ^= a;
        a = xtime(a);
        b >>= 1;
    }
    return p;
}

static void make_sbox(void) {
    /* Inverse in GF(2^8) by exponentiation, then the affine map. */
    for (int i = 0; i < 256; i++) {
        uint8_t x = (uint8_t)i, inv = 1;
        if (x == 0) {
            inv = 0;
        } else {
            uint8_t base = x;
            for (int e = 254; e; e >>= 1) {
                if (e & 1)
                    inv = gmul(inv, base);
                base = gmul(base, base);
            }
        }
        uint8_t s = inv;
        for (int k = 1; k < 5; k++)
            s ^= (uint8_t)((inv << k) | (inv >> (8 - k)));
        sbox[i] = s ^ 0x63;
    }
}

static void expand_key(const uint8_t key[16]) {
    uint8_t rcon = 1;
    memcpy(round_keys, key, 16);
    for (int i = 16; i < 176; i += 4) {
        uint8_t t[4];
        memcpy(t, round_keys + i - 4, 4);
        if (i % 16 == 0) {
            uint8_t u = t[0];
            t[0] = (uint8_t)(sbox[t[1]] ^ rcon);
            t[1] = sbox[t[2]];
            t[2] = sbox[t[3]];
            t[3] = sbox[u];
            rcon = xtime(rcon);
        }
        for (int k = 0; k < 4; k++)
            round_keys[i + k] = round_keys[i - 16 + k] ^ t[k];
    }
}

static void encrypt_block(uint8_t s[16]) {
    for (int k = 0; k < 16; k++)
        s[k] ^= round_keys[k];
    for (int round = 1; round <= 10; round++) {
        uint8_t t[16];
        for (int k = 0; k < 16; k++)
            t[k] = sbox[s[(k + 4 * (k % 4)) % 16]]; /* SubBytes + ShiftRows */
        if (round < 10) {
            for (int c = 0; c < 4; c++) {
                uint8_t *col = t + 4 * c;
                uint8_t a0 = col[0], a1 = col[1], a2 = col[2], a3 = col[3];
                uint8_t all = a0 ^ a1 ^ a2 ^ a3;
                col[0] ^= all ^ xtime(a0 ^ a1);
                col[1] ^= all ^ xtime(a1 ^ a2);
                col[2] ^= all ^ xtime(a2 ^ a3);
                col[3] ^= all ^ xtime(a3 ^ a0);
            }
        }
        for (int k = 0; k < 16; k++)
            s[k] = t[k] ^ round_keys[16 * round + k];
    }
}

int main(int argc, char **argv) {
    size_t kib = argc > 1 ? (size_t)atol(argv[1]) : 64;
    size_t n = kib * 1024;
    make_sbox();
    const uint8_t key[16] = {0x2b, 0x7e, 0x15, 0x16, 0x28, 0xae, 0xd2, 0xa6,
                             0xab, 0xf7, 0x15, 0x88, 0x09, 0xcf, 0x4f, 0x3c};
    expand_key(key);
    uint8_t fips[16] = {0x32, 0x43, 0xf6, 0xa8, 0x88, 0x5a, 0x30, 0x8d,
                        0x31, 0x31, 0x98, 0xa2, 0xe0, 0x37, 0x07, 0x34};
    encrypt_block(fips);
    printf("fips197 ");
    for (int k = 0; k < 16; k++)
        printf("%02x", fips[k]);
    printf("\n");
    uint8_t *data = malloc(n ? n : 1);
    if (!data)
        return 2;
    for (size_t i = 0; i < n; i++)
        data[i] = (uint8_t)(i ^ (i >> 8));
    uint8_t counter[16] = {0}, stream[16];
    for (size_t i = 0; i < n; i += 16) {
        memcpy(stream, counter, 16);
        encrypt_block(stream);
        for (size_t k = 0; k < 16 && i + k < n; k++)
            data[i + k] ^= stream[k];
        for (int k = 15; k >= 0 && ++counter[k] == 0; k--) {
        }
    }
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ data[i]) * 16777619u;
    printf("ctr fnv1a %08x\n", h);
    free(data);
    return 0;
}
