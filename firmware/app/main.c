/*
 * TinyEngine probe firmware: answers framed requests on the serial port (firmware/PROTOCOL.md) with the
 * generated model (model.h): PING, INFO, INFER, BENCH, PROFILE, LAYERS. It only ever speaks in response
 * to a request; a bad frame gets an error frame; a half frame is dropped after TE_PROTO_TIMEOUT_MS of
 * silence. Board specifics live behind board.h, timing behind te_timing.h.
 *
 * Build: this file + te_protocol.c + te_timing.c + a board file + the project's src/ C files, with
 * -DTE_HOOKS_HEADER='"te_hooks.h"' for per-layer profiling (see tinyengine/deploy/firmware_build.py).
 */
#include <string.h>

#include "board.h"
#include "model.h"
#include "te_hooks.h"
#include "te_protocol.h"
#include "te_timing.h"

#ifndef TE_MODEL_HASH
#define TE_MODEL_HASH 0u /* project generated before model hashes existed */
#endif
#ifndef TE_BENCH_MAX
#define TE_BENCH_MAX 100u /* most runs in one BENCH request */
#endif
#ifndef TE_RX_MIN_BYTES
#define TE_RX_MIN_BYTES 256u /* PING echo and small requests */
#endif
#define TE_RX_NEED ((uint32_t)TE_INPUT_BYTES + 4u) /* BENCH: u32 n + an input */
#define TE_RX_BYTES (TE_RX_NEED > TE_RX_MIN_BYTES ? TE_RX_NEED : TE_RX_MIN_BYTES)
#define TE_INFO_FIXED_BYTES 88u

#ifdef TE_OUTPUT_SHAPE
static const uint16_t out_shape[] = TE_OUTPUT_SHAPE;
#define TE_OUT_RANK (sizeof out_shape / sizeof out_shape[0])
#else
static const uint16_t out_shape[] = {TE_OUTPUT_BYTES};
#define TE_OUT_RANK 1u
#endif

uint64_t *volatile te_prof_ticks;
uint64_t te_prof_t0;

/* The receive buffer. By default it is the model's arena itself: between inferences the arena holds
 * nothing, so a request (an input image) needs no SRAM beyond the planner's peak -- the firmware's
 * SRAM is the arena plus the stack and these few tables, which is what lets a model that the
 * planner fits also fit as probe firmware. The price: a request's bytes are gone once an inference
 * ran, so BENCH takes no input in this mode (its runs use the zero-point input; INFER checks the
 * outputs). -DTE_RX_SEPARATE gives the parser its own buffer (TE_RX_BYTES more SRAM) and BENCH
 * its input. INFO flags bit 1 says which. */
#if !defined(TE_RX_SEPARATE) && TE_ARENA_BYTES >= TE_INPUT_BYTES + 4 && TE_ARENA_BYTES >= TE_RX_MIN_BYTES
#define TE_RX_IN_ARENA 1
#define RX_CAP ((uint32_t)TE_ARENA_BYTES)
static uint8_t *rx_buf;
#else
#define TE_RX_IN_ARENA 0
#define RX_CAP ((uint32_t)TE_RX_BYTES)
static uint8_t rx_store[TE_RX_BYTES] __attribute__((aligned(4)));
static uint8_t *rx_buf = rx_store;
#endif
static uint64_t run_ticks[TE_BENCH_MAX];
static uint64_t layer_ticks[TE_NUM_LAYERS];
static te_proto_parser_t parser;
static int model_status;

static void sink(void *ctx, const uint8_t *data, size_t n)
{
    (void)ctx;
    board_write(data, n);
}

