/* A grow-heavy program: builds a buffer of N bytes (default 64 MiB) by
 * appending chunks and growing it with realloc by an eighth each time it
 * is full, so the heap, and with it the linear memory, keeps growing.
 * Prints the size and a checksum of the contents. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv) {
    size_t target = argc > 1 ? strtoull(argv[1], NULL, 10) : (size_t)64 << 20;
    size_t len = 0, cap = 0, grows = 0;
    unsigned char *buf = NULL;
    while (len < target) {
        size_t chunk = 4096 + len % 7919;
        if (len + chunk > cap) {
            cap = len + chunk + (len + chunk) / 8;
            unsigned char *grown = realloc(buf, cap);
            if (!grown) {
                printf("out of memory at %zu bytes\n", cap);
                return 1;
            }
            buf = grown;
            grows++;
        }
        for (size_t i = 0; i < chunk; i++)
            buf[len + i] = (unsigned char)(((len + i) * 2654435761u) >> 13);
        len += chunk;
    }
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i += 4099)
        h = (h ^ buf[i]) * 1099511628211ULL;
    printf("bytes: %zu\nreallocs: %zu\nchecksum: %016llx\n", len, grows,
           (unsigned long long)h);
    free(buf);
    return 0;
}
