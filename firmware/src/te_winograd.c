/*
 * Winograd F(2x2, 3x3) for 3x3 stride-1 regular convolutions, in integers, bit-exact with im2col.
 *
 *   Y = A^T [ U . V ] A / 4,  V = B^T d B (per input channel),  U = G' g G'^T (precomputed)
 *
 *   B^T = [ 1  0 -1  0 ]   G' = 2 G = [ 2  0  0 ]   A^T = [ 1  1  1  0 ]
 *         [ 0  1  1  0 ]              [ 1  1  1 ]         [ 0  1 -1 -1 ]
 *         [ 0 -1  1  0 ]              [ 1 -1  1 ]
 *         [ 0  1  0 -1 ]              [ 0  0  2 ]
 *
 * d is the 4x4 input tile minus in_zp (0 outside the input), g the 3x3 weights of one (out, in)
 * channel pair. Because G' = 2G, U = 4 G g G^T is an integer and A^T (U . V) A = 4 * (the direct
 * 2x2 accumulators without bias); dividing by 4 is exact. The bias is then added and the result
 * requantised exactly like te_conv_im2col_s8, so the outputs are identical.
 *
 * Weights (te_winograd3x3_weights or codegen/winograd.py transform_weights): int32
 * u[((o * 4 + i) * 4 + j) * in_c + c] = sum_{y,x} G'[i][y] * w[o][y][x][c] * G'[j][x], w OHWI int8.
 * With g = (2, 3, 3, 2) the row sums of |G'|, |U_ij| <= g_i g_j 128 <= 1152: U fits int16 (int32 is
 * the agreed layout); the DSP path relies on it and multiplies the low halfword of each U word, so U
 * must be the transform of int8 weights, as both helpers produce.
 *
 * Overflow bound, TE_WINOGRAD_MAX_IN_C = 1827 (|w| <= 128, |x - in_zp| <= 255):
 *  - |V_ij| <= 4 * 255 = 1020 (every row of B^T has two entries +-1), so per input channel
 *    |U_ij V_ij| <= 1152 * 1020 = 1,175,040, and the int32 sums M_ij = sum_c U_ij V_ij (and all their
 *    partial sums) stay below 2^31 while in_c <= floor((2^31 - 1) / 1,175,040) = 1827;
 *  - the output transform runs modulo 2^32 (unsigned), so its 9-term sums may wrap harmlessly: the
 *    true result is 4 S with S the direct accumulator, |S| <= 9 * 128 * 255 * in_c = 293,760 in_c,
 *    and 4 S fits int32 (the wrapped value is then exact) while in_c <= 1827 as well.
 * Larger in_c: te_conv_winograd3x3_s8 returns -1 without writing anything (use im2col).
 *
 * Scratch: V for all input channels of one tile, 16 * in_c int16 (|V| <= 1020), laid out
 * V[pos][c] so that each of the 16 dot products over c reads contiguous memory: 32 * in_c bytes,
 * less than the 36 * in_c the planner reserves for a 3x3 conv (two int16 im2col columns).
 */
#include "te_internal.h"

size_t te_winograd_scratch_bytes(int in_c)
{
    return (size_t)16 * (size_t)in_c * sizeof(int16_t);
}

static const int8_t te_wino_g[4][3] = {{2, 0, 0}, {1, 1, 1}, {1, -1, 1}, {0, 0, 2}};

void te_winograd3x3_weights(const int8_t *w, int out_c, int in_c, int32_t *u)
{
    for (int o = 0; o < out_c; o++) {
        for (int c = 0; c < in_c; c++) {
            int32_t gg[3][3];
            for (int y = 0; y < 3; y++) {
                for (int x = 0; x < 3; x++) {
                    gg[y][x] = w[(((size_t)o * 3 + (size_t)y) * 3 + (size_t)x) * (size_t)in_c + (size_t)c];
                }
            }
            for (int i = 0; i < 4; i++) {
                for (int j = 0; j < 4; j++) {
                    int32_t s = 0;
                    for (int y = 0; y < 3; y++) {
                        for (int x = 0; x < 3; x++) {
                            s += te_wino_g[i][y] * gg[y][x] * te_wino_g[j][x];
                        }
                    }
                    u[(((size_t)o * 4 + (size_t)i) * 4 + (size_t)j) * (size_t)in_c + (size_t)c] = s;
                }
            }
        }
    }
}

