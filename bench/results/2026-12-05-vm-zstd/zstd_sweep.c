// zstd parameter sweep over one dumped column chunk (issue 14 zstd step, 2026-12-05).
// Usage: zstd_sweep FILE ROWS [level strategy wlog hlog clog slog mml tlen litmode]...
// (0 leaves a parameter at the level's default; tlen -1 likewise). Per configuration:
// compressed bytes and the best of 15 ZSTD_compress2 calls' thread CPU time per row.
// With EVICT=1, 64 MiB are written between calls so the input is read cold.
#define ZSTD_STATIC_LINKING_ONLY
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
    char* src = malloc(n);
    if (fread(src, 1, n, f) != (size_t)n) return 1;
    fclose(f);
    int rows = atoi(argv[2]);
    size_t cap = ZSTD_compressBound(n);
    char* dst = malloc(cap);
    char* evict = getenv("EVICT") ? malloc(64 << 20) : NULL;
    ZSTD_CCtx* c = ZSTD_createCCtx();
    for (int a = 3; a + 9 <= argc; a += 9) {
        int v[9];
        for (int i = 0; i < 9; i++) v[i] = atoi(argv[a + i]);
        ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
        ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, v[0]);
        if (v[1]) ZSTD_CCtx_setParameter(c, ZSTD_c_strategy, v[1]);
        if (v[2]) ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, v[2]);
        if (v[3]) ZSTD_CCtx_setParameter(c, ZSTD_c_hashLog, v[3]);
        if (v[4]) ZSTD_CCtx_setParameter(c, ZSTD_c_chainLog, v[4]);
        if (v[5]) ZSTD_CCtx_setParameter(c, ZSTD_c_searchLog, v[5]);
        if (v[6]) ZSTD_CCtx_setParameter(c, ZSTD_c_minMatch, v[6]);
        if (v[7] >= 0) ZSTD_CCtx_setParameter(c, ZSTD_c_targetLength, v[7]);
        if (v[8]) ZSTD_CCtx_setParameter(c, ZSTD_c_literalCompressionMode, v[8]);
        double best = 1e9;
        size_t z = 0;
        for (int it = 0; it < 15; it++) {
            if (evict) memset(evict, it, 64 << 20);
            double t = now();
            z = ZSTD_compress2(c, dst, cap, src, n);
            double d = now() - t;
            if (d < best) best = d;
        }
        if (ZSTD_isError(z)) {
            printf("error %s\n", ZSTD_getErrorName(z));
            continue;
        }
        printf("level %3d strategy %d wlog %2d hlog %2d clog %2d slog %d mml %d tlen %3d lit %d : "
               "%8zu B %6.2f B/row %7.1f ns/row\n",
               v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], z, (double)z / rows,
               best * 1e9 / rows);
    }
    return 0;
}
