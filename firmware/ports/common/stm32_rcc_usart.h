/*
 * What the STM32 board layers share beyond GPIO:
 *  - F4 and F7 (RM0090/RM0385, same RCC at 0x40023800 and FLASH_ACR at 0x40023C00): the last step of
 *    the clock set-up, flash wait states read back, then the APB prescalers and the switch to the PLL,
 *    confirmed by SWS;
 *  - every STM32: the USART start (off, divisor, then on with TX and RX: 8N1, oversampling 16);
 *  - F7 and H7 (the USART with ISR/ICR/RDR/TDR): polled byte I/O, overruns cleared and counted.
 */
#ifndef TE_STM32_RCC_USART_H
#define TE_STM32_RCC_USART_H

#include <stddef.h>
#include <stdint.h>

#include "board.h"
#include "stm32_gpio.h"
#include "te_mmio.h"
#include "te_port.h"

#define F47_RCC_CR 0x40023800u
#define F47_RCC_PLLCFGR 0x40023804u
#define F47_RCC_CFGR 0x40023808u
#define F47_RCC_AHB1ENR 0x40023830u
#define F47_RCC_APB1ENR 0x40023840u
#define F47_RCC_APB2ENR 0x40023844u
#define F47_GPIO(port) (0x40020000u + 0x400u * (port))
#define F47_CR_HSEON (1u << 16)
#define F47_CR_HSERDY (1u << 17)
#define F47_CR_HSEBYP (1u << 18)
#define F47_CR_PLLON (1u << 24)
#define F47_CR_PLLRDY (1u << 25)
#define F47_PLLCFGR_SRC_HSE (1u << 22)
#define F47_FLASH_ACR 0x40023C00u
#define F47_CFGR_SW_MASK 3u
#define F47_CFGR_SW_PLL 2u
#define F47_CFGR_SWS_MASK (3u << 2)
#define F47_CFGR_SWS_PLL (2u << 2)
#define F47_CFGR_PRE_MASK ((0xFu << 4) | (7u << 10) | (7u << 13)) /* HPRE, PPRE1, PPRE2 */

/* PPRE code for an APB divisor (1, 2, 4, 8, 16). */
static inline uint32_t stm32_ppre(uint32_t div)
{
    return div <= 1u ? 0u : div == 2u ? 4u : div == 4u ? 5u : div == 8u ? 6u : 7u;
}

/* F4/F7: HSE on (in bypass if asked; off again if it does not start), the PLL from HSE or, failing that,
 * from HSI with the same VCO input (hse_hz / m), then PLLON. Returns whether PLLRDY came; *hse says
 * which source the PLL runs from. hse_hz = 0: no HSE on the board, the PLL runs from HSI. */
static inline int stm32f47_start_pll(uint32_t hse_hz, int bypass, uint32_t hsi_hz, uint32_t m, uint32_t n,
                                     uint32_t p, uint32_t q, int *hse)
{
    *hse = 0;
    if (hse_hz != 0u) {
        if (bypass) {
            TE_SET(F47_RCC_CR, F47_CR_HSEBYP);
        }
        TE_SET(F47_RCC_CR, F47_CR_HSEON);
        *hse = te_port_wait(F47_RCC_CR, F47_CR_HSERDY, F47_CR_HSERDY, "HSERDY");
        if (!*hse) {
            TE_CLR(F47_RCC_CR, F47_CR_HSEON | F47_CR_HSEBYP);
        }
    }
    const uint32_t pll_m = *hse ? m : hsi_hz / (hse_hz / m); /* the same 1 MHz-class VCO input */
    TE_WR(F47_RCC_PLLCFGR, pll_m | (n << 6) | ((p / 2u - 1u) << 16) | (*hse ? F47_PLLCFGR_SRC_HSE : 0u) | (q << 24));
    TE_SET(F47_RCC_CR, F47_CR_PLLON);
    return te_port_wait(F47_RCC_CR, F47_CR_PLLRDY, F47_CR_PLLRDY, "PLLRDY");
}

/* F4/F7: the serial pins' GPIO ports and the USART clocked, the pins on alternate function af (RX
 * pulled up), each enable read back before the peripheral is touched. */
