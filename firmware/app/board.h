/*
 * The board abstraction the probe application (main.c) needs: a byte-oriented serial port and a clock
 * in milliseconds for the protocol's timeouts. One implementation per board family:
 *   board_qemu.c            QEMU MPS2 (AN385/AN386/AN500): CMSDK UART0, polled (firmware/qemu/uart.c)
 *   firmware/ports/<family>/ real MCUs (STM32F4/F7/H7, nRF52840): clocks, the debugger's VCP UART,
 *                           register level (firmware/ports/README.md)
 *   firmware/test/protocol_host.c   host build: stdin/stdout, for sanitiser and fuzz tests
 * Board identity comes from -D defines (the build takes them from boards/<name>.json).
 */
#ifndef TE_BOARD_H
#define TE_BOARD_H

#include <stddef.h>
#include <stdint.h>

#ifndef TE_BOARD_NAME
#define TE_BOARD_NAME "unknown"
#endif
#ifndef TE_CORE
#define TE_CORE "cortex-m"
#endif

#define TE_BOARD_NONE (-1)   /* board_try_getc: no byte waiting */
#define TE_BOARD_CLOSED (-2) /* board_try_getc: input ended for good (host builds only) */

void board_init(void);                          /* serial port up (clocks, pins, baud rate) */
void board_write(const uint8_t *data, size_t n); /* blocking transmit */
int board_try_getc(void);                       /* 0..255, TE_BOARD_NONE or TE_BOARD_CLOSED */
uint32_t board_now_ms(void);                    /* free-running milliseconds (may wrap) */
/* Optional: one line for INFO (clock reached, ready waits that timed out); main.c has a weak "" default. */
const char *te_board_status(void);

#endif /* TE_BOARD_H */
