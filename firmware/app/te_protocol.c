/* TinyEngine probe wire protocol: CRC32, frame parser and encoder (see te_protocol.h, PROTOCOL.md). */
#include "te_protocol.h"

#include <string.h>

/* CRC-32/ISO-HDLC (zlib, IEEE 802.3; reflected polynomial 0xEDB88320), four bits at a time. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1db71064u, 0x3b6e20c8u, 0x26d930acu, 0x76dc4190u, 0x6b6b51f4u, 0x4db26158u, 0x5005713cu,
    0xedb88320u, 0xf00f9344u, 0xd6d6a3e8u, 0xcb61b38cu, 0x9b64c2b0u, 0x86d3d2d4u, 0xa00ae278u, 0xbdbdf21cu};

uint32_t te_crc32_update(uint32_t crc, const void *data, size_t n)
{
    const uint8_t *p = (const uint8_t *)data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0xFu];
    }
    return ~crc;
}

uint32_t te_crc32(const void *data, size_t n)
{
    return te_crc32_update(0u, data, n);
}

uint16_t te_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

uint32_t te_get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

void te_set_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void te_set_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

/* ------------------------------------------------------------------ parser */
enum { ST_HUNT = 0, ST_HEADER = 1, ST_PAYLOAD = 2, ST_CRC = 3 };

void te_proto_init(te_proto_parser_t *p, uint8_t *buf, uint32_t cap)
{
    memset(p, 0, sizeof *p);
    p->buf = buf;
    p->cap = buf != NULL ? cap : 0u;
    p->state = ST_HUNT;
}

int te_proto_busy(const te_proto_parser_t *p)
{
    return p->state != ST_HUNT;
}

static te_proto_event_t fail(te_proto_parser_t *p, uint8_t code, uint32_t detail)
{
    p->err = code;
    p->err_detail = detail;
    p->state = ST_HUNT;
    p->nhdr = p->npay = p->ncrc = 0u;
    return TE_PROTO_ERROR;
}

/* After a header check failure: the frame may have started later; resume at the next magic inside the
 * 12 header bytes (a trailing lone 0xA5 counts), else hunt. */
static void rescan_header(te_proto_parser_t *p)
{
    for (uint32_t k = 1u; k < TE_PROTO_HEADER_BYTES; k++) {
        if (p->hdr[k] == TE_PROTO_MAGIC0 && (k + 1u == TE_PROTO_HEADER_BYTES || p->hdr[k + 1u] == TE_PROTO_MAGIC1)) {
            const uint32_t keep = TE_PROTO_HEADER_BYTES - k;
            memmove(p->hdr, p->hdr + k, keep);
            p->nhdr = keep;
            p->state = ST_HEADER;
            p->dropped += k;
            return;
        }
    }
    p->dropped += TE_PROTO_HEADER_BYTES;
}

static te_proto_event_t header_done(te_proto_parser_t *p)
{
    const uint8_t *h = p->hdr;
    const uint32_t check = te_crc32(h, 10u) & 0xFFFFu;
    p->cmd = 0u;
    p->seq = 0u;
    p->flags = 0u;
    p->len = 0u;
    if (te_get_u16(h + 10) != check) {
        fail(p, TE_ERR_HEADER, 0u);
        rescan_header(p);
        return TE_PROTO_ERROR;
    }
    p->version = h[2];
    p->cmd = h[3];
    p->seq = h[4];
    p->flags = h[5];
    p->len = te_get_u32(h + 6);
    if (p->version != TE_PROTO_VERSION) {
        return fail(p, TE_ERR_VERSION, TE_PROTO_VERSION);
    }
    if (p->len > p->cap) {
        return fail(p, TE_ERR_TOO_LONG, p->cap);
    }
    p->crc = te_crc32(h, TE_PROTO_HEADER_BYTES);
    p->npay = 0u;
    p->ncrc = 0u;
    p->state = p->len > 0u ? ST_PAYLOAD : ST_CRC;
    return TE_PROTO_NONE;
}

