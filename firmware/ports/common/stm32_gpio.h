/*
 * STM32 GPIO alternate-function set-up, the same register block on F4, F7 and H7 (RM0090/RM0385/
 * RM0433: MODER +0x00, OTYPER +0x04, OSPEEDR +0x08, PUPDR +0x0C, AFRL +0x20, AFRH +0x24; 2 bits per pin
 * in MODER/OSPEEDR/PUPDR, 4 bits per pin in AFR). The port's clock enable comes first.
 */
#ifndef TE_STM32_GPIO_H
#define TE_STM32_GPIO_H

#include <stdint.h>

#include "te_mmio.h"

#define STM32_GPIO_MODER 0x00u
#define STM32_GPIO_OSPEEDR 0x08u
#define STM32_GPIO_PUPDR 0x0Cu
#define STM32_GPIO_AFRL 0x20u
#define STM32_GPIO_MODE_AF 2u
#define STM32_GPIO_SPEED_HIGH 2u
#define STM32_GPIO_PULL_UP 1u

/* Pin `pin` of the GPIO port at `gpio` to alternate function `af` (0..15), fast, pull-up if asked. */
static inline void stm32_gpio_af(uint32_t gpio, uint32_t pin, uint32_t af, int pull_up)
{
    const uint32_t s2 = 2u * pin, s4 = 4u * (pin & 7u);
    TE_FIELD(gpio + STM32_GPIO_OSPEEDR, 3u << s2, STM32_GPIO_SPEED_HIGH << s2);
    TE_FIELD(gpio + STM32_GPIO_PUPDR, 3u << s2, (pull_up ? STM32_GPIO_PULL_UP : 0u) << s2);
    TE_FIELD(gpio + STM32_GPIO_AFRL + 4u * (pin >> 3), 0xFu << s4, af << s4);
    TE_FIELD(gpio + STM32_GPIO_MODER, 3u << s2, STM32_GPIO_MODE_AF << s2); /* AF selected before the mode switch */
}

#endif /* TE_STM32_GPIO_H */
