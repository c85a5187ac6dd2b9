/* Machine load from /proc/stat's per-CPU lines (see load.h). */
#include "load.h"

#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double lnl_load_busy_seconds(int mine, int *ncpu) {
    *ncpu = 0;
#if defined(__linux__)
    cpu_set_t set;
    int have_set = mine && sched_getaffinity(0, sizeof set, &set) == 0;
    FILE *f = fopen("/proc/stat", "r");
    if (!f) return -1;
    char line[512];
    unsigned long long busy = 0;
    while (fgets(line, sizeof line, f)) {
        /* "cpuN user nice system idle iowait irq softirq steal ..."; the first line ("cpu ")
         * is the sum and is skipped */
        unsigned cpu;
        unsigned long long v[8] = {0};
        if (strncmp(line, "cpu", 3) != 0) break;
        if (sscanf(line, "cpu%u %llu %llu %llu %llu %llu %llu %llu %llu", &cpu, &v[0], &v[1], &v[2], &v[3], &v[4],
                   &v[5], &v[6], &v[7]) != 9)
            continue;
        if (have_set && (cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set))) continue;
        busy += v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
        (*ncpu)++;
    }
    fclose(f);
    long hz = sysconf(_SC_CLK_TCK);
    if (*ncpu == 0 || hz <= 0) return -1;
    return (double)busy / (double)hz;
#else
    (void)mine;
    return -1;
#endif
}

double lnl_load_own_seconds(void) {
    struct timespec ts;
    if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0;
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
