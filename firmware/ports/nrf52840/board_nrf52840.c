/*
 * Board layer for the nRF52840-DK (board.h): UARTE0 with EasyDMA on P0.06 (TX) / P0.08 (RX, pull-up),
 * the J-Link OB's virtual COM port, no flow control. The CPU always runs at 64 MHz; the HFXO is
 * started (TASKS_HFCLKSTART, EVENTS_HFCLKSTARTED waited for, bounded) so the baud rate is crystal
 * accurate, and the flash instruction cache is enabled (NVMC ICACHECNF).
 * EasyDMA reads and writes RAM only, so board_write copies the bytes into a RAM buffer first
 * (a .rodata pointer would not be transferred) and receiving is one byte at a time into a RAM byte
 * (RXD.MAXCNT 1, restarted after each ENDRX; the UARTE's own RX FIFO holds bytes meanwhile).
 * Registers: Nordic nrfx nrf52840.h / nrf52840_bitfields.h (board-ports note). Not run on silicon.
 */
#include "board.h"
#include "te_mmio.h"
#include "te_port.h"

#if !defined(TE_PORT_BOARD_NRF52840)
#error "nrf52840 port: no board selected (-DTE_PORT_BOARD_NRF52840)"
#endif

#define CLOCK_BASE 0x40000000u
#define CLOCK_TASKS_HFCLKSTART (CLOCK_BASE + 0x000u)
#define CLOCK_EVENTS_HFCLKSTARTED (CLOCK_BASE + 0x100u)
#define NVMC_ICACHECNF 0x4001E540u
#define P0_BASE 0x50000000u
#define P0_OUTSET (P0_BASE + 0x508u)
#define P0_PIN_CNF(n) (P0_BASE + 0x700u + 4u * (n))
#define PIN_CNF_OUTPUT_DISCONNECTED 3u /* DIR output, input buffer disconnected */
#define PIN_CNF_INPUT_PULLUP (3u << 2) /* DIR input, input connected, pull-up */

#define UARTE_BASE 0x40002000u /* UARTE0 */
#define UARTE_TASKS_STARTRX (UARTE_BASE + 0x000u)
#define UARTE_TASKS_STARTTX (UARTE_BASE + 0x008u)
#define UARTE_EVENTS_ENDRX (UARTE_BASE + 0x110u)
#define UARTE_EVENTS_ENDTX (UARTE_BASE + 0x120u)
#define UARTE_ERRORSRC (UARTE_BASE + 0x480u)
#define UARTE_ENABLE (UARTE_BASE + 0x500u)
#define UARTE_PSEL_TXD (UARTE_BASE + 0x50Cu)
#define UARTE_PSEL_RXD (UARTE_BASE + 0x514u)
#define UARTE_BAUDRATE (UARTE_BASE + 0x524u)
#define UARTE_RXD_PTR (UARTE_BASE + 0x534u)
#define UARTE_RXD_MAXCNT (UARTE_BASE + 0x538u)
#define UARTE_TXD_PTR (UARTE_BASE + 0x544u)
#define UARTE_TXD_MAXCNT (UARTE_BASE + 0x548u)
#define UARTE_CONFIG (UARTE_BASE + 0x56Cu)
#define UARTE_ENABLE_ON 8u
#define ERRORSRC_OVERRUN 1u

#define TX_PIN 6u
#define RX_PIN 8u
#define CPU_HZ 64000000u
#define TX_CHUNK 64u

/* UARTE BAUDRATE register: 115200 -> 0x01D60000 (actual 115108 Bd; the legacy UART's value differs),
 * 1 Mbd -> 0x10000000 [unverified]; other rates are refused at compile time rather than guessed. */
#if TE_BAUD == 115200u || TE_BAUD == 115200
#define BAUD_REG 0x01D60000u
#elif TE_BAUD == 1000000u || TE_BAUD == 1000000
#define BAUD_REG 0x10000000u
#else
#error "nrf52840 port: TE_BAUD must be 115200 or 1000000"
#endif

static int s_tx_dead;
static uint8_t s_tx[TX_CHUNK]; /* EasyDMA buffers: in RAM (.bss) */
static volatile uint8_t s_rx;

static void rx_start(void)
{
    TE_WR(UARTE_RXD_PTR, TE_PTR32((const void *)&s_rx));
    TE_WR(UARTE_RXD_MAXCNT, 1u);
    TE_WR(UARTE_EVENTS_ENDRX, 0u);
    TE_WR(UARTE_TASKS_STARTRX, 1u);
}

void board_init(void)
{
    if (!te_port_first_init()) {
        return;
    }
    TE_WR(CLOCK_EVENTS_HFCLKSTARTED, 0u);
    TE_WR(CLOCK_TASKS_HFCLKSTART, 1u);
    const int hfxo = te_port_wait(CLOCK_EVENTS_HFCLKSTARTED, 1u, 1u, "HFCLKSTARTED");
    TE_SET(NVMC_ICACHECNF, 1u); /* CACHEEN */
    te_port_set_clock(CPU_HZ, hfxo ? "HFXO" : "HFINT (HFXO did not start)");

    TE_WR(P0_OUTSET, 1u << TX_PIN); /* idle high before the pin becomes an output */
    TE_WR(P0_PIN_CNF(TX_PIN), PIN_CNF_OUTPUT_DISCONNECTED);
    TE_WR(P0_PIN_CNF(RX_PIN), PIN_CNF_INPUT_PULLUP);
    TE_WR(UARTE_ENABLE, 0u);
    TE_WR(UARTE_PSEL_TXD, TX_PIN); /* port 0, CONNECT (bit 31) = 0: connected */
    TE_WR(UARTE_PSEL_RXD, RX_PIN);
    TE_WR(UARTE_BAUDRATE, BAUD_REG);
    TE_WR(UARTE_CONFIG, 0u); /* no parity, no flow control */
    TE_WR(UARTE_ENABLE, UARTE_ENABLE_ON);
    rx_start();
}

void board_write(const uint8_t *data, size_t n)
{
    while (n > 0u) {
        const size_t k = n < TX_CHUNK ? n : TX_CHUNK;
        for (size_t i = 0; i < k; i++) {
            s_tx[i] = data[i];
        }
        TE_WR(UARTE_TXD_PTR, TE_PTR32(s_tx));
        TE_WR(UARTE_TXD_MAXCNT, k);
        TE_WR(UARTE_EVENTS_ENDTX, 0u);
        TE_WR(UARTE_TASKS_STARTTX, 1u);
        if (!s_tx_dead && !te_port_wait(UARTE_EVENTS_ENDTX, 1u, 1u, "ENDTX")) {
            s_tx_dead = 1;
        }
        data += k;
        n -= k;
    }
}

int board_try_getc(void)
{
    if (TE_RD(UARTE_EVENTS_ENDRX) == 0u) {
        return TE_BOARD_NONE;
    }
    const uint32_t err = TE_RD(UARTE_ERRORSRC);
    if (err != 0u) {
        if (err & ERRORSRC_OVERRUN) {
            te_port_count_overrun();
        }
        TE_WR(UARTE_ERRORSRC, err); /* write 1 to clear */
    }
    const int c = s_rx;
    rx_start();
    return c;
}
