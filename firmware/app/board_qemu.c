/* Board layer for QEMU's MPS2 images (mps2-an385/an386/an500): CMSDK UART0 polled, te_timing clock. */
#include "board.h"
#include "te_timing.h"
#include "uart.h"

void board_init(void)
{
    uart_init(); /* startup.c already did; harmless to repeat */
}

void board_write(const uint8_t *data, size_t n)
{
    uart_write(data, n);
}

int board_try_getc(void)
{
    const int c = uart_try_getc();
    return c < 0 ? TE_BOARD_NONE : c;
}

uint32_t board_now_ms(void)
{
    return te_time_ms();
}
