/*
 * Host board for the probe firmware (firmware/app/main.c): the serial port is stdin/stdout, so the
 * protocol parser, the dispatcher and the model can run on the host under AddressSanitizer/UBSan and be
 * fed a fuzzed byte stream (tests/test_protocol.py). End of input = the line went silent: a half
 * frame gets its TE_ERR_TIMEOUT error frame and the program exits with 0.
 *
 *   gcc -std=c99 -DTE_TIMING_HOST -DTE_HOOKS_HEADER='"te_hooks.h"' -Ifirmware/app -I<project>/src \
 *       firmware/app/{main,te_protocol,te_timing}.c firmware/test/protocol_host.c <project>/src/(all .c)
 */
#define _POSIX_C_SOURCE 200809L
#include <stdio.h>
#include <unistd.h>

#include "board.h"
#include "te_timing.h"

void board_init(void)
{
}

void board_write(const uint8_t *data, size_t n)
{
    while (n > 0u) {
        const ssize_t k = write(1, data, n);
        if (k <= 0) {
            return;
        }
        data += k;
        n -= (size_t)k;
    }
}

int board_try_getc(void)
{
    static unsigned char buf[4096];
    static size_t have, pos;
    if (pos == have) {
        const ssize_t k = read(0, buf, sizeof buf);
        if (k <= 0) {
            return TE_BOARD_CLOSED;
        }
        have = (size_t)k;
        pos = 0u;
    }
    return buf[pos++];
}

uint32_t board_now_ms(void)
{
    return te_time_ms();
}
