/*
 * What every board port shares: bounded waits on ready bits (a wait that expires is recorded, never a
 * hang: QEMU's STM32 models leave RCC/FLASH/GPIO unimplemented, reading 0), the clock the port
 * actually reached, and a one-line status for INFO ("168000000 Hz PLL(HSE 25 MHz); timed out: ...").
 *
 * A port implements board.h (board_init/board_write/board_try_getc/board_now_ms) and calls
 * te_port_set_clock() once its clock tree is settled. te_core_clock_hz() (te_timing.h) and
 * te_board_status() (board.h) are then answered from here.
 */
#ifndef TE_PORT_H
#define TE_PORT_H

#include <stdint.h>

#ifndef TE_BAUD
#define TE_BAUD 115200u /* the probe's default; -DTE_BAUD=N for a faster link where the board allows */
#endif
#ifndef TE_PORT_WAIT_POLLS
#define TE_PORT_WAIT_POLLS 200000u /* ~100 ms at 16 MHz: longer than any oscillator or PLL start-up */
#endif

/* Poll until (reg & mask) == want, at most TE_PORT_WAIT_POLLS reads; on expiry record `what` and
 * return 0. */
/* 1 on the first call, 0 after: board_init() sets the board up once, however often it is called. */
int te_port_first_init(void);
int te_port_wait(uint32_t reg, uint32_t mask, uint32_t want, const char *what);
/* Record a failed check that is not a wait (e.g. a flash latency that did not read back). */
void te_port_note(const char *what);
/* The core clock reached and how ("PLL from HSE 25 MHz", "HSI (PLL not locked)", ...). */
void te_port_set_clock(uint32_t hz, const char *how);
uint32_t te_port_clock_hz(void);
/* Count a receive overrun / lost byte reported by the UART (shown in the status). */
void te_port_count_overrun(void);
uint32_t te_port_overruns(void);
const char *te_port_status(void);
/* Round-to-nearest divisor for an oversampling-by-16 UART: BRR = f_ker / baud. */
uint32_t te_port_brr(uint32_t f_ker_hz, uint32_t baud);

#endif /* TE_PORT_H */
