/*
 * Timestamps for INFER/BENCH/PROFILE and the protocol timeouts.
 *
 * Cortex-M3/M4/M7/M33/M55: the DWT cycle counter (DEMCR.TRCENA, DWT_CTRL.CYCCNTENA), used when it is seen to
 * advance; counts core clock cycles, extended to 64 bits in software (read at least once per 2^32 cycles).
 * Otherwise (QEMU 7.2, where DWT reads 0; Cortex-M0+; -DTE_TIMING_NO_DWT): SysTick at the processor
 * clock extended to 64 bits by its wrap interrupt (firmware/qemu/timer.c). Under QEMU -icount shift=N
 * one SysTick tick (25 MHz) is 40 / 2^N instructions. Host builds (-DTE_TIMING_HOST): CLOCK_MONOTONIC ns.
 */
#ifndef TE_TIMING_H
#define TE_TIMING_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#ifndef TE_CLOCK_HZ
#define TE_CLOCK_HZ 25000000u /* core clock; 25 MHz = the SysTick reference of QEMU's MPS2 images */
#endif

typedef enum {
    TE_TIMER_DWT = 0,     /* DWT CYCCNT: core clock cycles */
    TE_TIMER_SYSTICK = 1, /* SysTick at the processor clock (QEMU: instructions = ticks * 40 / 2^shift) */
    TE_TIMER_HOST = 2     /* host build: nanoseconds */
} te_timer_kind_t;

te_timer_kind_t te_time_init(void); /* picks and starts the timer; call once */
te_timer_kind_t te_time_kind(void);
uint32_t te_time_hz(void);          /* ticks per second of te_time_now() */
uint32_t te_core_clock_hz(void);    /* the core clock reached: a board port's, else TE_CLOCK_HZ (weak) */
uint64_t te_time_now(void);         /* monotonic ticks; a compiler barrier */
uint32_t te_time_ms(void);          /* milliseconds (wrapping), for protocol timeouts */

/* Force `x` to be computed before this point. */
#if defined(__GNUC__)
#define TE_TIME_KEEP(x) __asm__ volatile("" : "+r"(x) : : "memory")
#else
#define TE_TIME_KEEP(x) ((void)(x))
#endif

#ifdef __cplusplus
}
#endif
#endif /* TE_TIMING_H */
