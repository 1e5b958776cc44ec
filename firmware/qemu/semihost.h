/*
 * ARM semihosting (Arm "Semihosting for AArch32 and AArch64", v2): BKPT 0xAB with the operation in
 * r0 and the argument in r1. QEMU implements it with -semihosting-config enable=on,target=native.
 * Without a debugger or QEMU attached, a BKPT halts or faults the core: real-board builds must not
 * call these (the firmware runtime only uses them under QEMU).
 */
#ifndef SEMIHOST_H
#define SEMIHOST_H

#include <stdint.h>

#define SEMIHOST_SYS_WRITE0 0x04u        /* print a NUL-terminated string on the host console */
#define SEMIHOST_SYS_EXIT 0x18u          /* stop; AArch32 can only say success / failure */
#define SEMIHOST_SYS_EXIT_EXTENDED 0x20u /* stop with a reason and an exit status (QEMU >= 4.1) */
#define SEMIHOST_ADP_APPLICATION_EXIT 0x20026u

/* One semihosting call; returns the host's r0. */
int32_t semihost_call(uint32_t op, const void *arg);

/* Print a string on the host's stdout (independent of the UART). */
void semihost_write0(const char *s);

/* End the emulation: qemu-system-arm exits with `status` (0..255). Never returns. */
void semihost_exit(int status) __attribute__((noreturn));

#endif /* SEMIHOST_H */
