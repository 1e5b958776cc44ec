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
#include "stm32f4_boards.h"
#include "te_mmio.h"
#include "te_port.h"

#define RCC_BASE 0x40023800u
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_PLLCFGR (RCC_BASE + 0x04u)
#define RCC_CFGR (RCC_BASE + 0x08u)
#define RCC_AHB1ENR (RCC_BASE + 0x30u)
#define RCC_APB1ENR (RCC_BASE + 0x40u)
#define RCC_APB2ENR (RCC_BASE + 0x44u)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLLON (1u << 24)
#define CR_PLLRDY (1u << 25)
#define PLLCFGR_SRC_HSE (1u << 22)
#define CFGR_SW_MASK 3u
#define CFGR_SW_PLL 2u
#define CFGR_SWS_MASK (3u << 2)
#define CFGR_SWS_PLL (2u << 2)
#define CFGR_PRE_MASK ((0xFu << 4) | (7u << 10) | (7u << 13)) /* HPRE, PPRE1, PPRE2 */
#define APB1ENR_PWREN (1u << 28)

#define PWR_CR 0x40007000u
#define FLASH_ACR 0x40023C00u
#define ACR_LATENCY_MASK 0xFu
#define ACR_PRFTEN (1u << 8)
#define ACR_ICEN (1u << 9)
#define ACR_DCEN (1u << 10)

#define GPIO_BASE(port) (0x40020000u + 0x400u * (port))

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

static int s_ready;
static int s_tx_dead;
static uint32_t s_pclk1 = HSI_HZ, s_pclk2 = HSI_HZ;

/* PPRE code for an APB divisor (1, 2, 4, 8, 16). */
static uint32_t ppre(uint32_t div)
{
    return div <= 1u ? 0u : div == 2u ? 4u : div == 4u ? 5u : div == 8u ? 6u : 7u;
}

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

    int hse = 0;
    if (F4_HSE_HZ != 0u) {
        if (F4_HSE_BYPASS) {
            TE_SET(RCC_CR, CR_HSEBYP);
        }
        TE_SET(RCC_CR, CR_HSEON);
        hse = te_port_wait(RCC_CR, CR_HSERDY, CR_HSERDY, "HSERDY");
        if (!hse) {
            TE_CLR(RCC_CR, CR_HSEON | CR_HSEBYP);
        }
    }
    /* the same 1 MHz-class VCO input from either source */
    const uint32_t vco_in = F4_HSE_HZ / F4_PLL_M;
    const uint32_t m = hse ? F4_PLL_M : HSI_HZ / vco_in;
    TE_WR(RCC_PLLCFGR, m | (F4_PLL_N << 6) | ((F4_PLL_P / 2u - 1u) << 16) | (hse ? PLLCFGR_SRC_HSE : 0u) |
                           (F4_PLL_Q << 24));
    TE_SET(RCC_CR, CR_PLLON);
    if (!te_port_wait(RCC_CR, CR_PLLRDY, CR_PLLRDY, "PLLRDY")) {
        stay_on_hsi("HSI (PLL not locked)");
        return;
    }
    /* wait states and the ART accelerator before the clock goes up, read back */
    TE_WR(FLASH_ACR, F4_FLASH_WS | ACR_PRFTEN | ACR_ICEN | ACR_DCEN);
    if ((TE_RD(FLASH_ACR) & ACR_LATENCY_MASK) != F4_FLASH_WS) {
        te_port_note("FLASH_ACR");
        stay_on_hsi("HSI (flash latency not accepted)");
        return;
    }
    TE_FIELD(RCC_CFGR, CFGR_PRE_MASK, (ppre(F4_APB1_DIV) << 10) | (ppre(F4_APB2_DIV) << 13));
    TE_FIELD(RCC_CFGR, CFGR_SW_MASK, CFGR_SW_PLL);
    if (!te_port_wait(RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL, "SWS")) {
        TE_FIELD(RCC_CFGR, CFGR_SW_MASK | CFGR_PRE_MASK, 0u);
        stay_on_hsi("HSI (switch to PLL not confirmed)");
        return;
    }
    s_pclk1 = F4_SYSCLK_HZ / F4_APB1_DIV;
    s_pclk2 = F4_SYSCLK_HZ / F4_APB2_DIV;
    te_port_set_clock(F4_SYSCLK_HZ, hse ? "PLL from HSE" : "PLL from HSI (HSE did not start)");
}

static void usart_init(void)
{
    TE_SET(RCC_AHB1ENR, (1u << F4_TX_PORT) | (1u << F4_RX_PORT));
    (void)TE_RD(RCC_AHB1ENR);
    stm32_gpio_af(GPIO_BASE(F4_TX_PORT), F4_TX_PIN, F4_AF, 0);
    stm32_gpio_af(GPIO_BASE(F4_RX_PORT), F4_RX_PIN, F4_AF, 1);

    const uint32_t en = F4_USART_ON_APB2 ? RCC_APB2ENR : RCC_APB1ENR;
    TE_SET(en, F4_USART_EN_BIT);
    (void)TE_RD(en);
    TE_WR(USART_CR1, 0u);
    TE_WR(USART_BRR, te_port_brr(F4_USART_ON_APB2 ? s_pclk2 : s_pclk1, TE_BAUD));
    TE_WR(USART_CR1, CR1_UE | CR1_TE | CR1_RE); /* 8N1, oversampling 16 */
}

void board_init(void)
{
    if (s_ready) {
        return;
    }
    s_ready = 1;
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
