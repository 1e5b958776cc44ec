/*
 * Board layer for STM32F7 (board.h): STM32F746G-DISCO (USART1, PA9/PB7 AF7, 25 MHz crystal) and
 * NUCLEO-F767ZI (USART3, PD8/PD9 AF7, 8 MHz ST-LINK MCO in bypass). 216 MHz: PWR scale 1, PLL,
 * over-drive (ODEN then ODSWEN, each waited for), 7 flash wait states + ART + prefetch read back,
 * APB1 /4 and APB2 /2, then the switch. I- and D-cache on. USART in the F7 register layout
 * (CR1/BRR/ISR/ICR/RDR/TDR), polled; kernel clock = its APB clock (RCC_DCKCFGR2 at reset).
 * Every wait is bounded; the clock reached and the waits that timed out are in INFO (te_port.c).
 * Addresses/bits: ST CMSIS stm32f746xx.h / stm32f767xx.h (board-ports note); the over-drive and
 * PWR_CSR1 bit positions are [unverified: RM0385 5.4]. Not run on silicon.
 */
#include "board.h"
#include "cortexm7_cache.h"
#include "stm32_gpio.h"
#include "te_mmio.h"
#include "te_port.h"

#if defined(TE_PORT_BOARD_STM32F746G_DISCO)
#define F7_USART_BASE 0x40011000u /* USART1 on APB2 */
#define F7_USART_ON_APB2 1
#define F7_USART_EN_BIT (1u << 4) /* RCC_APB2ENR.USART1EN */
#define F7_TX_PORT 0u             /* PA9 */
#define F7_TX_PIN 9u
#define F7_RX_PORT 1u /* PB7 */
#define F7_RX_PIN 7u
#define F7_HSE_HZ 25000000u
#define F7_HSE_BYPASS 0
#define F7_PLL_M 25u
#elif defined(TE_PORT_BOARD_NUCLEO_F767ZI)
#define F7_USART_BASE 0x40004800u /* USART3 on APB1 */
#define F7_USART_ON_APB2 0
#define F7_USART_EN_BIT (1u << 18) /* RCC_APB1ENR.USART3EN */
#define F7_TX_PORT 3u              /* PD8 */
#define F7_TX_PIN 8u
#define F7_RX_PORT 3u /* PD9 */
#define F7_RX_PIN 9u
#define F7_HSE_HZ 8000000u
#define F7_HSE_BYPASS 1
#define F7_PLL_M 8u
#else
#error "stm32f7 port: no board selected (-DTE_PORT_BOARD_STM32F746G_DISCO or -DTE_PORT_BOARD_NUCLEO_F767ZI)"
#endif
#define F7_AF 7u
#define F7_PLL_N 432u /* 1 MHz VCO input, VCO 432 MHz */
#define F7_PLL_P 2u
#define F7_PLL_Q 9u
#define F7_SYSCLK_HZ 216000000u
#define F7_FLASH_WS 7u
#define F7_APB1_DIV 4u /* 54 MHz */
#define F7_APB2_DIV 2u /* 108 MHz */

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
#define CFGR_PRE_MASK ((0xFu << 4) | (7u << 10) | (7u << 13))
#define APB1ENR_PWREN (1u << 28)

#define PWR_CR1 0x40007000u
#define PWR_CSR1 0x40007004u
#define CR1_VOS_SCALE1 (3u << 14)
#define CR1_ODEN (1u << 16)
#define CR1_ODSWEN (1u << 17)
#define CSR1_ODRDY (1u << 16)
#define CSR1_ODSWRDY (1u << 17)

#define FLASH_ACR 0x40023C00u
#define ACR_PRFTEN (1u << 8)
#define ACR_ARTEN (1u << 9)

#define GPIO_BASE(port) (0x40020000u + 0x400u * (port))

#define USART_CR1 (F7_USART_BASE + 0x00u)
#define USART_BRR (F7_USART_BASE + 0x0Cu)
#define USART_ISR (F7_USART_BASE + 0x1Cu)
#define USART_ICR (F7_USART_BASE + 0x20u)
#define USART_RDR (F7_USART_BASE + 0x24u)
#define USART_TDR (F7_USART_BASE + 0x28u)
#define UCR1_UE (1u << 0)
#define UCR1_RE (1u << 2)
#define UCR1_TE (1u << 3)
#define ISR_ORE (1u << 3)
#define ISR_RXNE (1u << 5)
#define ISR_TXE (1u << 7)
#define ICR_ORECF (1u << 3)

#define HSI_HZ 16000000u

