/* Typed command-line flag parsing and help. */
#include "flags.h"

#include <stdlib.h>
#include <string.h>

static const char *type_name(LnlFlagType t) {
    switch (t) {
    case LNL_FLAG_INT: return "int";
    case LNL_FLAG_FLOAT: return "float";
    case LNL_FLAG_STR: return "string";
    case LNL_FLAG_BOOL: return "bool";
    case LNL_FLAG_LIST: return "string...";
    }
    return "?";
}

LnlFlag *lnl_flags_find(LnlFlag *flags, int nflags, const char *name) {
    for (int i = 0; i < nflags; i++)
        if (strcmp(flags[i].name, name) == 0) return &flags[i];
    return NULL;
}

static int set_value(LnlFlag *f, const char *v, LnlErr *e) {
    int ranged = f->lo <= f->hi;
    switch (f->type) {
    case LNL_FLAG_INT: {
        long long x;
        if (lnl_parse_int(v, ranged ? (long long)f->lo : -9223372036854775807LL,
                          ranged ? (long long)f->hi : 9223372036854775807LL, &x, f->name, e))
            return -1;
        *(long long *)f->dest = x;
        return 0;
    }
    case LNL_FLAG_FLOAT: {
        double x;
        if (lnl_parse_double(v, ranged ? f->lo : -1e308, ranged ? f->hi : 1e308, &x, f->name, e)) return -1;
        *(double *)f->dest = x;
        return 0;
    }
    case LNL_FLAG_STR:
        if (f->choices && !lnl_in_choices(v, f->choices))
            return lnl_err(e, "%s: '%s' is not one of %s", f->name, v, f->choices);
        if (!*v) return lnl_err(e, "%s: empty value", f->name);
        *(const char **)f->dest = v;
        return 0;
    default: return lnl_err(e, "%s: internal: bad flag type", f->name);
    }
}

int lnl_flags_parse(const char *cmd, const char *usage, LnlFlag *flags, int nflags, int argc, char **argv,
                    const char **pos, int max_pos, int *npos, LnlErr *e) {
    *npos = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            lnl_flags_help(cmd, usage, flags, nflags, stdout);
            return LNL_FLAGS_HELP;
        }
        if (strncmp(a, "--", 2) != 0 || strcmp(a, "-") == 0) {
            if (a[0] == '-' && a[1] != 0) return lnl_err(e, "%s: unknown flag '%s'", cmd, a);
            if (*npos >= max_pos) return lnl_err(e, "%s: unexpected argument '%s'", cmd, a);
            pos[(*npos)++] = a;
            continue;
        }
        char name[128];
        const char *eq = strchr(a, '=');
        size_t nlen = eq ? (size_t)(eq - a) : strlen(a);
        if (nlen >= sizeof name) return lnl_err(e, "%s: unknown flag '%s'", cmd, a);
        memcpy(name, a, nlen);
        name[nlen] = 0;
        LnlFlag *f = lnl_flags_find(flags, nflags, name);
        if (!f) return lnl_err(e, "%s: unknown flag '%s' (see lnlab %s --help)", cmd, name, cmd);
        if (f->seen && f->type != LNL_FLAG_LIST) return lnl_err(e, "%s: flag %s given twice", cmd, name);
        f->seen = 1;
        if (f->type == LNL_FLAG_BOOL) {
            if (eq) {
                if (strcmp(eq + 1, "1") == 0 || strcmp(eq + 1, "true") == 0) *(int *)f->dest = 1;
                else if (strcmp(eq + 1, "0") == 0 || strcmp(eq + 1, "false") == 0) *(int *)f->dest = 0;
                else return lnl_err(e, "%s: expected true or false, got '%s'", name, eq + 1);
            } else {
                *(int *)f->dest = 1;
            }
            continue;
        }
        if (f->type == LNL_FLAG_LIST) {
            LnlStrList *l = f->dest;
            int added = 0;
            if (eq) {
                l->items = lnl_realloc(l->items, sizeof(char *) * (size_t)(l->n + 1));
                l->items[l->n++] = eq + 1;
                added = 1;
            }
            while (!eq && i + 1 < argc && strncmp(argv[i + 1], "--", 2) != 0) {
                l->items = lnl_realloc(l->items, sizeof(char *) * (size_t)(l->n + 1));
                l->items[l->n++] = argv[++i];
                added = 1;
            }
            if (!added) return lnl_err(e, "%s: expects at least one value", name);
            continue;
        }
        const char *v;
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else return lnl_err(e, "%s: missing value (%s)", name, type_name(f->type));
        if (set_value(f, v, e)) return LNL_FLAGS_ERROR;
    }
    return LNL_FLAGS_OK;
}

void lnl_flags_help(const char *cmd, const char *usage, const LnlFlag *flags, int nflags, FILE *out) {
    fprintf(out, "usage: lnlab %s %s\n\n", cmd, usage ? usage : "[flags]");
    fprintf(out, "flags:\n");
    for (int i = 0; i < nflags; i++) {
        const LnlFlag *f = &flags[i];
        char def[128];
        switch (f->type) {
        case LNL_FLAG_INT: snprintf(def, sizeof def, "%lld", *(long long *)f->dest); break;
        case LNL_FLAG_FLOAT: snprintf(def, sizeof def, "%g", *(double *)f->dest); break;
        case LNL_FLAG_STR: {
            const char *s = *(const char **)f->dest;
            snprintf(def, sizeof def, "%s", s ? s : "none");
            break;
        }
        case LNL_FLAG_BOOL: snprintf(def, sizeof def, "%s", *(int *)f->dest ? "true" : "false"); break;
        case LNL_FLAG_LIST: snprintf(def, sizeof def, "none"); break;
        }
        char head[160];
        snprintf(head, sizeof head, "%s %s", f->name, f->choices ? f->choices : type_name(f->type));
        if (strstr(f->help, "(default: ")) fprintf(out, "  %-34s %s\n", head, f->help);
        else fprintf(out, "  %-34s %s (default: %s)\n", head, f->help, def);
    }
    fprintf(out, "  %-34s %s\n", "-h, --help", "show this help");
}

void lnl_flags_parse_or_exit(const char *cmd, const char *usage, LnlFlag *flags, int nflags, int argc,
                             char **argv, const char **pos, int max_pos, int *npos) {
    LnlErr e;
    int r = lnl_flags_parse(cmd, usage, flags, nflags, argc, argv, pos, max_pos, npos, &e);
    if (r == LNL_FLAGS_HELP) exit(0);
    if (r != LNL_FLAGS_OK) lnl_die(2, "%s", e.msg);
}
