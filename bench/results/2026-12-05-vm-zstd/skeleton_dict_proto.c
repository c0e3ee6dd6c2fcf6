// Prototype (not in the product): what a per-block dictionary of `raw` skeletons would
// cost against zstd over the skeletons as they are. Input: the skeleton bytes back to
// back (FILE) and their u32 lengths (LENS). Timed (best of 15, thread CPU per row):
//   zstd 1 over the skeletons (what ref_packed_string's chunk gives zstd today), and
//   XXH3-64 per skeleton + open-addressing probe + memcmp, the distinct skeletons back to
//   back + a u16 index per row (low bytes, then high bytes), zstd 1 over that.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>
#include <zstd.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}
int main(int argc, char** argv) {
    FILE* f = fopen(argv[1], "rb");
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char* src = malloc(n);
    if (fread(src, 1, n, f) != (size_t)n) return 1;
    fclose(f);
    FILE* lf = fopen(argv[2], "rb");
    uint32_t* off = malloc(4 * (1 << 20));
    uint32_t len;
    int rows = 0;
    off[0] = 0;
    while (fread(&len, 4, 1, lf) == 1) { off[rows + 1] = off[rows] + len; rows++; }
    fclose(lf);
    const size_t S = off[rows];
    size_t cap = ZSTD_compressBound(2 * S + 2 * rows);
    unsigned char* dst = malloc(cap);
    unsigned char* buf = malloc(S + 2 * rows);
    uint16_t* idx = malloc(2 * rows);
    const uint32_t slots = 1u << 15;
    uint64_t* th = malloc(8 * slots);
    uint32_t* tv = malloc(4 * slots);
    uint32_t *doff = malloc(4 * rows), *dlen = malloc(4 * rows);
    ZSTD_CCtx* c = ZSTD_createCCtx();
    double bz = 1e9, bd = 1e9;
    size_t z1 = 0, z2 = 0, dl = 0;
    int nd = 0;
    for (int it = 0; it < 15; it++) {
        double t = now();
        z1 = ZSTD_compressCCtx(c, dst, cap, src, S, 1);
        t = now() - t;
        if (t < bz) bz = t;
        t = now();
        memset(tv, 0xff, 4 * slots);
        nd = 0;
        dl = 0;
        for (int r = 0; r < rows; r++) {
            const unsigned char* s = src + off[r];
            const uint32_t l = off[r + 1] - off[r];
            const uint64_t h = XXH3_64bits(s, l);
            for (uint32_t i = (uint32_t)h & (slots - 1);; i = (i + 1) & (slots - 1)) {
                if (tv[i] == 0xffffffffu) {
                    tv[i] = nd; th[i] = h; doff[nd] = dl; dlen[nd] = l;
                    memcpy(buf + dl, s, l);
                    dl += l;
                    idx[r] = (uint16_t)nd++;
                    break;
                }
                if (th[i] == h && dlen[tv[i]] == l && !memcmp(buf + doff[tv[i]], s, l)) {
                    idx[r] = (uint16_t)tv[i];
                    break;
                }
            }
        }
        size_t m = dl;
        for (int r = 0; r < rows; r++) buf[m++] = (unsigned char)idx[r];
        if (nd > 256)
            for (int r = 0; r < rows; r++) buf[m++] = (unsigned char)(idx[r] >> 8);
        z2 = ZSTD_compressCCtx(c, dst, cap, buf, m, 1);
        t = now() - t;
        if (t < bd) bd = t;
    }
    printf("rows %d, skeletons %.1f B/row\n", rows, (double)S / rows);
    printf("zstd 1 over the skeletons:     %8zu B %6.2f B/row %7.1f ns/row\n", z1, (double)z1 / rows,
           bz * 1e9 / rows);
    printf("dictionary (%5d distinct) + zstd 1: %8zu B %6.2f B/row %7.1f ns/row\n", nd, z2,
           (double)z2 / rows, bd * 1e9 / rows);
    return 0;
}
