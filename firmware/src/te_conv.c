/*
 * Regular convolutions: pointwise (1x1, stride 1) and im2col + GEMM (any k, stride, padding).
 * Both widen the input pixels of two output pixels to int16 (x - in_zp) into the scratch (layout in
 * te_internal.h) and hand them to the shared 2 x 2 GEMM core (te_gemm.c), so the weights of every
 * output channel pair are loaded once per two output pixels.
 */
#include "te_internal.h"

size_t te_pointwise_scratch_bytes(int in_c)
{
    return (size_t)2 * (size_t)in_c * sizeof(int16_t);
}

size_t te_im2col_scratch_bytes(int k_h, int k_w, int in_c)
{
    return (size_t)2 * (size_t)k_h * (size_t)k_w * (size_t)in_c * sizeof(int16_t);
}

#if !defined(TE_USE_DSP) /* the DSP path is in te_pointwise.c */
void te_conv_pointwise_s8(const int8_t *in, int n_pixels, int in_c, const int8_t *w, const int32_t *bias,
                          int out_c, const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    int p = 0;
    for (; p + 2 <= n_pixels; p += 2) {
        const int8_t *x = in + (size_t)p * (size_t)in_c;
        te_col_put(scratch, in_c, 0, 0, x, in_c, q->in_zp);
        te_col_put(scratch, in_c, 1, 0, x + in_c, in_c, q->in_zp);
        int8_t *y = out + (size_t)p * (size_t)out_c;
        te_gemm_s8_s16(w, scratch, 2, in_c, out_c, bias, q, y, y + out_c);
    }
    if (p < n_pixels) {
        te_col_put(scratch, in_c, 0, 0, in + (size_t)p * (size_t)in_c, in_c, q->in_zp);
        te_gemm_s8_s16(w, scratch, 1, in_c, out_c, bias, q, out + (size_t)p * (size_t)out_c, NULL);
    }
}
#endif

/* Column j of the tile: the im2col column of output pixel (oy, ox), K = k_h * k_w * in_c values in
 * (ky, kx, c) order, x - in_zp for taps inside the input and 0 for padded taps (a padded tap
 * contributes 0). The taps of one kernel row that fall inside the input are one contiguous run. */
static void im2col_column(const int8_t *in, const te_conv_geom_t *g, int oy, int ox, int32_t zp, int16_t *cols,
                          int j)
{
    const int in_h = g->in_h, in_w = g->in_w, in_c = g->in_c, kh = g->k_h, kw = g->k_w;
    const int K = kh * kw * in_c;
    const int iy0 = oy * g->stride_h - g->pad_top;
    const int ix0 = ox * g->stride_w - g->pad_left;
    /* taps kx in [kx0, kx1) fall inside the input row */
    const int kx0 = ix0 < 0 ? -ix0 : 0;
    const int kx1 = ix0 + kw > in_w ? in_w - ix0 : kw;
    for (int ky = 0; ky < kh; ky++) {
        const int k_row = ky * kw * in_c;
        const int iy = iy0 + ky;
        if (iy < 0 || iy >= in_h || kx0 >= kx1) {
            te_col_zero(cols, K, j, k_row, kw * in_c);
            continue;
        }
        if (kx0 > 0) {
            te_col_zero(cols, K, j, k_row, kx0 * in_c);
        }
        const int8_t *src = in + ((size_t)iy * (size_t)in_w + (size_t)(ix0 + kx0)) * (size_t)in_c;
        te_col_put(cols, K, j, k_row + kx0 * in_c, src, (kx1 - kx0) * in_c, zp);
        if (kx1 < kw) {
            te_col_zero(cols, K, j, k_row + kx1 * in_c, (kw - kx1) * in_c);
        }
    }
}

void te_conv_im2col_s8(const int8_t *in, const te_conv_geom_t *g, const int8_t *w, const int32_t *bias,
                       const te_quant_t *q, int8_t *out, int16_t *scratch)
{
    const int K = g->k_h * g->k_w * g->in_c;
    const int out_w = g->out_w, out_c = g->out_c;
    const int n = g->out_h * out_w;
    int p = 0;
    for (; p + 2 <= n; p += 2) {
        im2col_column(in, g, p / out_w, p % out_w, q->in_zp, scratch, 0);
        im2col_column(in, g, (p + 1) / out_w, (p + 1) % out_w, q->in_zp, scratch, 1);
        int8_t *y = out + (size_t)p * (size_t)out_c;
        te_gemm_s8_s16(w, scratch, 2, K, out_c, bias, q, y, y + out_c);
    }
    if (p < n) {
        im2col_column(in, g, p / out_w, p % out_w, q->in_zp, scratch, 0);
        te_gemm_s8_s16(w, scratch, 1, K, out_c, bias, q, out + (size_t)p * (size_t)out_c, NULL);
    }
}
