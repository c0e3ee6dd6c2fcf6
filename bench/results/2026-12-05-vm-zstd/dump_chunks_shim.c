// LD_PRELOAD shim: wraps ZSTD_compressCCtx and writes its first 200 inputs to
// /tmp/zstdwork/chunks/cNNN_<raw bytes>_<result> (the result is an error code when zstd
// could not shrink the chunk). Measurement tool, not product code.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
typedef size_t (*fn_t)(void*, void*, size_t, const void*, size_t, int);
static int n = 0;
size_t ZSTD_compressCCtx(void* c, void* dst, size_t cap, const void* src, size_t len, int lvl) {
    static fn_t real; if (!real) real = (fn_t)dlsym(RTLD_NEXT, "ZSTD_compressCCtx");
    size_t z = real(c, dst, cap, src, len, lvl);
    if (n < 200) { char p[64]; snprintf(p, sizeof p, "/tmp/zstdwork/chunks/c%03d_%zu_%zu", n++, len, z);
      FILE* f = fopen(p, "wb"); fwrite(src, 1, len, f); fclose(f); }
    return z;
}
