/*
 * Host conformance driver: host_driver CASES OUT runs every record of the file CASES (te_case.h)
 * and writes, per case, int32 id, int32 rc, uint32 out_len and the out_len output bytes to OUT.
 * Every buffer a kernel sees is malloc'ed with its exact size, so a build with
 * -fsanitize=address reports any read or write outside it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "te_case.h"

#define MAX_ALLOCS 32

typedef struct {
    void *p[MAX_ALLOCS];
    int n;
} allocs_t;

static void *host_alloc(void *ctx, size_t bytes)
{
    allocs_t *a = (allocs_t *)ctx;
    if (a->n == MAX_ALLOCS) {
        return NULL;
    }
    void *p = malloc(bytes);
    if (p != NULL) {
        a->p[a->n++] = p;
    }
    return p;
}

static void free_all(allocs_t *a)
{
    for (int i = 0; i < a->n; i++) {
        free(a->p[i]);
    }
    a->n = 0;
}

static int write_u32(FILE *f, uint32_t v)
{
    return fwrite(&v, 4, 1, f) == 1 ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s CASES OUT\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (f == NULL) {
        perror(argv[1]);
        return 2;
    }
    fseek(f, 0, SEEK_END);
    const long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *blob = (uint8_t *)malloc((size_t)size + 1u);
    if (blob == NULL || fread(blob, 1, (size_t)size, f) != (size_t)size) {
        fprintf(stderr, "cannot read %s\n", argv[1]);
        return 2;
    }
    fclose(f);
    FILE *o = fopen(argv[2], "wb");
    if (o == NULL) {
        perror(argv[2]);
        return 2;
    }
    allocs_t allocs = {{0}, 0};
    te_case_env_t env = {host_alloc, &allocs, 1, NULL, NULL};
    size_t off = 0;
    int n = 0;
    while (off < (size_t)size) {
        te_case_result_t res;
        const int err = te_case_run(blob + off, (size_t)size - off, &env, &res);
        if (err == -2) {
            fprintf(stderr, "bad record at byte %zu\n", off);
            return 3;
        }
        write_u32(o, (uint32_t)res.header[H_ID]);
        write_u32(o, (uint32_t)res.rc);
        write_u32(o, res.out_len);
        if (res.out_len > 0u && fwrite(res.out, 1, res.out_len, o) != res.out_len) {
            fprintf(stderr, "write error\n");
            return 2;
        }
        free_all(&allocs);
        off += res.record_len;
        n++;
    }
    fclose(o);
    free(blob);
    fprintf(stderr, "ran %d cases\n", n);
    return 0;
}
