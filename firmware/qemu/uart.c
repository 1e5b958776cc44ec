#include "uart.h"

#define UART_DATA (*(volatile uint32_t *)(UART0_BASE + 0x00u))
#define UART_STATE (*(volatile uint32_t *)(UART0_BASE + 0x04u)) /* bit 0: TX full, bit 1: RX full */
#define UART_CTRL (*(volatile uint32_t *)(UART0_BASE + 0x08u))  /* bit 0: TX enable, bit 1: RX enable */
#define UART_BAUDDIV (*(volatile uint32_t *)(UART0_BASE + 0x10u))

void uart_init(void)
{
    UART_BAUDDIV = 16u;
    UART_CTRL = 3u;
}

void uart_putc(char c)
{
    while (UART_STATE & 1u) {
    }
    UART_DATA = (uint32_t)(unsigned char)c;
}

void uart_write(const void *buf, size_t n)
{
    const unsigned char *p = (const unsigned char *)buf;
    for (size_t i = 0; i < n; i++) {
        uart_putc((char)p[i]);
    }
}

void uart_puts(const char *s)
{
    while (*s != '\0') {
        uart_putc(*s++);
    }
}

static const char hex_digits[] = "0123456789abcdef";

void uart_put_hex32(uint32_t v)
{
    for (int i = 28; i >= 0; i -= 4) {
        uart_putc(hex_digits[(v >> i) & 0xFu]);
    }
}

void uart_put_hex8(uint8_t v)
{
    uart_putc(hex_digits[v >> 4]);
    uart_putc(hex_digits[v & 0xFu]);
}

void uart_put_u64(uint64_t v)
{
    char buf[21];
    int n = 0;
    do {
        buf[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v != 0u);
    while (n > 0) {
        uart_putc(buf[--n]);
    }
}

void uart_put_u32(uint32_t v)
{
    uart_put_u64(v);
}

void uart_put_i32(int32_t v)
{
    if (v < 0) {
        uart_putc('-');
        uart_put_u32(0u - (uint32_t)v);
    } else {
        uart_put_u32((uint32_t)v);
    }
}

int uart_getc(void)
{
    while ((UART_STATE & 2u) == 0u) {
    }
    return (int)(UART_DATA & 0xFFu);
}

int uart_try_getc(void)
{
    if ((UART_STATE & 2u) == 0u) {
        return -1;
    }
    return (int)(UART_DATA & 0xFFu);
}
