#include "semihost.h"

int32_t semihost_call(uint32_t op, const void *arg)
{
    register uint32_t r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
    return (int32_t)r0;
}

void semihost_write0(const char *s)
{
    (void)semihost_call(SEMIHOST_SYS_WRITE0, s);
}

void semihost_exit(int status)
{
    /* SYS_EXIT_EXTENDED passes the status through (QEMU: exit(status)); the plain AArch32
     * SYS_EXIT below is only a fallback for hosts without it (exit 0 or 1). */
    const uint32_t block[2] = {SEMIHOST_ADP_APPLICATION_EXIT, (uint32_t)status};
    (void)semihost_call(SEMIHOST_SYS_EXIT_EXTENDED, block);
    (void)semihost_call(SEMIHOST_SYS_EXIT, (const void *)(status == 0 ? 0x20026u : 0x20024u));
    for (;;) {
        __asm__ volatile("wfi");
    }
}
