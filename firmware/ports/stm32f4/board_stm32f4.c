/*
 * Board layer for STM32F4 (board.h): clocks to full speed, the serial link's USART polled, DWT timing
 * (te_timing.c). Register-level, no vendor HAL; addresses and bits from ST's CMSIS device headers
 * (stm32f405xx.h, stm32f412zx.h) as listed in the board-ports note.
 *
 * Clock: HSE (crystal or the ST-LINK's 8 MHz in bypass) -> PLL -> SYSCLK, flash wait states + ART
 * (prefetch, I/D cache) set and read back before the switch, APB prescalers within their limits.
 * Every ready-bit wait is bounded (te_port_wait): when HSE does not start the PLL runs from HSI; when
 * the PLL does not lock, the flash latency does not read back or the switch is not confirmed, the
 * core stays on HSI 16 MHz. INFO reports the clock reached and the waits that timed out. QEMU's
 * netduinoplus2 leaves RCC/FLASH/GPIO unimplemented (read 0): there HSERDY and PLLRDY time out and
 * the USART runs with the HSI divisor (QEMU ignores the baud rate).
 */
#include "board.h"
#include "stm32_gpio.h"
#include "stm32_rcc_usart.h"
#include "stm32f4_boards.h"
#include "te_mmio.h"
#include "te_port.h"

#define RCC_BASE 0x40023800u
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_APB1ENR (RCC_BASE + 0x40u)
#define CR_PLLON (1u << 24)
#define APB1ENR_PWREN (1u << 28)

#define PWR_CR 0x40007000u
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)


#define USART_SR (F4_USART_BASE + 0x00u)
#define USART_DR (F4_USART_BASE + 0x04u)
#define USART_BRR (F4_USART_BASE + 0x08u)
#define USART_CR1 (F4_USART_BASE + 0x0Cu)
#define SR_ORE (1u << 3)
#define SR_RXNE (1u << 5)
#define SR_TXE (1u << 7)
#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_UE (1u << 13)

#define HSI_HZ 16000000u

static int s_tx_dead;
static uint32_t s_pclk1 = HSI_HZ, s_pclk2 = HSI_HZ;

static void stay_on_hsi(const char *how)
{
    TE_CLR(RCC_CR, CR_PLLON);
    te_port_set_clock(HSI_HZ, how);
}

static void clock_init(void)
{
    TE_SET(RCC_APB1ENR, APB1ENR_PWREN);
    (void)TE_RD(RCC_APB1ENR); /* the enable takes effect before the PWR access */
    TE_FIELD(PWR_CR, 3u << 14, F4_VOS_BITS);

    int hse;
    if (!stm32f47_start_pll(F4_HSE_HZ, F4_HSE_BYPASS, HSI_HZ, F4_PLL_M, F4_PLL_N, F4_PLL_P, F4_PLL_Q, &hse)) {
        stay_on_hsi("HSI (PLL not locked)");
        return;
    }
    /* wait states and the ART accelerator before the clock goes up, read back; then the switch */
    const char *failed = stm32f47_switch_to_pll(F4_FLASH_WS | ACR_PRFTEN | ACR_ICEN | ACR_DCEN, F4_APB1_DIV,
                                                F4_APB2_DIV);
    if (failed != NULL) {
        stay_on_hsi(failed);
        return;
    }
    s_pclk1 = F4_SYSCLK_HZ / F4_APB1_DIV;
    s_pclk2 = F4_SYSCLK_HZ / F4_APB2_DIV;
    te_port_set_clock(F4_SYSCLK_HZ, hse ? "PLL from HSE" : "PLL from HSI (HSE did not start)");
}

static void usart_init(void)
{
    stm32f47_usart_pins(F4_TX_PORT, F4_TX_PIN, F4_RX_PORT, F4_RX_PIN, F4_AF, F4_USART_ON_APB2, F4_USART_EN_BIT);
    stm32_usart_start(USART_CR1, USART_BRR, te_port_brr(F4_USART_ON_APB2 ? s_pclk2 : s_pclk1, TE_BAUD),
                      CR1_UE | CR1_TE | CR1_RE);
}

void board_init(void)
{
    if (!te_port_first_init()) {
        return;
    }
    clock_init();
    usart_init();
}

void board_write(const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!s_tx_dead && !te_port_wait(USART_SR, SR_TXE, SR_TXE, "TXE")) {
            s_tx_dead = 1; /* the transmitter is not running: stop waiting for it */
        }
        TE_WR(USART_DR, data[i]);
    }
}

int board_try_getc(void)
{
    const uint32_t sr = TE_RD(USART_SR);
    if (sr & SR_ORE) {
        te_port_count_overrun(); /* a byte was lost; the SR-then-DR read below clears the flag */
    }
    if (sr & (SR_RXNE | SR_ORE)) {
        const uint32_t d = TE_RD(USART_DR);
        if (sr & SR_RXNE) {
            return (int)(d & 0xFFu);
        }
    }
    return TE_BOARD_NONE;
}
