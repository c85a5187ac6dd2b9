/* lnlab's identity (version.h). */
#include "version.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

#include "../kernels/kernels_internal.h"

void lnl_version_line(char *buf, size_t n) { snprintf(buf, n, "lnlab %s (commit %s)", LNL_VERSION, lnl_build_commit); }

int lnl_version_bf16(void) { return lnl_bf16_available(); }

char *lnl_command_line(int argc, char **argv) {
    LnlBuf b = {0};
    lnl_buf_append(&b, "lnlab", 5);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        int plain = *a != 0;
        for (const char *p = a; *p && plain; p++)
            plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./=:,+@%", *p) != NULL;
        lnl_buf_append(&b, " ", 1);
        if (plain) {
            lnl_buf_append(&b, a, strlen(a));
            continue;
        }
        lnl_buf_append(&b, "'", 1);
        for (const char *p = a; *p; p++) {
            if (*p == '\'') lnl_buf_append(&b, "'\\''", 4);
            else lnl_buf_append(&b, p, 1);
        }
        lnl_buf_append(&b, "'", 1);
    }
    lnl_buf_append(&b, "", 1);
    return b.data;
}

void lnl_cpu_name(char *buf, size_t n) {
    snprintf(buf, n, "unknown");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (!f) return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "model name", 10)) continue;
        const char *v = strchr(line, ':');
        if (!v) break;
        v++;
        while (*v == ' ' || *v == '\t') v++;
        snprintf(buf, n, "%.*s", (int)strcspn(v, "\n"), v);
        break;
    }
    fclose(f);
}

void lnl_provenance_add(void *obj, const char *command, int threads) {
    cJSON *p = cJSON_AddObjectToObject((cJSON *)obj, "provenance");
    char cpu[256], date[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%SZ", &tm);
    lnl_cpu_name(cpu, sizeof cpu);
    cJSON_AddStringToObject(p, "lnlab", LNL_VERSION);
    cJSON_AddStringToObject(p, "commit", lnl_build_commit);
    cJSON_AddStringToObject(p, "build", lnl_build_options);
    cJSON_AddStringToObject(p, "date", date);
    cJSON_AddStringToObject(p, "cpu", cpu);
    cJSON_AddNumberToObject(p, "cpus", (double)sysconf(_SC_NPROCESSORS_ONLN));
    cJSON_AddNumberToObject(p, "threads", threads);
    cJSON_AddStringToObject(p, "command", command ? command : "");
}