te_proto_event_t te_proto_feed(te_proto_parser_t *p, uint8_t byte)
{
    switch (p->state) {
    case ST_HUNT:
        if (byte == TE_PROTO_MAGIC0) {
            p->hdr[0] = byte;
            p->nhdr = 1u;
            p->state = ST_HEADER;
        } else {
            p->dropped++;
        }
        return TE_PROTO_NONE;
    case ST_HEADER:
        if (p->nhdr == 1u && byte != TE_PROTO_MAGIC1) {
            p->dropped++;
            if (byte != TE_PROTO_MAGIC0) { /* 0xA5 0xA5: the second one may start the frame */
                p->state = ST_HUNT;
                p->nhdr = 0u;
            }
            return TE_PROTO_NONE;
        }
        p->hdr[p->nhdr++] = byte;
        if (p->nhdr < TE_PROTO_HEADER_BYTES) {
            return TE_PROTO_NONE;
        }
        return header_done(p);
    case ST_PAYLOAD:
        if (p->npay < p->cap) { /* always true (len <= cap); keeps the store provably in bounds */
            p->buf[p->npay] = byte;
        }
        p->npay++;
        if (p->npay >= p->len) {
            p->crc = te_crc32_update(p->crc, p->buf, p->len);
            p->state = ST_CRC;
        }
        return TE_PROTO_NONE;
    case ST_CRC:
    default:
        p->crc_bytes[p->ncrc++] = byte;
        if (p->ncrc < TE_PROTO_CRC_BYTES) {
            return TE_PROTO_NONE;
        }
        if (te_get_u32(p->crc_bytes) != p->crc) {
            return fail(p, TE_ERR_CRC, p->len);
        }
        p->state = ST_HUNT;
        p->nhdr = p->npay = p->ncrc = 0u;
        p->err = TE_ERR_NONE;
        return TE_PROTO_FRAME;
    }
}

te_proto_event_t te_proto_timeout(te_proto_parser_t *p)
{
    if (p->state == ST_HUNT) {
        return TE_PROTO_NONE;
    }
    if (p->state == ST_HEADER) {
        p->cmd = 0u;
        p->seq = 0u;
        p->len = 0u;
    }
    return fail(p, TE_ERR_TIMEOUT, p->state == ST_HEADER ? p->nhdr : TE_PROTO_HEADER_BYTES + p->npay + p->ncrc);
}

/* ------------------------------------------------------------------ encoder */
static void emit(te_proto_writer_t *w, const uint8_t *d, size_t n)
{
    w->crc = te_crc32_update(w->crc, d, n);
    w->sink(w->ctx, d, n);
}

void te_proto_begin(te_proto_writer_t *w, te_proto_sink_t sink, void *ctx, uint8_t cmd, uint8_t seq,
                    uint8_t flags, uint32_t len)
{
    uint8_t h[TE_PROTO_HEADER_BYTES];
    h[0] = TE_PROTO_MAGIC0;
    h[1] = TE_PROTO_MAGIC1;
    h[2] = TE_PROTO_VERSION;
    h[3] = cmd;
    h[4] = seq;
    h[5] = flags;
    te_set_u32(h + 6, len);
    te_set_u16(h + 10, (uint16_t)(te_crc32(h, 10u) & 0xFFFFu));
    w->sink = sink;
    w->ctx = ctx;
    w->crc = 0u;
    w->remaining = len;
    emit(w, h, sizeof h);
}

void te_proto_put(te_proto_writer_t *w, const void *data, size_t n)
{
    if (n > w->remaining) {
        n = w->remaining;
    }
    if (n > 0u) {
        emit(w, (const uint8_t *)data, n);
        w->remaining -= (uint32_t)n;
    }
}

void te_proto_put_u8(te_proto_writer_t *w, uint8_t v)
{
    te_proto_put(w, &v, 1u);
}

void te_proto_put_u16(te_proto_writer_t *w, uint16_t v)
{
    uint8_t b[2];
    te_set_u16(b, v);
    te_proto_put(w, b, 2u);
}

void te_proto_put_u32(te_proto_writer_t *w, uint32_t v)
{
    uint8_t b[4];
    te_set_u32(b, v);
    te_proto_put(w, b, 4u);
}

void te_proto_put_u64(te_proto_writer_t *w, uint64_t v)
{
    te_proto_put_u32(w, (uint32_t)v);
    te_proto_put_u32(w, (uint32_t)(v >> 32));
}

void te_proto_end(te_proto_writer_t *w)
{
    static const uint8_t zeros[16] = {0};
    while (w->remaining > 0u) {
        te_proto_put(w, zeros, w->remaining < sizeof zeros ? w->remaining : sizeof zeros);
    }
    uint8_t c[4];
    te_set_u32(c, w->crc);
    w->sink(w->ctx, c, sizeof c);
}

void te_proto_send(te_proto_sink_t sink, void *ctx, uint8_t cmd, uint8_t seq, const void *payload, uint32_t len)
{
    te_proto_writer_t w;
    te_proto_begin(&w, sink, ctx, cmd, seq, 0u, len);
    te_proto_put(&w, payload, len);
    te_proto_end(&w);
}

void te_proto_send_error(te_proto_sink_t sink, void *ctx, uint8_t seq, uint8_t code, uint8_t cmd,
                         uint32_t detail)
{
    uint8_t b[TE_PROTO_ERROR_PAYLOAD];
    b[0] = code;
    b[1] = cmd;
    b[2] = 0u;
    b[3] = 0u;
    te_set_u32(b + 4, detail);
    te_proto_send(sink, ctx, TE_CMD_ERROR, seq, b, sizeof b);
}
