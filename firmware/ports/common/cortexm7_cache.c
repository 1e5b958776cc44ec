/* Cortex-M7 I- and D-cache enable (cortexm7_cache.h). */
#include "cortexm7_cache.h"

#include <stdint.h>

#include "te_mmio.h"

#ifndef SCB_BASE_ADDR
#define SCB_BASE_ADDR 0xE000E000u
#endif
#define SCB_CCR (SCB_BASE_ADDR + 0xD14u)
#define SCB_CCSIDR (SCB_BASE_ADDR + 0xD80u)
#define SCB_CSSELR (SCB_BASE_ADDR + 0xD84u)
#define SCB_ICIALLU (SCB_BASE_ADDR + 0xF50u)
#define SCB_DCISW (SCB_BASE_ADDR + 0xF60u)
#define CCR_DC (1u << 16)
#define CCR_IC (1u << 17)

void cortexm7_caches_on(void)
{
    if ((TE_RD(SCB_CCR) & CCR_IC) == 0u) {
        TE_BARRIER();
        TE_WR(SCB_ICIALLU, 0u);
        TE_BARRIER();
        TE_SET(SCB_CCR, CCR_IC);
        TE_BARRIER();
    }
    if ((TE_RD(SCB_CCR) & CCR_DC) == 0u) {
        TE_WR(SCB_CSSELR, 0u); /* level 1 data cache */
        TE_BARRIER();
        const uint32_t ccsidr = TE_RD(SCB_CCSIDR);
        const uint32_t sets = ((ccsidr >> 13) & 0x7FFFu) + 1u; /* NumSets */
        const uint32_t ways = ((ccsidr >> 3) & 0x3FFu) + 1u;   /* Associativity */
        for (uint32_t s = 0; s < sets; s++) {
            for (uint32_t w = 0; w < ways; w++) {
                TE_WR(SCB_DCISW, (s << 5) | (w << 30));
            }
        }
        TE_BARRIER();
        TE_SET(SCB_CCR, CCR_DC);
        TE_BARRIER();
    }
}
