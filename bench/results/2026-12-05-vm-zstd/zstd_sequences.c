// Sequences zstd finds in one chunk at a level (ZSTD_generateSequences): usage FILE LEVEL;
// "seq/row" assumes a 16,384-row block.
#define ZSTD_STATIC_LINKING_ONLY
#include <zstd.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc,char**argv){
  FILE*f=fopen(argv[1],"rb");fseek(f,0,2);long n=ftell(f);fseek(f,0,0);char*src=malloc(n);fread(src,1,n,f);fclose(f);
  ZSTD_CCtx*c=ZSTD_createCCtx();ZSTD_CCtx_setParameter(c,ZSTD_c_compressionLevel,atoi(argv[2]));
  size_t cap=ZSTD_sequenceBound(n);ZSTD_Sequence*s=malloc(cap*sizeof*s);
  size_t k=ZSTD_generateSequences(c,s,cap,src,n);
  if(ZSTD_isError(k)){printf("err %s\n",ZSTD_getErrorName(k));return 1;}
  size_t lit=0,ml=0,nz=0;for(size_t i=0;i<k;i++){lit+=s[i].litLength;ml+=s[i].matchLength;if(s[i].matchLength)nz++;}
  printf("seqs %zu (matches %zu) lit %zu matched %zu avg match %.1f seq/row %.2f\n",k,nz,lit,ml,(double)ml/nz,(double)nz/16384);
}
