/* The kernel table in use (kernels.h, "the kernel table"): which backend the lnl_<op> entry points
 * call, the list of backends built in, and LNLAB_KERNELS. No op runs here. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"

const LnlKernelOps *const lnl_kernels_backends[] = {&lnl_kernels_ref_ops, &lnl_kernels_cpu_ops, NULL};

const LnlKernelOps *lnl_kernels_active = &lnl_kernels_cpu_ops;

const LnlKernelOps *lnl_kernels_find(const char *name) {
    for (const LnlKernelOps *const *b = lnl_kernels_backends; *b; b++)
        if (strcmp((*b)->name, name) == 0) return *b;
    return NULL;
}

void lnl_kernels_use(const LnlKernelOps *ops) {
    assert(ops);
    lnl_kernels_active = ops;
}

int lnl_kernels_use_env(void) {
    const char *v = getenv("LNLAB_KERNELS");
    if (!v || !*v) v = lnl_kernels_cpu_ops.name;
    const LnlKernelOps *ops = lnl_kernels_find(v);
    if (!ops) {
        char names[128] = "";
        for (const LnlKernelOps *const *b = lnl_kernels_backends; *b; b++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", b == lnl_kernels_backends ? "" : ", ",
                     (*b)->name);
        fprintf(stderr, "lnlab: error: LNLAB_KERNELS=%s names no kernel backend (this build has: %s)\n", v, names);
        return -1;
    }
    lnl_kernels_use(ops);
    return 0;
}
