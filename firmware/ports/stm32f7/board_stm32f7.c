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
#include "stm32_rcc_usart.h"
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
#define RCC_APB1ENR (RCC_BASE + 0x40u)
#define RCC_APB2ENR (RCC_BASE + 0x44u)
#define CR_PLLON (1u << 24)
#define APB1ENR_PWREN (1u << 28)

#define PWR_CR1 0x40007000u
#define PWR_CSR1 0x40007004u
#define CR1_VOS_SCALE1 (3u << 14)
#define CR1_ODEN (1u << 16)
#define CR1_ODSWEN (1u << 17)
#define CSR1_ODRDY (1u << 16)
#define CSR1_ODSWRDY (1u << 17)

#define ACR_PRFTEN (1u << 8)
#define ACR_ARTEN (1u << 9)


#define USART_CR1 (F7_USART_BASE + 0x00u)
#define USART_BRR (F7_USART_BASE + 0x0Cu)
#define UCR1_UE (1u << 0)
#define UCR1_RE (1u << 2)
#define UCR1_TE (1u << 3)

#define HSI_HZ 16000000u

static uint32_t s_pclk1 = HSI_HZ, s_pclk2 = HSI_HZ;

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

    int hse;
    if (!stm32f47_start_pll(F7_HSE_HZ, F7_HSE_BYPASS, HSI_HZ, F7_PLL_M, F7_PLL_N, F7_PLL_P, F7_PLL_Q, &hse)) {
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
    const char *failed = stm32f47_switch_to_pll(F7_FLASH_WS | ACR_PRFTEN | ACR_ARTEN, F7_APB1_DIV, F7_APB2_DIV);
    if (failed != NULL) {
        stay_on_hsi(failed);
        return;
    }
    s_pclk1 = F7_SYSCLK_HZ / F7_APB1_DIV;
    s_pclk2 = F7_SYSCLK_HZ / F7_APB2_DIV;
    te_port_set_clock(F7_SYSCLK_HZ, hse ? "PLL from HSE, over-drive" : "PLL from HSI (HSE did not start)");
}

static void usart_init(void)
{
    stm32f47_usart_pins(F7_TX_PORT, F7_TX_PIN, F7_RX_PORT, F7_RX_PIN, F7_AF, F7_USART_ON_APB2, F7_USART_EN_BIT);
    stm32_usart_start(USART_CR1, USART_BRR, te_port_brr(F7_USART_ON_APB2 ? s_pclk2 : s_pclk1, TE_BAUD),
                      UCR1_UE | UCR1_TE | UCR1_RE);
}

void board_init(void)
{
    cortexm7_board_init(clock_init, usart_init);
}

STM32_USART2_BOARD_IO(F7_USART_BASE)
