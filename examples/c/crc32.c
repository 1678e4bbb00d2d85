/* crc32.c - byte-oriented checksums over a buffer.
 * Exercises: table-driven CRC-32 (byte at a time, a 1 KiB table), bitwise
 * CRC-16/CCITT, Adler-32 and Fletcher-16 loops over byte arrays.
 * Usage: crc32 [kib] [rounds]   (defaults 256, 4) */
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

static uint32_t table[256];

static void make_table(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t c = n;
        for (int k = 0; k < 8; k++)
            c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
        table[n] = c;
    }
}

static uint32_t crc32(const uint8_t *p, size_t n, uint32_t crc) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static uint16_t crc16(const uint8_t *p, size_t n) {
    uint16_t crc = 0xffff;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int k = 0; k < 8; k++)
            crc = crc & 0x8000 ? (uint16_t)((crc << 1) ^ 0x1021) : (uint16_t)(crc << 1);
    }
    return crc;
}

static uint32_t adler32(const uint8_t *p, size_t n) {
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < n; i++) {
        a = (a + p[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    return b << 16 | a;
}

static uint16_t fletcher16(const uint8_t *p, size_t n) {
    uint16_t s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        s1 = (uint16_t)((s1 + p[i]) % 255);
        s2 = (uint16_t)((s2 + s1) % 255);
    }
    return (uint16_t)(s2 << 8 | s1);
}

int main(int argc, char **argv) {
    size_t kib = argc > 1 ? (size_t)atol(argv[1]) : 256;
    int rounds = argc > 2 ? atoi(argv[2]) : 4;
    size_t n = kib * 1024;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf)
        return 2;
    uint32_t x = 12345;
    for (size_t i = 0; i < n; i++) {
        x = x * 1103515245u + 12345u;
        buf[i] = (uint8_t)(x >> 16);
    }
    make_table();
    uint32_t c = 0, a = 0;
    uint16_t c16 = 0, f = 0;
    for (int r = 0; r < rounds; r++) {
        c = crc32(buf, n, c);
        c16 ^= crc16(buf, n / 4);
        a ^= adler32(buf, n);
        f ^= fletcher16(buf, n);
        buf[(size_t)r * 7919 % (n ? n : 1)] ^= (uint8_t)c;
    }
    printf("crc32 %08x crc16 %04x adler32 %08x fletcher16 %04x\n", c, c16, a, f);
    free(buf);
    return 0;
}