static inline void stm32f47_usart_pins(uint32_t tx_port, uint32_t tx_pin, uint32_t rx_port, uint32_t rx_pin,
                                       uint32_t af, int on_apb2, uint32_t enable_bit)
{
    TE_SET(F47_RCC_AHB1ENR, (1u << tx_port) | (1u << rx_port));
    (void)TE_RD(F47_RCC_AHB1ENR);
    stm32_gpio_af(F47_GPIO(tx_port), tx_pin, af, 0);
    stm32_gpio_af(F47_GPIO(rx_port), rx_pin, af, 1);
    const uint32_t en = on_apb2 ? F47_RCC_APB2ENR : F47_RCC_APB1ENR;
    TE_SET(en, enable_bit);
    (void)TE_RD(en);
}

/* F4/F7: FLASH_ACR = acr (its LATENCY field read back), APB prescalers, SYSCLK from the PLL, confirmed.
 * NULL when the core runs from the PLL; else what failed (prescalers and switch undone): the caller
 * stays on HSI and says so. */
static inline const char *stm32f47_switch_to_pll(uint32_t acr, uint32_t apb1_div, uint32_t apb2_div)
{
    TE_WR(F47_FLASH_ACR, acr);
    if ((TE_RD(F47_FLASH_ACR) & 0xFu) != (acr & 0xFu)) {
        te_port_note("FLASH_ACR");
        return "HSI (flash latency not accepted)";
    }
    TE_FIELD(F47_RCC_CFGR, F47_CFGR_PRE_MASK, (stm32_ppre(apb1_div) << 10) | (stm32_ppre(apb2_div) << 13));
    TE_FIELD(F47_RCC_CFGR, F47_CFGR_SW_MASK, F47_CFGR_SW_PLL);
    if (!te_port_wait(F47_RCC_CFGR, F47_CFGR_SWS_MASK, F47_CFGR_SWS_PLL, "SWS")) {
        TE_FIELD(F47_RCC_CFGR, F47_CFGR_SW_MASK | F47_CFGR_PRE_MASK, 0u);
        return "HSI (switch to PLL not confirmed)";
    }
    return NULL;
}

/* Any STM32 USART: off, BRR, then on (on_bits: UE | TE | RE of this USART version). */
static inline void stm32_usart_start(uint32_t cr1, uint32_t brr, uint32_t brr_value, uint32_t on_bits)
{
    TE_WR(cr1, 0u);
    TE_WR(brr, brr_value);
    TE_WR(cr1, on_bits);
}

#define STM32_USART2_ISR 0x1Cu
#define STM32_USART2_ICR 0x20u
#define STM32_USART2_RDR 0x24u
#define STM32_USART2_TDR 0x28u
#define STM32_USART2_ORE (1u << 3)
#define STM32_USART2_RXNE (1u << 5)
#define STM32_USART2_TXE (1u << 7)

/* F7/H7 USART at `usart`: each byte waits for TXE (bounded; after one timeout the transmitter is taken
 * as dead and not waited for again, *tx_dead). */
static inline void stm32_usart2_write(uint32_t usart, const uint8_t *data, size_t n, int *tx_dead)
{
    for (size_t i = 0; i < n; i++) {
        if (!*tx_dead && !te_port_wait(usart + STM32_USART2_ISR, STM32_USART2_TXE, STM32_USART2_TXE, "TXE")) {
            *tx_dead = 1;
        }
        TE_WR(usart + STM32_USART2_TDR, data[i]);
    }
}

/* F7/H7 USART: a received byte, or TE_BOARD_NONE; an overrun stops reception until ORECF clears it. */
static inline int stm32_usart2_try_getc(uint32_t usart)
{
    const uint32_t isr = TE_RD(usart + STM32_USART2_ISR);
    if (isr & STM32_USART2_ORE) {
        te_port_count_overrun();
        TE_WR(usart + STM32_USART2_ICR, STM32_USART2_ORE); /* ORECF is bit 3, like ORE */
    }
    if (isr & STM32_USART2_RXNE) {
        return (int)(TE_RD(usart + STM32_USART2_RDR) & 0xFFu);
    }
    return TE_BOARD_NONE;
}

/* board.h's byte I/O for a layer whose serial link is the F7/H7 USART at `usart`. */
#define STM32_USART2_BOARD_IO(usart)                         \
    static int s_tx_dead;                                    \
    void board_write(const uint8_t *data, size_t n)          \
    {                                                        \
        stm32_usart2_write((usart), data, n, &s_tx_dead);    \
    }                                                        \
    int board_try_getc(void)                                 \
    {                                                        \
        return stm32_usart2_try_getc((usart));               \
    }

#endif /* TE_STM32_RCC_USART_H */
