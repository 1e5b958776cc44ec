/* Runs one conformance record (format in te_case.h) through the kernel it names. */
#include "te_case.h"

#include <string.h>

#include "tinyengine.h"

#define OUT_SENTINEL 0xA5u /* output bytes a kernel must not touch (e.g. a rejected Winograd call) */

static uint32_t pad4(uint32_t n)
{
    return (n + 3u) & ~3u;
}

/* A buffer of exactly `n` bytes from the environment (NULL + ok for n == 0; NULL + !ok if refused). */
static void *alloc_n(const te_case_env_t *env, uint32_t n, int *ok)
{
    if (n == 0u) {
        return NULL;
    }
    void *p = env->alloc(env->ctx, n);
    if (p == NULL) {
        *ok = 0;
    }
    return p;
}

/* A writable copy of `n` bytes in a buffer of exactly `n` bytes (NULL + ok for n == 0). */
static void *copy_of(const te_case_env_t *env, const uint8_t *src, uint32_t n, int *ok)
{
    void *p = alloc_n(env, n, ok);
    if (p != NULL) {
        memcpy(p, src, n);
    }
    return p;
}

/* Read-only data: a copy (copy != 0) or the record itself. */
static void *const_of(const te_case_env_t *env, int copy, const uint8_t *src, uint32_t n, int *ok)
{
    if (copy) {
        return copy_of(env, src, n, ok);
    }
    return n == 0u ? NULL : (void *)(uintptr_t)src;
}

static void *alloc_fill(const te_case_env_t *env, uint32_t n, uint8_t fill, int *ok)
{
    void *p = alloc_n(env, n, ok);
    if (p != NULL) {
        memset(p, fill, n);
    }
    return p;
}

static void before(const te_case_env_t *env)
{
    if (env->before != NULL) {
        env->before(env->ctx);
    }
}

static void after(const te_case_env_t *env)
{
    if (env->after != NULL) {
        env->after(env->ctx);
    }
}

