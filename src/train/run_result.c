/* RUN/result.json (run_result.h). */
#include "run_result.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signals.h"
#include "../common/version.h"
#include "../kernels/kernels.h"

static void add_num_or_null(cJSON *o, const char *key, double x) {
    if (isfinite(x)) cJSON_AddNumberToObject(o, key, x);
    else cJSON_AddNullToObject(o, key);
}

int lnl_trained(int diverged, double final_val_loss, double unigram_val_loss) {
    if (diverged) return 0;
    if (!isfinite(unigram_val_loss) || !isfinite(final_val_loss)) return -1;
    return final_val_loss <= unigram_val_loss - LNL_TRAINED_MARGIN;
}

int lnl_train_write_result(const char *out_dir, const LnlTrainOpts *o, const LnlTrainResult *res, LnlErr *e) {
    cJSON *j = cJSON_CreateObject();
    cJSON_AddStringToObject(j, "format", LNL_RESULT_FORMAT);
    cJSON_AddNumberToObject(j, "version", LNL_RESULT_VERSION);
    const char *status = res->failed     ? LNL_RESULT_FAILED
                         : res->diverged ? LNL_RESULT_DIVERGED
                         : res->stopped  ? LNL_RESULT_STOPPED
                                         : LNL_RESULT_FINISHED;
    cJSON_AddStringToObject(j, "status", status);
    cJSON_AddStringToObject(j, "run_id", o->run_id ? o->run_id : "");
    if (res->failed) cJSON_AddStringToObject(j, "error", res->error);
    else cJSON_AddNullToObject(j, "error");
    if (res->stopped)
        cJSON_AddStringToObject(j, "stop_reason", res->stop_signal ? lnl_signal_name(res->stop_signal) : "stop-after");
    else cJSON_AddNullToObject(j, "stop_reason");
    cJSON_AddNumberToObject(j, "steps", (double)res->steps_done);
    cJSON_AddNumberToObject(j, "steps_planned", (double)o->steps);
    add_num_or_null(j, "final_loss", res->steps_done > 0 ? res->final_loss : NAN);
    add_num_or_null(j, "min_loss", res->min_loss);
    add_num_or_null(j, "val_loss", res->final_val_loss);
    cJSON_AddBoolToObject(j, "diverged", res->diverged);
    if (res->diverged) {
        cJSON_AddNumberToObject(j, "diverged_step", (double)res->diverged_step);
        cJSON_AddStringToObject(j, "cause", res->cause);
    } else {
        cJSON_AddNullToObject(j, "diverged_step");
        cJSON_AddNullToObject(j, "cause");
    }
    add_num_or_null(j, "unigram_val_loss", res->unigram_val_loss);
    int trained = lnl_trained(res->diverged, res->final_val_loss, res->unigram_val_loss);
    if (trained < 0 || res->failed || res->stopped) cJSON_AddNullToObject(j, "trained");
    else cJSON_AddBoolToObject(j, "trained", trained);
    add_num_or_null(j, "tokens_per_s", res->steps_done > 0 ? res->tokens_per_s : NAN);
    cJSON_AddNumberToObject(j, "skipped_steps", (double)res->skipped_steps);
    lnl_provenance_add(j, o->command, lnl_kernels_threads());
    char *text = cJSON_Print(j);
    cJSON_Delete(j);
    LnlBuf b = {0};
    lnl_buf_printf(&b, "%s\n", text);
    cJSON_free(text);
    char *path = lnl_path_join(out_dir, LNL_RESULT_FILE);
    int r = lnl_write_file_atomic(path, b.data, b.len, e);
    free(path);
    lnl_buf_free(&b);
    return r;
}

int lnl_train_remove_result(const char *out_dir, LnlErr *e) {
    char *path = lnl_path_join(out_dir, LNL_RESULT_FILE);
    int r = 0;
    if (unlink(path) != 0 && errno != ENOENT) r = lnl_err(e, "%s: cannot remove: %s", path, strerror(errno));
    free(path);
    return r;
}
