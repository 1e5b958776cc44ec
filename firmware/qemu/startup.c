/*
 * Bare-metal startup for the emulated Cortex-M boards (QEMU mps2-an385/an386/an500) and, unchanged,
 * any ARMv6-M/v7-M/v7E-M core: vector table, reset handler (FPU on, .data copy, .bss clear, UART
 * init, main, exit through semihosting with main's return value), and fault handlers that print
 * what happened on the UART and stop QEMU with a distinctive exit status.
 *
 * Exit statuses (qemu-system-arm's own exit status, via semihosting SYS_EXIT_EXTENDED):
 *   0..253                  main's return value (& 0xFF)
 *   STARTUP_EXIT_FAULT      HardFault / MemManage / BusFault / UsageFault (report on the UART)
 *   STARTUP_EXIT_UNEXPECTED an exception or interrupt without a handler (report on the UART)
 *
 * Every handler is a weak alias: define a function with the same name to install your own
 * (timer.c defines SysTick_Handler). External interrupts are Irq0_Handler..Irq31_Handler; on the
 * MPS2 images UART0 RX/TX are IRQ 0/1 and CMSDK TIMER0/TIMER1 IRQ 8/9.
 */
#include <stdint.h>

#include "semihost.h"
#include "uart.h"

#define STARTUP_EXIT_FAULT 254
#define STARTUP_EXIT_UNEXPECTED 253

/* Linker script symbols (mps2-sections.ld). */
extern uint32_t __data_load__[], __data_start__[], __data_end__[], __bss_start__[], __bss_end__[];
extern uint32_t __stack_top__[];

int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void startup_fault_report(const uint32_t *frame, uint32_t exc_return);

#define WEAK_ALIAS(name) void name(void) __attribute__((weak, alias("Default_Handler")))
WEAK_ALIAS(NMI_Handler);
WEAK_ALIAS(SVC_Handler);
WEAK_ALIAS(DebugMon_Handler);
WEAK_ALIAS(PendSV_Handler);
WEAK_ALIAS(SysTick_Handler);
void MemManage_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void BusFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
void UsageFault_Handler(void) __attribute__((weak, alias("HardFault_Handler")));
WEAK_ALIAS(Irq0_Handler);
WEAK_ALIAS(Irq1_Handler);
WEAK_ALIAS(Irq2_Handler);
WEAK_ALIAS(Irq3_Handler);
WEAK_ALIAS(Irq4_Handler);
WEAK_ALIAS(Irq5_Handler);
WEAK_ALIAS(Irq6_Handler);
WEAK_ALIAS(Irq7_Handler);
WEAK_ALIAS(Irq8_Handler);
WEAK_ALIAS(Irq9_Handler);
WEAK_ALIAS(Irq10_Handler);
WEAK_ALIAS(Irq11_Handler);
WEAK_ALIAS(Irq12_Handler);
WEAK_ALIAS(Irq13_Handler);
WEAK_ALIAS(Irq14_Handler);
WEAK_ALIAS(Irq15_Handler);
WEAK_ALIAS(Irq16_Handler);
WEAK_ALIAS(Irq17_Handler);
WEAK_ALIAS(Irq18_Handler);
WEAK_ALIAS(Irq19_Handler);
WEAK_ALIAS(Irq20_Handler);
WEAK_ALIAS(Irq21_Handler);
WEAK_ALIAS(Irq22_Handler);
WEAK_ALIAS(Irq23_Handler);
WEAK_ALIAS(Irq24_Handler);
WEAK_ALIAS(Irq25_Handler);
WEAK_ALIAS(Irq26_Handler);
WEAK_ALIAS(Irq27_Handler);
WEAK_ALIAS(Irq28_Handler);
WEAK_ALIAS(Irq29_Handler);
WEAK_ALIAS(Irq30_Handler);
WEAK_ALIAS(Irq31_Handler);

typedef union {
    void (*handler)(void);
    const void *sp;
} vector_t;

