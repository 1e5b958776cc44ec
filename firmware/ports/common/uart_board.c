/*
 * firmware/qemu/uart.h on top of a board port's board.h, so that the generic startup code
 * (firmware/qemu/startup.c: uart_init() before main, fault reports) talks through the board's own
 * UART. Replaces firmware/qemu/uart.c (the MPS2 CMSDK UART) in port builds.
 */
#include "board.h"
#include "uart.h"

void uart_init(void)
{
    board_init(); /* the port makes a second call a no-op */
}

void uart_putc(char c)
{
    const uint8_t b = (uint8_t)c;
    board_write(&b, 1u);
}

void uart_write(const void *buf, size_t n)
{
    board_write((const uint8_t *)buf, n);
}

void uart_puts(const char *s)
{
    while (*s != '\0') {
        uart_putc(*s++);
    }
}

static void put_digits(uint64_t v, int base, int min_digits)
{
    static const char digits[] = "0123456789abcdef";
    char buf[20];
    int n = 0;
    do {
        buf[n++] = digits[v % (uint64_t)base];
        v /= (uint64_t)base;
    } while (v != 0u || n < min_digits);
    while (n > 0) {
        uart_putc(buf[--n]);
    }
}

void uart_put_hex32(uint32_t v)
{
    put_digits(v, 16, 8);
}

void uart_put_hex8(uint8_t v)
{
    put_digits(v, 16, 2);
}

void uart_put_u32(uint32_t v)
{
    put_digits(v, 10, 1);
}

void uart_put_u64(uint64_t v)
{
    put_digits(v, 10, 1);
}

void uart_put_i32(int32_t v)
{
    if (v < 0) {
        uart_putc('-');
        put_digits(0u - (uint32_t)v, 10, 1);
    } else {
        put_digits((uint32_t)v, 10, 1);
    }
}

int uart_try_getc(void)
{
    const int c = board_try_getc();
    return c < 0 ? -1 : c;
}

int uart_getc(void)
{
    int c;
    while ((c = board_try_getc()) < 0) {
    }
    return c;
}
