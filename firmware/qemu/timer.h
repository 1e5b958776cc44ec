/*
 * Cycle/instruction timer on SysTick (present on every Cortex-M; DWT CYCCNT reads 0 in QEMU 7.2).
 *
 * SysTick runs free from the processor clock (CLKSOURCE = 1) with the full 24-bit reload; its wrap
 * interrupt (SysTick_Handler below, installed by startup.c) extends it to a 64-bit up-counter.
 *
 * Under QEMU the MPS2 clock is 25 MHz (40 ns per tick) and, with `-icount shift=N`, every guest
 * instruction advances virtual time by exactly 2^N ns, so
 *     instructions = ticks * 40 / 2^N        (shift=0: 40 instructions per tick; shift=6: 0.625)
 * deterministically from run to run. Use shift=0 for long runs, shift=6 when per-call resolution
 * matters (the 24-bit counter then wraps every ~10.5 M instructions, handled by the extension).
 * On a real board ticks are core clock cycles (TIMER_HZ = the core clock).
 *
 * Measuring code: GCC may move a call to a function it can see is free of side effects across the
 * timer reads. timer_ticks() is a compiler barrier (memory clobber); additionally keep the measured
 * call in another translation unit (no LTO) or tie its result with TIMER_KEEP(x).
 */
#ifndef TIMER_H
#define TIMER_H

#include <stdint.h>

#ifndef TIMER_HZ
#define TIMER_HZ 25000000u /* MPS2 AN385/AN386/AN500 under QEMU */
#endif

/* Force `x` to be computed before this point (an empty asm that "uses" and "changes" it). */
#define TIMER_KEEP(x) __asm__ volatile("" : "+r"(x) : : "memory")

void timer_init(void);        /* start SysTick; enables its interrupt */
uint64_t timer_ticks(void);   /* ticks since timer_init(), monotonic */
void SysTick_Handler(void);   /* wrap counter; referenced by the vector table */

#endif /* TIMER_H */