int te_case_run(const uint8_t *rec, size_t avail, const te_case_env_t *env, te_case_result_t *res)
{
    int32_t *h = res->header;
    res->out = NULL;
    res->out_len = 0u;
    res->rc = -2;
    res->record_len = 0u;
    if (avail < sizeof(int32_t) * TE_CASE_HDR_WORDS) {
        return -2;
    }
    memcpy(h, rec, sizeof(int32_t) * TE_CASE_HDR_WORDS);
    if ((uint32_t)h[H_MAGIC] != TE_CASE_MAGIC) {
        return -2;
    }
    const uint32_t n_ch = (uint32_t)h[H_N_CH];
    const uint32_t w_len = (uint32_t)h[H_W_LEN], u_len = (uint32_t)h[H_U_LEN];
    const uint32_t in_len = (uint32_t)h[H_IN_LEN], in2_len = (uint32_t)h[H_IN2_LEN];
    const uint32_t out_len = (uint32_t)h[H_OUT_LEN], scratch_len = (uint32_t)h[H_SCRATCH_LEN];

    size_t off = sizeof(int32_t) * TE_CASE_HDR_WORDS;
    const uint8_t *s_mult = rec + off;
    off += 4u * n_ch;
    const uint8_t *s_shift = rec + off;
    off += 4u * n_ch;
    const uint8_t *s_bias = rec + off;
    if (h[H_HAS_BIAS] != 0) {
        off += 4u * n_ch;
    }
    const uint8_t *s_w = rec + off;
    off += pad4(w_len);
    const uint8_t *s_u = rec + off;
    off += 4u * u_len;
    const uint8_t *s_in = rec + off;
    off += pad4(in_len);
    const uint8_t *s_in2 = rec + off;
    off += pad4(in2_len);
    if (off > avail) {
        return -2;
    }
    res->record_len = (uint32_t)off;

    /* Everything the kernel touches lives in its own exactly-sized buffer (copy_const), or the
     * read-only data stays where it is (in flash on the board, like a generated model's weights).
     * Inputs an op writes (ADD with out = a or b) are always copied. */
    int ok = 1;
    const int cc = env->copy_const;
    const int writes_in = (h[H_OP] == TE_OP_ADD || h[H_OP] == TE_OP_PW_ADD) && h[H_VARIANT] != 0;
    const int32_t *mult = (const int32_t *)const_of(env, cc, s_mult, 4u * n_ch, &ok);
    const int32_t *shift = (const int32_t *)const_of(env, cc, s_shift, 4u * n_ch, &ok);
    const int32_t *bias = h[H_HAS_BIAS] != 0 ? (const int32_t *)const_of(env, cc, s_bias, 4u * n_ch, &ok) : NULL;
    const int8_t *w = (const int8_t *)const_of(env, cc, s_w, w_len, &ok);
    const int32_t *u = (const int32_t *)const_of(env, cc, s_u, 4u * u_len, &ok);
    int8_t *in = (int8_t *)const_of(env, cc || writes_in, s_in, in_len, &ok);
    int8_t *in2 = (int8_t *)const_of(env, cc || writes_in, s_in2, in2_len, &ok);
    void *scratch = alloc_fill(env, scratch_len, 0xEEu, &ok);
    if (!ok) {
        res->rc = -3;
        return -3;
    }

    te_quant_t q;
    q.mult = mult;
    q.shift = shift;
    q.in_zp = h[H_IN_ZP];
    q.out_zp = h[H_OUT_ZP];
    q.act_min = h[H_ACT_MIN];
    q.act_max = h[H_ACT_MAX];

    te_conv_geom_t g;
    g.in_h = (int16_t)h[H_IN_H];
    g.in_w = (int16_t)h[H_IN_W];
    g.in_c = (int16_t)h[H_IN_C];
    g.out_h = (int16_t)h[H_OUT_H];
    g.out_w = (int16_t)h[H_OUT_W];
    g.out_c = (int16_t)h[H_OUT_C];
    g.k_h = (int8_t)h[H_K_H];
    g.k_w = (int8_t)h[H_K_W];
    g.stride_h = (int8_t)h[H_STRIDE_H];
    g.stride_w = (int8_t)h[H_STRIDE_W];
    g.pad_top = (int8_t)h[H_PAD_TOP];
    g.pad_left = (int8_t)h[H_PAD_LEFT];

    uint8_t *out = NULL;
    int32_t rc = 0;
    const int op = h[H_OP];
    if (op != TE_OP_DW_INPLACE && !((op == TE_OP_ADD || op == TE_OP_PW_ADD) && h[H_VARIANT] != 0)) {
        out = (uint8_t *)alloc_fill(env, out_len, OUT_SENTINEL, &ok);
        if (!ok) {
            res->rc = -3;
            return -3;
        }
    }

    switch (op) {
    case TE_OP_REQUANT: {
        const uint32_t n = in_len / 4u;
        int32_t acc, r;
        for (uint32_t i = 0; i < n; i++) {
            memcpy(&acc, in + 4u * i, 4u);
            before(env);
            r = te_requantize(acc, mult[i], shift[i]);
            after(env);
            memcpy(out + 4u * i, &r, 4u);
        }
        break;
    }
    case TE_OP_POINTWISE:
        if (te_pointwise_scratch_bytes(g.in_c) > scratch_len) {
            rc = -4;
            break;
        }
        before(env);
        te_conv_pointwise_s8(in, h[H_N], g.in_c, w, bias, g.out_c, &q, (int8_t *)out, (int16_t *)scratch);
        after(env);
        break;
    case TE_OP_POINTWISE_W16:
        if (te_pointwise_scratch_bytes(g.in_c) > scratch_len) {
            rc = -4;
            break;
        }
        before(env);
        rc = te_conv_pointwise_w16_s8(in, h[H_N], g.in_c, (const int32_t *)(const void *)w, bias, g.out_c, &q,
                                      (int8_t *)out, (int16_t *)scratch);
        after(env);
        break;
    case TE_OP_IM2COL:
        if (h[H_VARIANT] == 1) { /* the stem kernel: weights in its int16-pair layout (codegen/stem.py) */
            if (te_stem_scratch_bytes(g.k_h, g.k_w, g.in_c) > scratch_len) {
                rc = -4;
                break;
            }
            before(env);
            rc = te_conv_stem_s8(in, &g, (const int32_t *)(const void *)w, bias, &q, (int8_t *)out,
                                 (int16_t *)scratch);
            after(env);
            break;
        }
        if (te_im2col_scratch_bytes(g.k_h, g.k_w, g.in_c) > scratch_len) {
            rc = -4;
            break;
        }
        before(env);
        te_conv_im2col_s8(in, &g, w, bias, &q, (int8_t *)out, (int16_t *)scratch);
        after(env);
        break;
    case TE_OP_WINOGRAD: {
        if (te_winograd_scratch_bytes(g.in_c) > scratch_len) {
            rc = -4;
            break;
        }
        const int32_t *uu = u;
        if (h[H_VARIANT] == 1) {
            const uint32_t n = (uint32_t)g.out_c * 16u * (uint32_t)g.in_c * 4u;
            int32_t *t = (int32_t *)alloc_fill(env, n, 0, &ok);
            if (!ok) {
                res->rc = -3;
                return -3;
            }
            te_winograd3x3_weights(w, g.out_c, g.in_c, t);
            uu = t;
        }
        before(env);
        rc = te_conv_winograd3x3_s8(in, &g, uu, bias, &q, (int8_t *)out, (int32_t *)scratch);
        after(env);
        break;
    }
    case TE_OP_DW_INPLACE: {
        const uint32_t buf_len = (uint32_t)h[H_BUF_LEN];
        if (te_depthwise_scratch_bytes(g.in_h, g.in_w, g.pad_top, h[H_PAD_BOTTOM], g.pad_left, h[H_PAD_RIGHT]) >
            scratch_len) {
            rc = -4;
            break;
        }
        out = (uint8_t *)alloc_fill(env, buf_len, OUT_SENTINEL, &ok);
        if (!ok || buf_len < in_len) {
            res->rc = -3;
            return -3;
        }
        memcpy(out, in, in_len);
        before(env);
        te_depthwise_inplace_s8((int8_t *)out, &g, w, bias, &q, (int8_t *)scratch);
        after(env);
        break;
    }
    case TE_OP_DW:
        before(env);
        te_depthwise_s8(in, &g, w, bias, &q, (int8_t *)out);
        after(env);
        break;
    case TE_OP_ADD: {
        te_add_params_t p;
        p.a_zp = h[H_IN_ZP];
        p.b_zp = h[H_B_ZP];
        p.out_zp = h[H_OUT_ZP];
        p.a_mult = h[H_A_MULT];
        p.a_shift = h[H_A_SHIFT];
        p.b_mult = h[H_B_MULT];
        p.b_shift = h[H_B_SHIFT];
        p.out_mult = h[H_OUT_MULT];
        p.out_shift = h[H_OUT_SHIFT];
        p.left_shift = h[H_LEFT_SHIFT];
        p.act_min = h[H_ACT_MIN];
        p.act_max = h[H_ACT_MAX];
        if (h[H_VARIANT] == 1) {
            out = (uint8_t *)in;
        } else if (h[H_VARIANT] == 2) {
            out = (uint8_t *)in2;
        }
        before(env);
        te_add_s8(in, in2, h[H_N], &p, (int8_t *)out);
        after(env);
        break;
    }
    case TE_OP_PW_ADD: {
        te_add_params_t p;
        p.a_zp = h[H_OUT_ZP];
        p.b_zp = h[H_B_ZP];
        p.out_zp = h[H_ADD_OUT_ZP];
        p.a_mult = h[H_A_MULT];
        p.a_shift = h[H_A_SHIFT];
        p.b_mult = h[H_B_MULT];
        p.b_shift = h[H_B_SHIFT];
        p.out_mult = h[H_OUT_MULT];
        p.out_shift = h[H_OUT_SHIFT];
        p.left_shift = h[H_LEFT_SHIFT];
        p.act_min = h[H_ADD_ACT_MIN];
        p.act_max = h[H_ADD_ACT_MAX];
        if (te_pointwise_add_scratch_bytes(g.in_c, g.out_c) > scratch_len) {
            rc = -4;
            break;
        }
        if (h[H_VARIANT] == 1) {
            out = (uint8_t *)in2;
        }
        before(env);
        te_conv_pointwise_add_s8(in, h[H_N], g.in_c, w, bias, g.out_c, &q, in2, &p, (int8_t *)out,
                                 (int16_t *)scratch);
        after(env);
        break;
    }
    case TE_OP_AVGPOOL:
        before(env);
        te_avg_pool_s8(in, g.in_h, g.in_w, g.in_c, g.k_h, g.k_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                       g.out_h, g.out_w, q.act_min, q.act_max, (int8_t *)out);
        after(env);
        break;
    case TE_OP_FC:
        before(env);
        te_fully_connected_s8(in, h[H_N], w, bias, g.out_c, &q, (int8_t *)out);
        after(env);
        break;
    case TE_OP_MAXPOOL:
        before(env);
        te_max_pool_s8(in, g.in_h, g.in_w, g.in_c, g.k_h, g.k_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left,
                       g.out_h, g.out_w, q.act_min, q.act_max, (int8_t *)out);
        after(env);
        break;
    case TE_OP_MEAN:
        before(env);
        te_mean_hw_s8(in, h[H_N], h[H_IN_C], h[H_IN_ZP], h[H_OUT_MULT], h[H_OUT_SHIFT], h[H_OUT_ZP], (int8_t *)out);
        after(env);
        break;
    case TE_OP_PAD:
        before(env);
        te_pad_s8(in, g.in_h, g.in_w, g.in_c, g.pad_top, h[H_PAD_BOTTOM], g.pad_left, h[H_PAD_RIGHT], q.in_zp,
                  (int8_t *)out);
        after(env);
        break;
    case TE_OP_SOFTMAX:
        before(env);
        te_softmax_s8(in, h[H_IN_H], h[H_N], h[H_A_MULT], h[H_A_SHIFT], h[H_B_MULT], (int8_t *)out);
        after(env);
        break;
    default:
        res->rc = -2;
        return -2;
    }
    res->out = out;
    res->out_len = out_len;
    res->rc = rc;
    return 0;
}

uint32_t te_crc32(const uint8_t *p, size_t n)
{
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++) {
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        }
    }
    return ~crc;
}
