/*
 * Register access for the board ports. On the target a register is a volatile 32-bit word at its
 * address. With -DTE_MMIO_SIM (host tests, firmware/ports/test/sim_regs.c) every access goes through
 * te_mmio_read()/te_mmio_write() instead, which log it and model the ready bits, so the driver's
 * register sequence can be checked on the host with the real addresses.
 */
#ifndef TE_MMIO_H
#define TE_MMIO_H

#include <stdint.h>

#ifdef TE_MMIO_SIM
uint32_t te_mmio_read(uint32_t addr);
void te_mmio_write(uint32_t addr, uint32_t value);
uint32_t te_mmio_ptr(const void *p); /* a RAM pointer as the 32-bit value a DMA register takes */
#define TE_RD(addr) te_mmio_read((uint32_t)(addr))
#define TE_WR(addr, v) te_mmio_write((uint32_t)(addr), (uint32_t)(v))
#define TE_PTR32(p) te_mmio_ptr(p)
#define TE_BARRIER() ((void)0)
#else
#define TE_RD(addr) (*(volatile uint32_t *)(uintptr_t)(addr))
#define TE_WR(addr, v) (*(volatile uint32_t *)(uintptr_t)(addr) = (uint32_t)(v))
#define TE_PTR32(p) ((uint32_t)(uintptr_t)(p))
#define TE_BARRIER() __asm__ volatile("dsb\n\tisb" ::: "memory")
#endif

#define TE_SET(addr, bits) TE_WR((addr), TE_RD(addr) | (uint32_t)(bits))
#define TE_CLR(addr, bits) TE_WR((addr), TE_RD(addr) & ~(uint32_t)(bits))
/* Replace the field `mask` (already shifted) of a register with `value` (already shifted). */
#define TE_FIELD(addr, mask, value) TE_WR((addr), (TE_RD(addr) & ~(uint32_t)(mask)) | ((uint32_t)(value) & (uint32_t)(mask)))

#endif /* TE_MMIO_H */
