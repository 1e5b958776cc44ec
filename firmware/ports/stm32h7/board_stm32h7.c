/*
 * Board layer for STM32H743 (board.h), NUCLEO-H743ZI: USART3 on PD8/PD9 AF7 (ST-LINK VCP), RCC and
 * GPIO in the D3 domain (0x5802xxxx), the arena in AXI SRAM (0x24000000, linker script).
 * Clock: LDO supply, VOS1, HSE 8 MHz bypass (ST-LINK MCO) -> PLL1 (DIVM1 4, N 400, P 2) = 400 MHz,
 * HPRE /2 (AXI/AHB 200 MHz), every APB /2 (100 MHz), 2 flash wait states, WRHIGHFREQ 2. 400 MHz, not
 * the part's 480 MHz: 480 needs VOS0 (SYSCFG over-drive) and revision-V silicon, which this layer
 * does not check. I- and D-cache on. USART polled (ISR/TDR/RDR, FIFO off, PRESC /1 at reset),
 * kernel clock rcc_pclk1 (RCC_D2CCIP2R at reset). Every wait bounded and reported.
 * Addresses/bits: ST CMSIS stm32h743xx.h (board-ports note); the PWR/flash values for 400 MHz are
 * [unverified: RM0433 tables]. Not run on silicon.
 */
#include "board.h"
#include "cortexm7_cache.h"
#include "stm32_gpio.h"
#include "stm32_rcc_usart.h"
#include "te_mmio.h"
#include "te_port.h"

#if !defined(TE_PORT_BOARD_NUCLEO_H743ZI)
#error "stm32h7 port: no board selected (-DTE_PORT_BOARD_NUCLEO_H743ZI)"
#endif

#define RCC_BASE 0x58024400u
#define RCC_CR (RCC_BASE + 0x00u)
#define RCC_CFGR (RCC_BASE + 0x10u)
#define RCC_D1CFGR (RCC_BASE + 0x18u)
#define RCC_D2CFGR (RCC_BASE + 0x1Cu)
#define RCC_D3CFGR (RCC_BASE + 0x20u)
#define RCC_PLLCKSELR (RCC_BASE + 0x28u)
#define RCC_PLLCFGR (RCC_BASE + 0x2Cu)
#define RCC_PLL1DIVR (RCC_BASE + 0x30u)
#define RCC_AHB4ENR (RCC_BASE + 0xE0u)
#define RCC_APB1LENR (RCC_BASE + 0xE8u)
#define CR_HSEON (1u << 16)
#define CR_HSERDY (1u << 17)
#define CR_HSEBYP (1u << 18)
#define CR_PLL1ON (1u << 24)
#define CR_PLL1RDY (1u << 25)
#define CFGR_SW_MASK 7u
#define CFGR_SW_PLL1 3u
#define CFGR_SWS_MASK (7u << 3)
#define CFGR_SWS_PLL1 (3u << 3)
#define PLLSRC_HSI 0u
#define PLLSRC_HSE 2u
#define PLLCFGR_PLL1RGE_2_4MHZ (1u << 2)
#define PLLCFGR_DIVP1EN (1u << 16)
#define PLLCFGR_DIVQ1EN (1u << 17)
#define AHB4ENR_GPIODEN (1u << 3)
#define APB1LENR_USART3EN (1u << 18)

#define PWR_BASE 0x58024800u
#define PWR_CSR1 (PWR_BASE + 0x04u)
#define PWR_CR3 (PWR_BASE + 0x0Cu)
#define PWR_D3CR (PWR_BASE + 0x18u)
#define CR3_BYPASS (1u << 0)
#define CR3_LDOEN (1u << 1)
#define CR3_SCUEN (1u << 2)
#define CSR1_ACTVOSRDY (1u << 13)
#define D3CR_VOS_MASK (3u << 14)
#define D3CR_VOS1 (3u << 14)
#define D3CR_VOSRDY (1u << 13)

#define FLASH_ACR 0x52002000u
#define H7_FLASH_WS 2u
#define H7_WRHIGHFREQ (2u << 4)

#define GPIOD 0x58020C00u
#define H7_TX_PIN 8u
#define H7_RX_PIN 9u
#define H7_AF 7u

#define USART_BASE 0x40004800u /* USART3 */
#define USART_CR1 (USART_BASE + 0x00u)
#define USART_BRR (USART_BASE + 0x0Cu)
#define UCR1_UE (1u << 0)
#define UCR1_RE (1u << 2)
#define UCR1_TE (1u << 3)

#define HSI_HZ 64000000u
#define HSE_HZ 8000000u
#define PLL_IN_HZ 2000000u
#define PLL_N 400u
#define PLL_P 2u
#define PLL_Q 4u
#define PLL_R 2u
#define SYSCLK_HZ 400000000u
#define PCLK1_HZ (SYSCLK_HZ / 2u / 2u) /* HPRE /2, D2PPRE1 /2 */

