/* How busy the machine's CPUs are, from the kernel's counters (Linux /proc/stat): what the
 * adaptive thread count (src/kernels/runtime.c) and `lnlab bench`'s load column read. */
#ifndef LNL_LOAD_H
#define LNL_LOAD_H

/* CPU seconds that all processes together have used on the CPUs this process may run on (its
 * affinity mask; all CPUs when mine is 0), since boot: user, nice, system, irq, softirq and steal
 * (a VM's host taking the CPU counts as someone else using it). *ncpu gets how many CPUs were
 * counted. Returns -1 where /proc/stat cannot be read (not Linux). */
double lnl_load_busy_seconds(int mine, int *ncpu);

/* CPU seconds this process has used (all its threads, spinning ones too). */
double lnl_load_own_seconds(void);

#endif