/* Placed at address 0 by the linker script (KEEP(*(.isr_vector))). */
__attribute__((section(".isr_vector"), used)) const vector_t startup_vectors[16 + 32] = {
    {.sp = __stack_top__},
    {.handler = Reset_Handler},
    {.handler = NMI_Handler},
    {.handler = HardFault_Handler},
    {.handler = MemManage_Handler},
    {.handler = BusFault_Handler},
    {.handler = UsageFault_Handler},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = 0},
    {.handler = SVC_Handler},
    {.handler = DebugMon_Handler},
    {.handler = 0},
    {.handler = PendSV_Handler},
    {.handler = SysTick_Handler},
    {.handler = Irq0_Handler},  {.handler = Irq1_Handler},  {.handler = Irq2_Handler},  {.handler = Irq3_Handler},
    {.handler = Irq4_Handler},  {.handler = Irq5_Handler},  {.handler = Irq6_Handler},  {.handler = Irq7_Handler},
    {.handler = Irq8_Handler},  {.handler = Irq9_Handler},  {.handler = Irq10_Handler}, {.handler = Irq11_Handler},
    {.handler = Irq12_Handler}, {.handler = Irq13_Handler}, {.handler = Irq14_Handler}, {.handler = Irq15_Handler},
    {.handler = Irq16_Handler}, {.handler = Irq17_Handler}, {.handler = Irq18_Handler}, {.handler = Irq19_Handler},
    {.handler = Irq20_Handler}, {.handler = Irq21_Handler}, {.handler = Irq22_Handler}, {.handler = Irq23_Handler},
    {.handler = Irq24_Handler}, {.handler = Irq25_Handler}, {.handler = Irq26_Handler}, {.handler = Irq27_Handler},
    {.handler = Irq28_Handler}, {.handler = Irq29_Handler}, {.handler = Irq30_Handler}, {.handler = Irq31_Handler},
};

#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_CFSR (*(volatile uint32_t *)0xE000ED28u)
#define SCB_HFSR (*(volatile uint32_t *)0xE000ED2Cu)
#define SCB_MMFAR (*(volatile uint32_t *)0xE000ED34u)
#define SCB_BFAR (*(volatile uint32_t *)0xE000ED38u)

void Reset_Handler(void)
{
#if defined(__ARM_FP)
    /* CP10/CP11 full access, before any floating-point instruction can run */
    SCB_CPACR |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    for (uint32_t *src = __data_load__, *dst = __data_start__; dst < __data_end__;) {
        *dst++ = *src++;
    }
    for (uint32_t *dst = __bss_start__; dst < __bss_end__;) {
        *dst++ = 0u;
    }
    uart_init();
    const int rc = main();
    semihost_exit(rc & 0xFF);
}

/* Stacked exception frame: r0 r1 r2 r3 r12 lr pc xpsr. Bit 2 of EXC_RETURN says which stack. */
__attribute__((naked)) void HardFault_Handler(void)
{
    __asm__ volatile(
        "movs r0, #4\n\t"
        "mov r1, lr\n\t"
        "tst r0, r1\n\t"
        "beq 1f\n\t"
        "mrs r0, psp\n\t"
        "b 2f\n"
        "1:\n\t"
        "mrs r0, msp\n"
        "2:\n\t"
        "ldr r2, =startup_fault_report\n\t"
        "bx r2\n\t"
        ".ltorg\n");
}

static void put_reg(const char *name, uint32_t v)
{
    uart_puts(name);
    uart_puts("=0x");
    uart_put_hex32(v);
}

void startup_fault_report(const uint32_t *frame, uint32_t exc_return)
{
    const uint32_t exc = SCB_ICSR & 0x1FFu;
    uart_puts("\n*** FAULT exception ");
    uart_put_u32(exc);
    put_reg(" pc", frame[6]);
    put_reg(" lr", frame[5]);
    put_reg(" xpsr", frame[7]);
    put_reg(" exc_return", exc_return);
#if defined(__ARM_ARCH_7M__) || defined(__ARM_ARCH_7EM__) || defined(__ARM_ARCH_8M_MAIN__)
    put_reg(" cfsr", SCB_CFSR);
    put_reg(" hfsr", SCB_HFSR);
    put_reg(" mmfar", SCB_MMFAR);
    put_reg(" bfar", SCB_BFAR);
#endif
    uart_puts("\n");
    semihost_exit(STARTUP_EXIT_FAULT);
}

void Default_Handler(void)
{
    uart_puts("\n*** unexpected exception ");
    uart_put_u32(SCB_ICSR & 0x1FFu);
    uart_puts("\n");
    semihost_exit(STARTUP_EXIT_UNEXPECTED);
}