static uint32_t s_pclk1 = HSI_HZ;

static void stay_on_hsi(const char *how)
{
    TE_CLR(RCC_CR, CR_PLL1ON);
    te_port_set_clock(HSI_HZ, how);
}

static void clock_init(void)
{
    TE_FIELD(PWR_CR3, CR3_SCUEN | CR3_LDOEN | CR3_BYPASS, CR3_LDOEN); /* LDO supply (the Nucleo's) */
    (void)te_port_wait(PWR_CSR1, CSR1_ACTVOSRDY, CSR1_ACTVOSRDY, "ACTVOSRDY");
    TE_FIELD(PWR_D3CR, D3CR_VOS_MASK, D3CR_VOS1);
    if (!te_port_wait(PWR_D3CR, D3CR_VOSRDY, D3CR_VOSRDY, "VOSRDY")) {
        te_port_set_clock(HSI_HZ, "HSI (VOS1 not ready)");
        return;
    }
    TE_SET(RCC_CR, CR_HSEBYP);
    TE_SET(RCC_CR, CR_HSEON);
    const int hse = te_port_wait(RCC_CR, CR_HSERDY, CR_HSERDY, "HSERDY");
    if (!hse) {
        TE_CLR(RCC_CR, CR_HSEON | CR_HSEBYP);
    }
    const uint32_t divm = (hse ? HSE_HZ : HSI_HZ) / PLL_IN_HZ;
    TE_WR(RCC_PLLCKSELR, (divm << 4) | (hse ? PLLSRC_HSE : PLLSRC_HSI));
    TE_WR(RCC_PLLCFGR, PLLCFGR_PLL1RGE_2_4MHZ | PLLCFGR_DIVP1EN | PLLCFGR_DIVQ1EN); /* wide VCO */
    TE_WR(RCC_PLL1DIVR, (PLL_N - 1u) | ((PLL_P - 1u) << 9) | ((PLL_Q - 1u) << 16) | ((PLL_R - 1u) << 24));
    TE_SET(RCC_CR, CR_PLL1ON);
    if (!te_port_wait(RCC_CR, CR_PLL1RDY, CR_PLL1RDY, "PLL1RDY")) {
        stay_on_hsi("HSI (PLL1 not locked)");
        return;
    }
    TE_WR(FLASH_ACR, H7_FLASH_WS | H7_WRHIGHFREQ);
    if ((TE_RD(FLASH_ACR) & 0xFu) != H7_FLASH_WS) {
        te_port_note("FLASH_ACR");
        stay_on_hsi("HSI (flash latency not accepted)");
        return;
    }
    TE_WR(RCC_D1CFGR, (8u << 0) | (4u << 4)); /* HPRE /2, D1PPRE /2, D1CPRE /1 */
    TE_WR(RCC_D2CFGR, (4u << 4) | (4u << 8)); /* D2PPRE1 /2, D2PPRE2 /2 */
    TE_WR(RCC_D3CFGR, (4u << 4));             /* D3PPRE /2 */
    TE_FIELD(RCC_CFGR, CFGR_SW_MASK, CFGR_SW_PLL1);
    if (!te_port_wait(RCC_CFGR, CFGR_SWS_MASK, CFGR_SWS_PLL1, "SWS")) {
        TE_FIELD(RCC_CFGR, CFGR_SW_MASK, 0u);
        TE_WR(RCC_D1CFGR, 0u);
        TE_WR(RCC_D2CFGR, 0u);
        TE_WR(RCC_D3CFGR, 0u);
        stay_on_hsi("HSI (switch to PLL1 not confirmed)");
        return;
    }
    s_pclk1 = PCLK1_HZ;
    te_port_set_clock(SYSCLK_HZ, hse ? "PLL1 from HSE, VOS1" : "PLL1 from HSI (HSE did not start)");
}

static void usart_init(void)
{
    TE_SET(RCC_AHB4ENR, AHB4ENR_GPIODEN);
    (void)TE_RD(RCC_AHB4ENR);
    stm32_gpio_af(GPIOD, H7_TX_PIN, H7_AF, 0);
    stm32_gpio_af(GPIOD, H7_RX_PIN, H7_AF, 1);
    TE_SET(RCC_APB1LENR, APB1LENR_USART3EN);
    (void)TE_RD(RCC_APB1LENR);
    stm32_usart_start(USART_CR1, USART_BRR, te_port_brr(s_pclk1, TE_BAUD), UCR1_UE | UCR1_TE | UCR1_RE);
}

void board_init(void)
{
    cortexm7_board_init(clock_init, usart_init);
}

STM32_USART2_BOARD_IO(USART_BASE)
