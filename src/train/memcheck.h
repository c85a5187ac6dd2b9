/* The memory check before training: what a model, its optimizer and a batch need (from the
 * model's own layout code, lnl_model_memory) against what the machine has available. It is a
 * check made before anything large is allocated, not an allocator. */
#ifndef LNL_MEMCHECK_H
#define LNL_MEMCHECK_H

#include "../model/model.h"

/* Overrides the available memory (bytes), for tests and for machines where the estimate is
 * wrong; "0" or "off" turns the check off. */
#define LNL_MEM_ENV "LNLAB_MEM_AVAILABLE"

typedef struct {
    LnlModelMemory model;
    uint64_t adam;  /* AdamW moments m and v: 2 * num_alloc floats */
    uint64_t total; /* model.params + grads + acts + scratch + adam */
} LnlTrainMemory;

/* What training c on B x T batches needs. */
int lnl_train_memory(const LnlConfig *c, int B, int T, LnlTrainMemory *out, LnlErr *e);

/* Memory available to this process in bytes: the smallest of MemAvailable in /proc/meminfo and
 * the cgroup limit minus current usage (cgroup v2 memory.max / memory.current, or v1
 * memory.limit_in_bytes / memory.usage_in_bytes), or LNL_MEM_ENV when set. Returns 0 and sets
 * *known = 0 when nothing can be read (then no check is made). `source` names where the figure
 * came from (for messages). */
uint64_t lnl_mem_available(int *known, char *source, size_t source_len);

/* Fails, with every figure in the message, when training c on B x T would not fit. A batch
 * shape the model cannot take (T above n_positions) is not checked here: the caller says why. */
int lnl_mem_check(const LnlConfig *c, int B, int T, LnlErr *e);

#endif
