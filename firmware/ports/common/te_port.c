/* Bounded waits, the clock reached and the status line every board port reports (te_port.h). */
#include "te_port.h"

#include <stddef.h>

#include "board.h"
#include "te_mmio.h"
#include "te_timing.h"

#define STATUS_BYTES 160u
#define MAX_NOTES 8u

static uint32_t s_clock_hz = TE_CLOCK_HZ;
static const char *s_how = "reset clock";
static const char *s_notes[MAX_NOTES];
static uint32_t s_nnotes;
static uint32_t s_overruns;
static char s_status[STATUS_BYTES];

void te_port_note(const char *what)
{
    for (uint32_t i = 0; i < s_nnotes; i++) {
        if (s_notes[i] == what) {
            return;
        }
    }
    if (s_nnotes < MAX_NOTES) {
        s_notes[s_nnotes++] = what;
    }
}

int te_port_wait(uint32_t reg, uint32_t mask, uint32_t want, const char *what)
{
    for (uint32_t i = 0; i < TE_PORT_WAIT_POLLS; i++) {
        if ((TE_RD(reg) & mask) == want) {
            return 1;
        }
    }
    te_port_note(what);
    return 0;
}

void te_port_set_clock(uint32_t hz, const char *how)
{
    s_clock_hz = hz;
    s_how = how;
}

uint32_t te_port_clock_hz(void)
{
    return s_clock_hz;
}

void te_port_count_overrun(void)
{
    s_overruns++;
}

uint32_t te_port_overruns(void)
{
    return s_overruns;
}

uint32_t te_port_brr(uint32_t f_ker_hz, uint32_t baud)
{
    return (f_ker_hz + baud / 2u) / baud;
}

/* Small formatting without stdio. */
static size_t put_str(char *buf, size_t at, const char *s)
{
    while (*s != '\0' && at + 1u < STATUS_BYTES) {
        buf[at++] = *s++;
    }
    buf[at] = '\0';
    return at;
}

static size_t put_u32(char *buf, size_t at, uint32_t v)
{
    char tmp[10];
    size_t n = 0u;
    do {
        tmp[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0u && at + 1u < STATUS_BYTES) {
        buf[at++] = tmp[--n];
    }
    buf[at] = '\0';
    return at;
}

const char *te_port_status(void)
{
    size_t at = put_u32(s_status, 0u, s_clock_hz);
    at = put_str(s_status, at, " Hz ");
    at = put_str(s_status, at, s_how);
    at = put_str(s_status, at, ", ");
    at = put_u32(s_status, at, TE_BAUD);
    at = put_str(s_status, at, " Bd");
    if (s_nnotes == 0u) {
        at = put_str(s_status, at, "; all ready waits ok");
    } else {
        at = put_str(s_status, at, "; timed out: ");
        for (uint32_t i = 0; i < s_nnotes; i++) {
            at = put_str(s_status, at, i ? "," : "");
            at = put_str(s_status, at, s_notes[i]);
        }
    }
    if (s_overruns != 0u) {
        at = put_str(s_status, at, "; rx overruns ");
        (void)put_u32(s_status, at, s_overruns);
    }
    return s_status;
}

/* The hooks the application and the timer ask (weak defaults elsewhere for the MPS2/host builds). */
uint32_t te_core_clock_hz(void)
{
    return s_clock_hz;
}

const char *te_board_status(void)
{
    return te_port_status();
}

uint32_t board_now_ms(void)
{
    return te_time_ms();
}

int te_port_first_init(void)
{
    static int done;
    if (done) {
        return 0;
    }
    done = 1;
    return 1;
}