/* V = B^T d B of every input channel of the tile whose top-left input pixel is (y0, x0). */
static void input_transform(const int8_t *in, const te_conv_geom_t *g, int y0, int x0, int32_t zp,
                            int16_t *restrict v)
{
    const int in_c = g->in_c;
    const int8_t *pix[16]; /* NULL: padding */
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            const int y = y0 + i, x = x0 + j;
            const int inside = y >= 0 && y < g->in_h && x >= 0 && x < g->in_w;
            pix[i * 4 + j] = inside ? in + ((size_t)y * (size_t)g->in_w + (size_t)x) * (size_t)in_c : NULL;
        }
    }
    for (int c = 0; c < in_c; c++) {
        int32_t d[4][4], t[4][4];
        for (int k = 0; k < 16; k++) {
            d[k >> 2][k & 3] = pix[k] != NULL ? pix[k][c] - zp : 0;
        }
        for (int j = 0; j < 4; j++) { /* t = B^T d */
            t[0][j] = d[0][j] - d[2][j];
            t[1][j] = d[1][j] + d[2][j];
            t[2][j] = d[2][j] - d[1][j];
            t[3][j] = d[1][j] - d[3][j];
        }
        for (int i = 0; i < 4; i++) { /* V = t B */
            v[(size_t)(i * 4 + 0) * (size_t)in_c + (size_t)c] = (int16_t)(t[i][0] - t[i][2]);
            v[(size_t)(i * 4 + 1) * (size_t)in_c + (size_t)c] = (int16_t)(t[i][1] + t[i][2]);
            v[(size_t)(i * 4 + 2) * (size_t)in_c + (size_t)c] = (int16_t)(t[i][2] - t[i][1]);
            v[(size_t)(i * 4 + 3) * (size_t)in_c + (size_t)c] = (int16_t)(t[i][1] - t[i][3]);
        }
    }
}

/* Y = A^T M A in modulo-2^32 arithmetic; returns the four direct accumulators Y / 4 (exact). */
static void output_transform(const int32_t m[16], int32_t y[4])
{
    uint32_t s[2][4];
    for (int j = 0; j < 4; j++) {
        const uint32_t m0 = (uint32_t)m[j], m1 = (uint32_t)m[4 + j], m2 = (uint32_t)m[8 + j],
                       m3 = (uint32_t)m[12 + j];
        s[0][j] = m0 + m1 + m2;
        s[1][j] = m1 - m2 - m3;
    }
    for (int i = 0; i < 2; i++) {
        const uint32_t y0 = s[i][0] + s[i][1] + s[i][2];
        const uint32_t y1 = s[i][1] - s[i][2] - s[i][3];
        /* 4 * S fits int32 (see the bound above), so the wrapped value is exact; / 4 is exact too */
        y[i * 2 + 0] = (int32_t)y0 / 4;
        y[i * 2 + 1] = (int32_t)y1 / 4;
    }
}

/* Two dot products of length n sharing V: *sa = <pa, vp>, *sb = <pb, vp>. The DSP path uses the low
 * halfword of each U word (|U| <= 1152 fits int16, see above) against a pair of V values per load:
 * SMLABB / SMLABT, two MACs per two loads of U (LDRD) and one of V. */
