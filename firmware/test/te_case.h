/*
 * Kernel conformance cases: a compact binary record per kernel call, shared by the host driver
 * (host_driver.c, cases read from a file) and the emulated-board driver (qemu_driver.c, cases
 * compiled into flash). tests/test_kernels_c.py writes the records and checks the outputs against
 * the NumPy reference (tinyengine/numerics/kernels_ref.py).
 *
 * Record (little endian): TE_CASE_HDR_WORDS int32 header words (indices below), then the sections
 * in this order, each padded to a multiple of 4 bytes:
 *   mult[n_ch] int32, shift[n_ch] int32, bias[n_ch] int32 (only if has_bias),
 *   w[w_len] int8, u[u_len] int32, in[in_len] int8, in2[in2_len] int8.
 * For TE_OP_REQUANT `in` holds in_len / 4 int32 accumulators and the output int32 results.
 */
#ifndef TE_CASE_H
#define TE_CASE_H

#include <stddef.h>
#include <stdint.h>

#define TE_CASE_MAGIC 0x31434554u /* "TEC1" */

enum te_case_op {
    TE_OP_REQUANT = 0,
    TE_OP_POINTWISE = 1,
    TE_OP_IM2COL = 2,
    TE_OP_WINOGRAD = 3,   /* variant 0: u given; 1: u computed by te_winograd3x3_weights from w */
    TE_OP_DW_INPLACE = 4, /* buffer of buf_len bytes (the planner's size), output at its start */
    TE_OP_DW = 5,
    TE_OP_ADD = 6,        /* variant 0: separate out; 1: out = a; 2: out = b */
    TE_OP_AVGPOOL = 7,
    TE_OP_FC = 8,
    TE_OP_MAXPOOL = 9,
    TE_OP_MEAN = 10,      /* n = pixels, in_c = channels, out_mult/out_shift, in_zp/out_zp */
    TE_OP_SOFTMAX = 11,   /* in_h = rows, n = depth, a_mult/a_shift = input mult/left shift, b_mult = diff_min */
    TE_OP_PAD = 12,       /* geometry + pad_bottom/pad_right, value = in_zp */
    TE_OP_POINTWISE_W16 = 13, /* te_conv_pointwise_w16_s8: w holds the int16 weight words */
    TE_OP_PW_ADD = 14,    /* pointwise (as TE_OP_POINTWISE) + ADD of in2 (a = the projection, b = in2;
                             a_zp = out_zp, add_out_zp/add_act_*); variant 1: out = in2 */
};

enum te_case_field {
    H_MAGIC = 0, H_OP, H_VARIANT, H_ID,
    H_IN_H, H_IN_W, H_IN_C, H_OUT_H, H_OUT_W, H_OUT_C,
    H_K_H, H_K_W, H_STRIDE_H, H_STRIDE_W, H_PAD_TOP, H_PAD_LEFT, H_PAD_BOTTOM, H_PAD_RIGHT,
    H_IN_ZP, H_OUT_ZP, H_ACT_MIN, H_ACT_MAX,
    H_N, /* n_pixels (pointwise), in_n (fc), n (add, requant) */
    H_N_CH, H_HAS_BIAS, H_W_LEN, H_U_LEN, H_IN_LEN, H_IN2_LEN, H_OUT_LEN, H_SCRATCH_LEN, H_BUF_LEN,
    H_B_ZP, H_A_MULT, H_A_SHIFT, H_B_MULT, H_B_SHIFT, H_OUT_MULT, H_OUT_SHIFT, H_LEFT_SHIFT,
    H_EXPECT_CRC, H_EXPECT_RC,
    H_ADD_OUT_ZP, H_ADD_ACT_MIN, H_ADD_ACT_MAX, /* TE_OP_PW_ADD: the ADD's output zero point and clamp */
    TE_CASE_HDR_WORDS = 48
};

/* Where a case's buffers come from: malloc with exact sizes on the host (so AddressSanitizer sees
 * every overrun), a bump allocator in RAM on the board. */
typedef struct {
    void *(*alloc)(void *ctx, size_t bytes); /* 8-byte aligned, may return NULL */
    void *ctx;
    int copy_const;                          /* 1: copy read-only sections too (host, ASan);
                                                0: kernels read them in place (board: flash) */
    void (*before)(void *ctx);               /* called right before the kernel (timing) */
    void (*after)(void *ctx);                /* called right after it */
} te_case_env_t;

typedef struct {
    int32_t header[TE_CASE_HDR_WORDS];
    const uint8_t *out;   /* the kernel's output (out_len bytes) */
    uint32_t out_len;
    int32_t rc;           /* kernel return value (Winograd), else 0; -2 bad record, -3 no memory */
    uint32_t record_len;  /* bytes of this record: the next one starts there */
} te_case_result_t;

int te_case_run(const uint8_t *rec, size_t avail, const te_case_env_t *env, te_case_result_t *res);

uint32_t te_crc32(const uint8_t *p, size_t n); /* zlib's CRC-32 */

#endif /* TE_CASE_H */
