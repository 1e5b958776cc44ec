/*
 * TinyEngine probe wire protocol (firmware/PROTOCOL.md): framing, CRC32 and a byte-fed frame parser.
 *
 * Portable C99, no malloc, no I/O: the parser is a state machine fed one byte at a time that writes
 * payloads into a fixed buffer given at init; the encoder streams a frame through a byte-sink callback
 * (no transmit buffer). Frame:
 *     0  magic 0xA5 0x5A | 2 version | 3 cmd | 4 seq | 5 flags | 6..9 payload length (u32 LE)
 *     10..11 header check (low 16 bits of CRC32 of bytes 0..9, LE) | payload | CRC32 of all before (LE)
 */
#ifndef TE_PROTOCOL_H
#define TE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TE_PROTO_MAGIC0 0xA5u
#define TE_PROTO_MAGIC1 0x5Au
#define TE_PROTO_VERSION 1u
#define TE_PROTO_HEADER_BYTES 12u
#define TE_PROTO_CRC_BYTES 4u
#define TE_PROTO_OVERHEAD (TE_PROTO_HEADER_BYTES + TE_PROTO_CRC_BYTES)

/* Silence (ms) after which a half-received frame is dropped with TE_ERR_TIMEOUT. */
#ifndef TE_PROTO_TIMEOUT_MS
#define TE_PROTO_TIMEOUT_MS 250u
#endif

/* Requests (host -> device); a response carries the request's code | TE_CMD_RESPONSE. */
enum {
    TE_CMD_PING = 0x01,    /* payload echoed back */
    TE_CMD_INFO = 0x02,    /* board, timer, model description */
    TE_CMD_INFER = 0x03,   /* int8 input -> ticks + int8 output */
    TE_CMD_BENCH = 0x04,   /* N runs -> N tick counts */
    TE_CMD_PROFILE = 0x05, /* one run -> per-layer ticks */
    TE_CMD_LAYERS = 0x06,  /* layer names and MACs */
    TE_CMD_RESPONSE = 0x80,
    TE_CMD_ERROR = 0xFF    /* error frame (device -> host) */
};

/* Error codes (first payload byte of an error frame). */
enum {
    TE_ERR_NONE = 0,
    TE_ERR_HEADER = 1,      /* header check mismatch (frame dropped, scanning resumes after its magic) */
    TE_ERR_VERSION = 2,     /* unsupported protocol version */
    TE_ERR_TOO_LONG = 3,    /* declared payload longer than the device's maximum (detail = maximum) */
    TE_ERR_CRC = 4,         /* CRC32 mismatch */
    TE_ERR_TIMEOUT = 5,     /* incomplete frame, silence for TE_PROTO_TIMEOUT_MS */
    TE_ERR_UNKNOWN_CMD = 6, /* command code not implemented */
    TE_ERR_BAD_LENGTH = 7,  /* payload length wrong for the command (detail = expected length) */
    TE_ERR_BAD_ARG = 8,     /* argument out of range (detail = the limit) */
    TE_ERR_MODEL = 9        /* te_model_invoke/te_model_check failed (detail = its return value) */
};

uint32_t te_crc32_update(uint32_t crc, const void *data, size_t n); /* zlib crc32(data, crc) */
uint32_t te_crc32(const void *data, size_t n);

/* ------------------------------------------------------------------ parser */
typedef enum {
    TE_PROTO_NONE = 0,  /* need more bytes */
    TE_PROTO_FRAME = 1, /* a complete, valid frame: see cmd/seq/flags/len/payload */
    TE_PROTO_ERROR = 2  /* a bad frame was dropped: see err/err_detail (and cmd/seq when known) */
} te_proto_event_t;

typedef struct {
    uint8_t *buf; /* payload buffer, capacity `cap` */
    uint32_t cap;
    uint8_t hdr[TE_PROTO_HEADER_BYTES];
    uint8_t crc_bytes[TE_PROTO_CRC_BYTES];
    uint32_t nhdr, npay, ncrc;
    uint32_t crc; /* running CRC over header + payload */
    int state;    /* internal */
    /* the frame (after TE_PROTO_FRAME) or what was known about the dropped one (TE_PROTO_ERROR) */
    uint8_t version, cmd, seq, flags;
    uint32_t len;
    uint8_t err;
    uint32_t err_detail;
    uint32_t dropped; /* bytes discarded while hunting for a magic (statistics) */
} te_proto_parser_t;

void te_proto_init(te_proto_parser_t *p, uint8_t *buf, uint32_t cap);
/* Feed one byte; returns an event. The payload is valid until the next call. */
te_proto_event_t te_proto_feed(te_proto_parser_t *p, uint8_t byte);
/* Non-zero while part of a frame (at least its first magic byte) is held. */
int te_proto_busy(const te_proto_parser_t *p);
/* The line was silent too long: drop a partial frame (TE_PROTO_ERROR/TE_ERR_TIMEOUT) or TE_PROTO_NONE. */
te_proto_event_t te_proto_timeout(te_proto_parser_t *p);

/* ------------------------------------------------------------------ encoder */
typedef void (*te_proto_sink_t)(void *ctx, const uint8_t *data, size_t n);

typedef struct {
    te_proto_sink_t sink;
    void *ctx;
    uint32_t crc;
    uint32_t remaining; /* payload bytes still to write */
} te_proto_writer_t;

/* Start a frame with a payload of exactly `len` bytes, written with te_proto_put* (any split), then
 * te_proto_end(). */
void te_proto_begin(te_proto_writer_t *w, te_proto_sink_t sink, void *ctx, uint8_t cmd, uint8_t seq,
                    uint8_t flags, uint32_t len);
void te_proto_put(te_proto_writer_t *w, const void *data, size_t n); /* clipped to what remains */
void te_proto_put_u8(te_proto_writer_t *w, uint8_t v);
void te_proto_put_u16(te_proto_writer_t *w, uint16_t v);
void te_proto_put_u32(te_proto_writer_t *w, uint32_t v);
void te_proto_put_u64(te_proto_writer_t *w, uint64_t v);
void te_proto_end(te_proto_writer_t *w); /* pads a short payload with zeros, then writes the CRC */
/* A whole frame in one call. */
void te_proto_send(te_proto_sink_t sink, void *ctx, uint8_t cmd, uint8_t seq, const void *payload, uint32_t len);
/* An error frame: payload = code u8, cmd u8, reserved u16 (0), detail u32 (LE), 8 bytes. */
void te_proto_send_error(te_proto_sink_t sink, void *ctx, uint8_t seq, uint8_t code, uint8_t cmd,
                         uint32_t detail);
#define TE_PROTO_ERROR_PAYLOAD 8u

/* Little-endian helpers. */
uint16_t te_get_u16(const uint8_t *p);
uint32_t te_get_u32(const uint8_t *p);
void te_set_u16(uint8_t *p, uint16_t v);
void te_set_u32(uint8_t *p, uint32_t v);

#ifdef __cplusplus
}
#endif
#endif /* TE_PROTOCOL_H */