static void send_error(uint8_t seq, uint8_t code, uint8_t cmd, uint32_t detail)
{
    te_proto_send_error(sink, 0, seq, code, cmd, detail);
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static void put_str(te_proto_writer_t *w, const char *s)
{
    size_t n = strlen(s);
    if (n > 255u) {
        n = 255u;
    }
    te_proto_put_u8(w, (uint8_t)n);
    te_proto_put(w, s, n);
}

static uint32_t str_bytes(const char *s)
{
    const size_t n = strlen(s);
    return 1u + (uint32_t)(n > 255u ? 255u : n);
}

/* Boards without a port (MPS2, host) have nothing to add; a port overrides this. */
__attribute__((weak)) const char *te_board_status(void)
{
    return "";
}

static void do_info(uint8_t seq)
{
    te_proto_writer_t w;
    const char *status = te_board_status();
    const uint32_t len = TE_INFO_FIXED_BYTES + str_bytes(TE_BOARD_NAME) + str_bytes(TE_CORE) + str_bytes(TE_MODEL_NAME) +
                         str_bytes(status);
    uint16_t flags = 0u;
#ifdef TE_USE_DSP
    flags |= 1u;
#endif
    if (TE_RX_IN_ARENA) {
        flags |= 2u;
    }
    te_proto_begin(&w, sink, 0, TE_CMD_INFO | TE_CMD_RESPONSE, seq, 0u, len);
    te_proto_put_u8(&w, TE_PROTO_VERSION);
    te_proto_put_u8(&w, (uint8_t)te_time_kind());
    te_proto_put_u16(&w, flags);
    te_proto_put_u32(&w, te_time_hz());
    te_proto_put_u32(&w, te_core_clock_hz());
    te_proto_put_u32(&w, TE_MODEL_HASH);
    te_proto_put_u32(&w, TE_ARENA_BYTES);
    te_proto_put_u32(&w, TE_WEIGHT_BYTES);
    te_proto_put_u32(&w, (uint32_t)TE_MODEL_MACS);
    te_proto_put_u32(&w, parser.cap);
    te_proto_put_u32(&w, TE_NUM_LAYERS);
    te_proto_put_u32(&w, TE_INPUT_BYTES);
    te_proto_put_u16(&w, TE_INPUT_H);
    te_proto_put_u16(&w, TE_INPUT_W);
    te_proto_put_u16(&w, TE_INPUT_C);
    te_proto_put_u16(&w, (uint16_t)(TE_OUT_RANK > 4u ? 4u : TE_OUT_RANK));
    for (uint32_t i = 0; i < 4u; i++) {
        te_proto_put_u16(&w, i < TE_OUT_RANK ? out_shape[i] : 0u);
    }
    te_proto_put_u32(&w, f32_bits(TE_INPUT_SCALE));
    te_proto_put_u32(&w, (uint32_t)(int32_t)TE_INPUT_ZERO_POINT);
    te_proto_put_u32(&w, TE_OUTPUT_BYTES);
    te_proto_put_u32(&w, f32_bits(TE_OUTPUT_SCALE));
    te_proto_put_u32(&w, (uint32_t)(int32_t)TE_OUTPUT_ZERO_POINT);
    te_proto_put_u32(&w, TE_BENCH_MAX);
    te_proto_put_u32(&w, (uint32_t)model_status);
    te_proto_put_u32(&w, TE_PROTO_TIMEOUT_MS);
    put_str(&w, TE_BOARD_NAME);
    put_str(&w, TE_CORE);
    put_str(&w, TE_MODEL_NAME);
    put_str(&w, status);
    te_proto_end(&w);
}

static void do_layers(uint8_t seq)
{
    te_proto_writer_t w;
    uint32_t len = 4u;
    for (uint32_t i = 0; i < TE_NUM_LAYERS; i++) {
        len += 4u + str_bytes(te_layer_names[i]);
    }
    te_proto_begin(&w, sink, 0, TE_CMD_LAYERS | TE_CMD_RESPONSE, seq, 0u, len);
    te_proto_put_u32(&w, TE_NUM_LAYERS);
    for (uint32_t i = 0; i < TE_NUM_LAYERS; i++) {
        te_proto_put_u32(&w, te_layer_macs[i]);
        put_str(&w, te_layer_names[i]);
    }
    te_proto_end(&w);
}

/* Input for a timed run: the request's bytes, or (none given) the input zero point everywhere. */
static void load_input(const uint8_t *in)
{
    if (in != NULL) {
        memmove(te_model_input(), in, TE_INPUT_BYTES); /* the request may sit in the arena */
    } else {
        memset(te_model_input(), (int)(int8_t)(TE_INPUT_ZERO_POINT), TE_INPUT_BYTES);
    }
}

/* One timed inference; returns te_model_invoke()'s status. */
static int timed_invoke(uint64_t *ticks)
{
    const uint64_t t0 = te_time_now();
    int rc = te_model_invoke();
    TE_TIME_KEEP(rc);
    const uint64_t t1 = te_time_now();
    *ticks = t1 - t0;
    return rc;
}

static void do_infer(uint8_t seq, uint32_t len)
{
    if (len != TE_INPUT_BYTES) {
        send_error(seq, TE_ERR_BAD_LENGTH, TE_CMD_INFER, TE_INPUT_BYTES);
        return;
    }
    load_input(rx_buf);
    uint64_t ticks = 0u;
    const int rc = timed_invoke(&ticks);
    if (rc != 0) {
        send_error(seq, TE_ERR_MODEL, TE_CMD_INFER, (uint32_t)rc);
        return;
    }
    te_proto_writer_t w;
    te_proto_begin(&w, sink, 0, TE_CMD_INFER | TE_CMD_RESPONSE, seq, 0u, 8u + TE_OUTPUT_BYTES);
    te_proto_put_u64(&w, ticks);
    te_proto_put(&w, te_model_output(), TE_OUTPUT_BYTES);
    te_proto_end(&w);
}

static void do_bench(uint8_t seq, uint32_t len)
{
    if (len != 4u && len != 4u + TE_INPUT_BYTES) {
        send_error(seq, TE_ERR_BAD_LENGTH, TE_CMD_BENCH, 4u + TE_INPUT_BYTES);
        return;
    }
    const uint32_t n = te_get_u32(rx_buf);
    if (n < 1u || n > TE_BENCH_MAX) {
        send_error(seq, TE_ERR_BAD_ARG, TE_CMD_BENCH, TE_BENCH_MAX);
        return;
    }
    if (TE_RX_IN_ARENA && len > 4u) { /* the first run would overwrite the input the others need */
        send_error(seq, TE_ERR_BAD_ARG, TE_CMD_BENCH, 0u);
        return;
    }
    const uint8_t *in = len > 4u ? rx_buf + 4 : NULL;
    for (uint32_t i = 0; i < n; i++) {
        load_input(in);
        const int rc = timed_invoke(&run_ticks[i]);
        if (rc != 0) {
            send_error(seq, TE_ERR_MODEL, TE_CMD_BENCH, (uint32_t)rc);
            return;
        }
    }
    te_proto_writer_t w;
    te_proto_begin(&w, sink, 0, TE_CMD_BENCH | TE_CMD_RESPONSE, seq, 0u, 4u + 8u * n);
    te_proto_put_u32(&w, n);
    for (uint32_t i = 0; i < n; i++) {
        te_proto_put_u64(&w, run_ticks[i]);
    }
    te_proto_end(&w);
}

static void do_profile(uint8_t seq, uint32_t len)
{
    if (len != 0u && len != TE_INPUT_BYTES) {
        send_error(seq, TE_ERR_BAD_LENGTH, TE_CMD_PROFILE, TE_INPUT_BYTES);
        return;
    }
    load_input(len > 0u ? rx_buf : NULL);
    memset(layer_ticks, 0, sizeof layer_ticks);
    te_prof_ticks = layer_ticks;
    uint64_t total = 0u;
    const int rc = timed_invoke(&total);
    te_prof_ticks = 0;
    if (rc != 0) {
        send_error(seq, TE_ERR_MODEL, TE_CMD_PROFILE, (uint32_t)rc);
        return;
    }
    te_proto_writer_t w;
    te_proto_begin(&w, sink, 0, TE_CMD_PROFILE | TE_CMD_RESPONSE, seq, 0u, 4u + 8u + 8u * TE_NUM_LAYERS);
    te_proto_put_u32(&w, TE_NUM_LAYERS);
    te_proto_put_u64(&w, total);
    for (uint32_t i = 0; i < TE_NUM_LAYERS; i++) {
        te_proto_put_u64(&w, layer_ticks[i]);
    }
    te_proto_end(&w);
}

static void dispatch(const te_proto_parser_t *p)
{
    const uint8_t seq = p->seq;
    if (model_status != 0 && (p->cmd == TE_CMD_INFER || p->cmd == TE_CMD_BENCH || p->cmd == TE_CMD_PROFILE)) {
        send_error(seq, TE_ERR_MODEL, p->cmd, (uint32_t)model_status);
        return;
    }
    switch (p->cmd) {
    case TE_CMD_PING:
        te_proto_send(sink, 0, TE_CMD_PING | TE_CMD_RESPONSE, seq, rx_buf, p->len);
        return;
    case TE_CMD_INFO:
    case TE_CMD_LAYERS:
        if (p->len != 0u) {
            send_error(seq, TE_ERR_BAD_LENGTH, p->cmd, 0u);
        } else if (p->cmd == TE_CMD_INFO) {
            do_info(seq);
        } else {
            do_layers(seq);
        }
        return;
    case TE_CMD_INFER:
        do_infer(seq, p->len);
        return;
    case TE_CMD_BENCH:
        do_bench(seq, p->len);
        return;
    case TE_CMD_PROFILE:
        do_profile(seq, p->len);
        return;
    default:
        send_error(seq, TE_ERR_UNKNOWN_CMD, p->cmd, 0u);
        return;
    }
}

static void handle(te_proto_event_t ev)
{
    if (ev == TE_PROTO_FRAME) {
        dispatch(&parser);
    } else if (ev == TE_PROTO_ERROR) {
        send_error(parser.seq, parser.err, parser.cmd, parser.err_detail);
    }
}

/* The server loop; returns only when the board's input is closed (host builds). */
int te_app_run(void)
{
    board_init();
    te_time_init();
#if TE_RX_IN_ARENA
    rx_buf = te_model_arena();
#endif
    te_proto_init(&parser, rx_buf, RX_CAP);
    model_status = te_model_check();
    uint32_t last_ms = board_now_ms();
    for (;;) {
        const int c = board_try_getc();
        if (c == TE_BOARD_CLOSED) {
            handle(te_proto_timeout(&parser));
            return 0;
        }
        if (c < 0) {
            if (te_proto_busy(&parser) && (uint32_t)(board_now_ms() - last_ms) >= TE_PROTO_TIMEOUT_MS) {
                handle(te_proto_timeout(&parser));
            }
            continue;
        }
        if (te_proto_busy(&parser) || c == TE_PROTO_MAGIC0) {
            last_ms = board_now_ms(); /* only frames need the clock */
        }
        handle(te_proto_feed(&parser, (uint8_t)c));
    }
}

#ifndef TE_APP_NO_MAIN
int main(void)
{
    return te_app_run();
}
#endif