static void dot2(const int32_t *restrict pa, const int32_t *restrict pb, const int16_t *restrict vp, int n,
                 int32_t *sa_out, int32_t *sb_out)
{
    int32_t sa = 0, sb = 0;
    int c = 0;
#if defined(TE_USE_DSP)
    for (; c + 2 <= n; c += 2) {
        const uint32_t vv = te_read_u32(vp + c);
        sa = te_smlabb((uint32_t)pa[c], vv, sa);
        sa = te_smlabt((uint32_t)pa[c + 1], vv, sa);
        sb = te_smlabb((uint32_t)pb[c], vv, sb);
        sb = te_smlabt((uint32_t)pb[c + 1], vv, sb);
    }
#endif
    for (; c < n; c++) {
        const int32_t x = vp[c];
        sa += pa[c] * x;
        sb += pb[c] * x;
    }
    *sa_out = sa;
    *sb_out = sb;
}

/* Output transform, bias, requantisation and store of the valid ny x nx outputs of channel o. */
static void store_tile(const int32_t m[16], int o, const int32_t *bias, const te_quant_t *q, int8_t *y00, int out_w,
                       int out_c, int ny, int nx)
{
    int32_t yv[4];
    output_transform(m, yv);
    const int32_t b = te_bias(bias, o);
    const te_rq_t r = te_rq_make(q->mult[o], q->shift[o]);
    for (int i = 0; i < ny; i++) {
        for (int j = 0; j < nx; j++) {
            y00[((size_t)i * (size_t)out_w + (size_t)j) * (size_t)out_c + (size_t)o] =
                te_rq_s8(&r, te_add_wrap(yv[i * 2 + j], b), q->out_zp, q->act_min, q->act_max);
        }
    }
}

int te_conv_winograd3x3_s8(const int8_t *in, const te_conv_geom_t *g, const int32_t *u, const int32_t *bias,
                           const te_quant_t *q, int8_t *out, int32_t *scratch)
{
    const int in_c = g->in_c, out_c = g->out_c, out_h = g->out_h, out_w = g->out_w;
    if (g->k_h != 3 || g->k_w != 3 || g->stride_h != 1 || g->stride_w != 1 || in_c < 1 ||
        in_c > TE_WINOGRAD_MAX_IN_C) {
        return -1;
    }
    int16_t *const v = (int16_t *)(void *)scratch;
    const size_t plane = (size_t)in_c; /* stride between tile positions in V and U */

    for (int ty = 0; ty < out_h; ty += 2) {
        for (int tx = 0; tx < out_w; tx += 2) {
            input_transform(in, g, ty - g->pad_top, tx - g->pad_left, q->in_zp, v);
            const int ny = out_h - ty < 2 ? 1 : 2, nx = out_w - tx < 2 ? 1 : 2;
            int8_t *y00 = out + ((size_t)ty * (size_t)out_w + (size_t)tx) * (size_t)out_c;
            int o = 0;
            for (; o + 2 <= out_c; o += 2) { /* two output channels share each V load */
                const int32_t *ua = u + (size_t)o * 16 * plane;
                const int32_t *ub = ua + 16 * plane;
                int32_t ma[16], mb[16];
                for (int k = 0; k < 16; k++) {
                    dot2(ua + (size_t)k * plane, ub + (size_t)k * plane, v + (size_t)k * plane, in_c, &ma[k],
                         &mb[k]);
                }
                store_tile(ma, o, bias, q, y00, out_w, out_c, ny, nx);
                store_tile(mb, o + 1, bias, q, y00, out_w, out_c, ny, nx);
            }
            if (o < out_c) {
                const int32_t *ua = u + (size_t)o * 16 * plane;
                int32_t ma[16];
                for (int k = 0; k < 16; k++) {
                    const int32_t *restrict pa = ua + (size_t)k * plane;
                    const int16_t *restrict vp = v + (size_t)k * plane;
                    int32_t sa = 0;
                    for (int c = 0; c < in_c; c++) {
                        sa += pa[c] * vp[c];
                    }
                    ma[k] = sa;
                }
                store_tile(ma, o, bias, q, y00, out_w, out_c, ny, nx);
            }
        }
    }
    return 0;
}
