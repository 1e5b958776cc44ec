#include "timer.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define ICSR_PENDSTSET (1u << 26)
#define SYST_RELOAD 0x00FFFFFFu

static volatile uint32_t s_wraps;

void SysTick_Handler(void)
{
    s_wraps = s_wraps + 1u;
}

void timer_init(void)
{
    SYST_CSR = 0u;
    s_wraps = 0u;
    SYST_RVR = SYST_RELOAD;
    SYST_CVR = 0u;      /* any write clears the counter; it reloads on the next tick */
    SYST_CSR = 7u;      /* ENABLE | TICKINT | CLKSOURCE = processor clock */
    while (SYST_CVR == 0u) {
        /* without -icount QEMU reads 0 for a while after enabling */
    }
}

uint64_t timer_ticks(void)
{
    uint32_t hi, cv, pending;
    __asm__ volatile("" ::: "memory");
    do {
        hi = s_wraps;
        cv = SYST_CVR;
        pending = SCB_ICSR & ICSR_PENDSTSET;
    } while (hi != s_wraps);
    /* wrapped, but the interrupt has not run yet: the reloaded value is large */
    if (pending != 0u && cv > (SYST_RELOAD >> 1)) {
        hi++;
    }
    __asm__ volatile("" ::: "memory");
    return (uint64_t)hi * (SYST_RELOAD + 1u) + (SYST_RELOAD - cv);
}
