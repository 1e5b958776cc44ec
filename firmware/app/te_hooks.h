/*
 * Per-layer timing hooks for the generated model.c (compile it with -DTE_HOOKS_HEADER='"te_hooks.h"').
 * While te_prof_ticks points at an array of TE_NUM_LAYERS counters (main.c's PROFILE), every layer adds
 * its te_time_now() delta to its entry; otherwise a hook costs one load and a branch.
 */
#ifndef TE_HOOKS_H
#define TE_HOOKS_H

#include <stdint.h>

#include "te_timing.h"

extern uint64_t *volatile te_prof_ticks;
extern uint64_t te_prof_t0;

#define TE_LAYER_BEGIN(i)                                                                                   \
    do {                                                                                                    \
        if (te_prof_ticks != 0) {                                                                           \
            te_prof_t0 = te_time_now();                                                                     \
        }                                                                                                   \
    } while (0)
#define TE_LAYER_END(i)                                                                                     \
    do {                                                                                                    \
        uint64_t *const te_p_ = te_prof_ticks;                                                              \
        if (te_p_ != 0) {                                                                                   \
            te_p_[(i)] += te_time_now() - te_prof_t0;                                                       \
        }                                                                                                   \
    } while (0)

#endif /* TE_HOOKS_H */
