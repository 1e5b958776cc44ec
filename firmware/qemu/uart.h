/*
 * ARM CMSDK APB UART0 of the MPS2 FPGA images (AN385/AN386/AN500) at 0x40004000; under
 * `qemu-system-arm -nographic` (or -serial ...) it is the board's serial port. Polled, no IRQs.
 * Small formatting helpers instead of printf keep the firmware free of newlib's stdio.
 */
#ifndef UART_H
#define UART_H

#include <stddef.h>
#include <stdint.h>

#ifndef UART0_BASE
#define UART0_BASE 0x40004000u
#endif

void uart_init(void);                       /* TX and RX enabled, BAUDDIV 16 */
void uart_putc(char c);                     /* blocking; '\n' is sent as is */
void uart_write(const void *buf, size_t n); /* raw bytes */
void uart_puts(const char *s);              /* no newline added */
void uart_put_hex32(uint32_t v);            /* 8 lowercase hex digits */
void uart_put_hex8(uint8_t v);              /* 2 lowercase hex digits */
void uart_put_u32(uint32_t v);              /* decimal */
void uart_put_i32(int32_t v);               /* decimal, with '-' */
void uart_put_u64(uint64_t v);              /* decimal */
int uart_getc(void);                        /* blocking read of one byte (0..255) */
int uart_try_getc(void);                    /* one byte, or -1 if none is waiting */

#endif /* UART_H */
