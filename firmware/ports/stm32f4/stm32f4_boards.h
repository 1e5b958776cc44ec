/*
 * STM32F4 boards: the UART behind the board's serial link, its pins, and the clock tree for full
 * speed. Selected by -DTE_PORT_BOARD_<NAME> (the build derives it from boards/<name>.json).
 * Sources: Zephyr board DTS and ST CMSIS device headers (as collected in the project's board notes); values
 * marked [unverified] were not checked against a reference manual or a board.
 */
#ifndef TE_STM32F4_BOARDS_H
#define TE_STM32F4_BOARDS_H

#if defined(TE_PORT_BOARD_NETDUINOPLUS2)
/* Netduino Plus 2 (STM32F405RG, 168 MHz). QEMU's netduinoplus2 wires its first -serial to USART1. */
#define F4_USART_BASE 0x40011000u /* USART1 */
#define F4_USART_ON_APB2 1        /* kernel clock PCLK2; RCC_APB2ENR.USART1EN bit 4 */
#define F4_USART_EN_BIT (1u << 4)
#define F4_TX_PORT 0u /* PA9, AF7 */
#define F4_TX_PIN 9u
#define F4_RX_PORT 0u /* PA10, AF7 */
#define F4_RX_PIN 10u
#define F4_AF 7u
#define F4_HSE_HZ 25000000u /* 25 MHz crystal [unverified: Netduino Plus 2 schematic] */
#define F4_HSE_BYPASS 0
#define F4_PLL_M 25u /* 1 MHz VCO input */
#define F4_PLL_N 336u
#define F4_PLL_P 2u
#define F4_PLL_Q 7u
#define F4_SYSCLK_HZ 168000000u
#define F4_FLASH_WS 5u       /* 150-168 MHz at 2.7-3.6 V [unverified: RM0090 table 10] */
#define F4_APB1_DIV 4u       /* 42 MHz (max 42) */
#define F4_APB2_DIV 2u       /* 84 MHz (max 84) */
#define F4_VOS_BITS (1u << 14) /* PWR_CR.VOS = scale 1 on F405 [unverified: RM0090] */

#elif defined(TE_PORT_BOARD_STM32F412)
/* NUCLEO-F412ZG: ST-LINK virtual COM port = USART3 on PD8 (TX) / PD9 (RX), AF7. */
#define F4_USART_BASE 0x40004800u /* USART3 */
#define F4_USART_ON_APB2 0        /* kernel clock PCLK1; RCC_APB1ENR.USART3EN bit 18 */
#define F4_USART_EN_BIT (1u << 18)
#define F4_TX_PORT 3u
#define F4_TX_PIN 8u
#define F4_RX_PORT 3u
#define F4_RX_PIN 9u
#define F4_AF 7u
#define F4_HSE_HZ 8000000u /* 8 MHz from the ST-LINK's MCO, HSE bypass */
#define F4_HSE_BYPASS 1
#define F4_PLL_M 8u /* 1 MHz VCO input, VCO 400 MHz */
#define F4_PLL_N 400u
#define F4_PLL_P 4u
#define F4_PLL_Q 8u
#define F4_SYSCLK_HZ 100000000u
#define F4_FLASH_WS 3u /* 90-100 MHz, scale 1 (FLASH_SCALE1_LATENCY3_FREQ) */
#define F4_APB1_DIV 2u /* 50 MHz (max 50) */
#define F4_APB2_DIV 1u
#define F4_VOS_BITS (3u << 14) /* PWR_CR.VOS[15:14] = scale 1 [unverified: RM0402] */

#else
#error "stm32f4 port: no board selected (-DTE_PORT_BOARD_NETDUINOPLUS2 or -DTE_PORT_BOARD_STM32F412)"
#endif

#endif /* TE_STM32F4_BOARDS_H */
