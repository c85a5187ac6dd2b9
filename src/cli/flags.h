/* Typed command-line flags: every flag has a type, a default and a help line; unknown flags
 * and bad values are errors (the caller exits 2). */
#ifndef LNL_FLAGS_H
#define LNL_FLAGS_H

#include "../common/util.h"

typedef enum {
    LNL_FLAG_INT,    /* dest: long long*            */
    LNL_FLAG_FLOAT,  /* dest: double*               */
    LNL_FLAG_STR,    /* dest: const char**          */
    LNL_FLAG_BOOL,   /* dest: int*, takes no value  */
    LNL_FLAG_LIST    /* dest: LnlStrList*, takes one or more values up to the next flag */
} LnlFlagType;

typedef struct {
    const char **items;
    int n;
} LnlStrList;

typedef struct {
    const char *name;    /* "--steps" */
    LnlFlagType type;
    void *dest;          /* holds the default on entry */
    const char *help;
    double lo, hi;       /* inclusive range for INT/FLOAT; ignored when lo > hi */
    const char *choices; /* "gpt2|byte" for STR flags, or NULL */
    int seen;            /* set by the parser when given on the command line */
} LnlFlag;
/* --help prints "(default: <value in dest>)" after each help text, unless the help text
 * already states its default with "(default: ...)". */

/* Result of parsing. */
enum { LNL_FLAGS_OK = 0, LNL_FLAGS_HELP = 1, LNL_FLAGS_ERROR = -1 };

/* Parses argv[1..argc-1] (argv[0] is the command name). Arguments not starting with "--" are
 * positional and collected into pos (at most max_pos, else an error). "-h"/"--help" prints
 * help to stdout and returns LNL_FLAGS_HELP. */
int lnl_flags_parse(const char *cmd, const char *usage, LnlFlag *flags, int nflags, int argc, char **argv,
                    const char **pos, int max_pos, int *npos, LnlErr *e);
void lnl_flags_help(const char *cmd, const char *usage, const LnlFlag *flags, int nflags, FILE *out);
/* The flag named name, or NULL; for checking `seen`. */
LnlFlag *lnl_flags_find(LnlFlag *flags, int nflags, const char *name);

/* Parses flags and handles the outcome the same way for every command: help -> exit 0,
 * error -> message and exit 2. Returns only on success. */
void lnl_flags_parse_or_exit(const char *cmd, const char *usage, LnlFlag *flags, int nflags, int argc,
                             char **argv, const char **pos, int max_pos, int *npos);

#endif
