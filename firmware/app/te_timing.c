/* Cycle/tick timer: DWT CYCCNT when it works, SysTick otherwise, a host clock in host builds. */
#if defined(TE_TIMING_HOST) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 199309L
#endif
#include "te_timing.h"

static te_timer_kind_t s_kind = TE_TIMER_SYSTICK;

#if defined(TE_TIMING_HOST)
#include <time.h>

__attribute__((weak)) uint32_t te_core_clock_hz(void)
{
    return TE_CLOCK_HZ;
}

static uint64_t s_t0;

static uint64_t host_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

te_timer_kind_t te_time_init(void)
{
    s_kind = TE_TIMER_HOST;
    s_t0 = host_ns();
    return s_kind;
}

uint32_t te_time_hz(void)
{
    return 1000000000u;
}

uint64_t te_time_now(void)
{
    return host_ns() - s_t0;
}

#else /* Cortex-M */
#include "timer.h" /* SysTick 64-bit (firmware/qemu/timer.c: plain Cortex-M SysTick, no QEMU specifics) */

#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CTRL_CYCCNTENA 1u
#define DWT_CTRL_NOCYCCNT (1u << 25)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u) /* Cortex-M7 lock access register */

static uint32_t s_dwt_last, s_dwt_hi;

static int dwt_start(void)
{
#if defined(TE_TIMING_NO_DWT) || (defined(__ARM_ARCH_6M__) && __ARM_ARCH_6M__)
    return 0;
#else
    DEMCR |= DEMCR_TRCENA;
    DWT_LAR = 0xC5ACCE55u; /* unlock (M7); ignored elsewhere */
    if ((DWT_CTRL & DWT_CTRL_NOCYCCNT) != 0u) {
        return 0;
    }
    DWT_CYCCNT = 0u;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    const uint32_t a = DWT_CYCCNT;
    for (volatile int i = 0; i < 64; i++) {
    }
    const uint32_t b = DWT_CYCCNT;
    return b != a; /* QEMU 7.2: reads 0, writes ignored, no fault */
#endif
}

te_timer_kind_t te_time_init(void)
{
    if (dwt_start()) {
        s_kind = TE_TIMER_DWT;
        s_dwt_last = DWT_CYCCNT;
        s_dwt_hi = 0u;
    } else {
        s_kind = TE_TIMER_SYSTICK;
        timer_init();
    }
    return s_kind;
}

/* A board port (firmware/ports) defines the clock it actually reached. */
__attribute__((weak)) uint32_t te_core_clock_hz(void)
{
    return TE_CLOCK_HZ;
}

uint32_t te_time_hz(void)
{
    return te_core_clock_hz();
}

uint64_t te_time_now(void)
{
    if (s_kind == TE_TIMER_DWT) {
        __asm__ volatile("" ::: "memory");
        const uint32_t c = DWT_CYCCNT;
        if (c < s_dwt_last) {
            s_dwt_hi++;
        }
        s_dwt_last = c;
        __asm__ volatile("" ::: "memory");
        return ((uint64_t)s_dwt_hi << 32) | c;
    }
    return timer_ticks();
}
#endif

te_timer_kind_t te_time_kind(void)
{
    return s_kind;
}

uint32_t te_time_ms(void)
{
    return (uint32_t)(te_time_now() / (te_time_hz() / 1000u));
}
