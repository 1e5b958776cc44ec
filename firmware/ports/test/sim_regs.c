/*
 * Host test bench for a board port: a simulated register file behind te_mmio.h (-DTE_MMIO_SIM) that
 * logs every access ("W addr value" / "R addr value"), models the ready bits the port waits for and a
 * UART, then runs board_init / board_write / board_try_getc and prints the port's status. With
 * argument "dead" the clock/power/flash registers read 0, as in QEMU's STM32 models. tests/
 * test_board_ports.py compiles it per board and checks the sequence in the log.
 *
 *   gcc -std=c99 -DTE_MMIO_SIM -DTE_TIMING_HOST -DTE_PORT_<FAMILY> -DTE_PORT_BOARD_<NAME> \
 *       -Ifirmware/app -Ifirmware/ports/common sim_regs.c te_port.c board_<family>.c te_timing.c ...
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "board.h"
#include "te_mmio.h"
#include "te_port.h"
#include "te_timing.h"

#define NREGS 1024
static uint32_t addrs[NREGS], vals[NREGS];
static int nregs, dead;
static const char *rx_queue = "ok";
static const void *ptrs[16];
static int nptrs;

static uint32_t *slot(uint32_t a)
{
    for (int i = 0; i < nregs; i++) {
        if (addrs[i] == a) {
            return &vals[i];
        }
    }
    if (nregs == NREGS) {
        fprintf(stderr, "sim: too many registers\n");
        exit(2);
    }
    addrs[nregs] = a;
    vals[nregs] = 0u;
    return &vals[nregs++];
}

uint32_t te_mmio_ptr(const void *p)
{
    for (int i = 0; i < nptrs; i++) {
        if (ptrs[i] == p) {
            return 0x20000000u + 0x100u * (uint32_t)i;
        }
    }
    ptrs[nptrs] = p;
    return 0x20000000u + 0x100u * (uint32_t)nptrs++;
}

static __attribute__((unused)) const void *host_ptr(uint32_t v)
{
    const uint32_t i = (v - 0x20000000u) / 0x100u;
    return (v >= 0x20000000u && i < (uint32_t)nptrs) ? ptrs[i] : NULL;
}

/* Is this a clock/power/flash register (the ones QEMU leaves unimplemented)? */
static int clockish(uint32_t a)
{
#if defined(TE_PORT_NRF52840)
    return a < 0x40001000u;
#else
    return (a >= 0x40023800u && a < 0x40024000u) || (a >= 0x40007000u && a < 0x40007400u) ||
           (a >= 0x58024400u && a < 0x58024C00u) || (a >= 0x52002000u && a < 0x52003000u) ||
           (a >= 0x40020000u && a < 0x40022400u) || (a >= 0x58020000u && a < 0x58022C00u);
#endif
}

#if defined(TE_PORT_STM32F4)
#define UART_STATUS_OFF 0x00u
#define UART_DATA_RD_OFF 0x04u
#elif defined(TE_PORT_STM32F7) || defined(TE_PORT_STM32H7)
#define UART_STATUS_OFF 0x1Cu
#define UART_DATA_RD_OFF 0x24u
#endif

static __attribute__((unused)) uint32_t uart_base(void)
{
#if defined(TE_PORT_BOARD_NETDUINOPLUS2) || defined(TE_PORT_BOARD_STM32F746G_DISCO)
    return 0x40011000u;
#else
    return 0x40004800u;
#endif
}

