/*
 * Cortex-M7 L1 caches on (ARMv7-M ARM / CMSIS armv7m_cachel1.h sequence): invalidate all of the
 * I-cache then set CCR.IC; invalidate the D-cache by set/way from CCSIDR then set CCR.DC. Skipped when
 * already on. The probe's UART is polled and no buffer is shared with a DMA, so no clean/invalidate
 * is needed afterwards.
 */
#ifndef TE_CORTEXM7_CACHE_H
#define TE_CORTEXM7_CACHE_H

#include "te_port.h"

void cortexm7_caches_on(void);

/* board_init of a Cortex-M7 board layer: caches on, then the clocks and the serial link; once. */
static inline void cortexm7_board_init(void (*clocks)(void), void (*serial)(void))
{
    if (!te_port_first_init()) {
        return;
    }
    cortexm7_caches_on();
    clocks();
    serial();
}

#endif