static int s_ready, s_tx_dead;
static uint32_t s_pclk1 = HSI_HZ, s_pclk2 = HSI_HZ;

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
    (void)TE_RD(RCC_APB1ENR);
    TE_FIELD(PWR_CR1, 3u << 14, CR1_VOS_SCALE1);

    int hse = 0;
    if (F7_HSE_BYPASS) {
        TE_SET(RCC_CR, CR_HSEBYP);
    }
    TE_SET(RCC_CR, CR_HSEON);
    hse = te_port_wait(RCC_CR, CR_HSERDY, CR_HSERDY, "HSERDY");
    if (!hse) {
        TE_CLR(RCC_CR, CR_HSEON | CR_HSEBYP);
    }
    const uint32_t m = hse ? F7_PLL_M : HSI_HZ / (F7_HSE_HZ / F7_PLL_M);
    TE_WR(RCC_PLLCFGR, m | (F7_PLL_N << 6) | ((F7_PLL_P / 2u - 1u) << 16) | (hse ? PLLCFGR_SRC_HSE : 0u) |
                           (F7_PLL_Q << 24));
    TE_SET(RCC_CR, CR_PLLON);
    if (!te_port_wait(RCC_CR, CR_PLLRDY, CR_PLLRDY, "PLLRDY")) {
        stay_on_hsi("HSI (PLL not locked)");
        return;
    }
    /* over-drive: above 180 MHz */
    TE_SET(PWR_CR1, CR1_ODEN);
    if (!te_port_wait(PWR_CSR1, CSR1_ODRDY, CSR1_ODRDY, "ODRDY")) {
        stay_on_hsi("HSI (over-drive not ready)");
        return;
    }
    TE_SET(PWR_CR1, CR1_ODSWEN);
    if (!te_port_wait(PWR_CSR1, CSR1_ODSWRDY, CSR1_ODSWRDY, "ODSWRDY")) {
        stay_on_hsi("HSI (over-drive switch not ready)");
        return;
    }
    TE_WR(FLASH_ACR, F7_FLASH_WS | ACR_PRFTEN | ACR_ARTEN);
    if ((TE_RD(FLASH_ACR) & 0xFu) != F7_FLASH_WS) {
        te_port_note("FLASH_ACR");
        stay_on_hsi("HSI (flash latency not accepted)");
        return;
    }
    TE_FIELD(RCC_CFGR, CFGR_PRE_MASK, (ppre(F7_APB1_DIV) << 10) | (ppre(F7_APB2_DIV) << 13));
    TE_FIELD(RCC_CFGR, CFGR_SW_MASK, CFGR_SW_PLL);
    if (!te_port_wait(RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL, "SWS")) {
        TE_FIELD(RCC_CFGR, CFGR_SW_MASK | CFGR_PRE_MASK, 0u);
        stay_on_hsi("HSI (switch to PLL not confirmed)");
        return;
    }
    s_pclk1 = F7_SYSCLK_HZ / F7_APB1_DIV;
    s_pclk2 = F7_SYSCLK_HZ / F7_APB2_DIV;
    te_port_set_clock(F7_SYSCLK_HZ, hse ? "PLL from HSE, over-drive" : "PLL from HSI (HSE did not start)");
}

static void usart_init(void)
{
    TE_SET(RCC_AHB1ENR, (1u << F7_TX_PORT) | (1u << F7_RX_PORT));
    (void)TE_RD(RCC_AHB1ENR);
    stm32_gpio_af(GPIO_BASE(F7_TX_PORT), F7_TX_PIN, F7_AF, 0);
    stm32_gpio_af(GPIO_BASE(F7_RX_PORT), F7_RX_PIN, F7_AF, 1);
    const uint32_t en = F7_USART_ON_APB2 ? RCC_APB2ENR : RCC_APB1ENR;
    TE_SET(en, F7_USART_EN_BIT);
    (void)TE_RD(en);
    TE_WR(USART_CR1, 0u);
    TE_WR(USART_BRR, te_port_brr(F7_USART_ON_APB2 ? s_pclk2 : s_pclk1, TE_BAUD));
    TE_WR(USART_CR1, UCR1_UE | UCR1_TE | UCR1_RE);
}

void board_init(void)
{
    if (s_ready) {
        return;
    }
    s_ready = 1;
    cortexm7_caches_on();
    clock_init();
    usart_init();
}

void board_write(const uint8_t *data, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (!s_tx_dead && !te_port_wait(USART_ISR, ISR_TXE, ISR_TXE, "TXE")) {
            s_tx_dead = 1;
        }
        TE_WR(USART_TDR, data[i]);
    }
}

int board_try_getc(void)
{
    const uint32_t isr = TE_RD(USART_ISR);
    if (isr & ISR_ORE) { /* reception stops until ORE is cleared */
        te_port_count_overrun();
        TE_WR(USART_ICR, ICR_ORECF);
    }
    if (isr & ISR_RXNE) {
        return (int)(TE_RD(USART_RDR) & 0xFFu);
    }
    return TE_BOARD_NONE;
}