uint32_t te_mmio_read(uint32_t a)
{
    uint32_t v = *slot(a);
    if (dead && clockish(a)) {
        v = 0u;
    }
#if defined(UART_STATUS_OFF)
    if (a == uart_base() + UART_STATUS_OFF) {
        v = (1u << 7) | (*rx_queue ? (1u << 5) : 0u); /* TXE always; RXNE while bytes wait */
    } else if (a == uart_base() + UART_DATA_RD_OFF) {
        v = *rx_queue ? (uint8_t)*rx_queue++ : 0u;
    }
#endif
#if defined(TE_PORT_STM32H7)
    if (a == 0x58024818u) {
        v |= dead ? 0u : (1u << 13); /* PWR_D3CR.VOSRDY */
    }
    if (a == 0x58024804u) {
        v |= dead ? 0u : (1u << 13); /* PWR_CSR1.ACTVOSRDY */
    }
#endif
#if defined(TE_PORT_STM32F7) || defined(TE_PORT_STM32H7)
    if (a == 0xE000ED80u) {
        v = (127u << 13) | (3u << 3); /* CCSIDR: 128 sets, 4 ways (an M7 with 16 KB D-cache) */
    }
#endif
    printf("R %08x %08x\n", a, v);
    return v;
}

void te_mmio_write(uint32_t a, uint32_t v)
{
    printf("W %08x %08x\n", a, v);
    *slot(a) = v;
#if defined(TE_PORT_STM32F4) || defined(TE_PORT_STM32F7)
    if (a == 0x40023800u) { /* RCC_CR: HSERDY follows HSEON, PLLRDY follows PLLON */
        *slot(a) = (v & ~((1u << 17) | (1u << 25))) | ((v >> 16 & 1u) << 17) | ((v >> 24 & 1u) << 25);
    } else if (a == 0x40023808u) { /* RCC_CFGR: SWS follows SW */
        *slot(a) = (v & ~0xCu) | ((v & 3u) << 2);
    } else if (a == 0x40007000u) { /* PWR_CR1 (F7): ODRDY/ODSWRDY follow ODEN/ODSWEN */
        *slot(0x40007004u) = v & (3u << 16);
    }
#elif defined(TE_PORT_STM32H7)
    if (a == 0x58024400u) {
        *slot(a) = (v & ~((1u << 17) | (1u << 25))) | ((v >> 16 & 1u) << 17) | ((v >> 24 & 1u) << 25);
    } else if (a == 0x58024410u) {
        *slot(a) = (v & ~(7u << 3)) | ((v & 7u) << 3);
    }
#elif defined(TE_PORT_NRF52840)
    if (a == 0x40000000u && v == 1u && !dead) { /* TASKS_HFCLKSTART */
        *slot(0x40000100u) = 1u;
    } else if (a == 0x40002008u && v == 1u) { /* TASKS_STARTTX: send TXD.MAXCNT bytes from TXD.PTR */
        const uint8_t *p = host_ptr(*slot(0x40002544u));
        printf("TX %p ", (const void *)p);
        for (uint32_t i = 0; p != NULL && i < *slot(0x40002548u); i++) {
            printf("%02x", p[i]);
        }
        printf("\n");
        *slot(0x40002120u) = 1u;
    } else if (a == 0x40002000u && v == 1u && *rx_queue) { /* TASKS_STARTRX: a byte waits */
        volatile uint8_t *p = (volatile uint8_t *)(uintptr_t)host_ptr(*slot(0x40002534u));
        if (p != NULL) {
            *p = (uint8_t)*rx_queue++;
            *slot(0x40002110u) = 1u; /* EVENTS_ENDRX */
        }
    }
#endif
}

int main(int argc, char **argv)
{
    dead = argc > 1 && strcmp(argv[1], "dead") == 0;
    board_init();
    printf("INIT2\n");
    board_init(); /* a second call does nothing */
    printf("WRITE\n");
    static const uint8_t hello[] = "hello"; /* .rodata: EasyDMA must not be given this pointer */
    printf("CALLER %p\n", (const void *)hello);
    board_write(hello, 5u);
    printf("READ\n");
    int got[4];
    for (int i = 0; i < 4; i++) {
        got[i] = board_try_getc();
    }
    printf("GOT %d %d %d %d\n", got[0], got[1], got[2], got[3]);
    printf("CLOCK %u\n", (unsigned)te_core_clock_hz());
    printf("STATUS %s\n", te_board_status());
    return 0;
}
