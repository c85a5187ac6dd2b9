/* GPT-2 byte-level BPE (pre-tokenizing regex through PCRE2, merges by rank, a cache of pre-token
 * encodings) and the byte tokenizer. Ids match the reference JavaScript encoder (npm
 * gpt-3-encoder); see docs/TOKENIZER.md for the invalid UTF-8 policy and parity notes. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

enum { KIND_BYTE, KIND_GPT2 };

/* Pre-tokens up to this many bytes are cached; the cache is emptied when it holds CACHE_MAX
 * entries or CACHE_ARENA_MAX bytes of keys, so memory stays bounded on any input. */
#define CACHE_KEY_MAX 128
#define CACHE_SLOTS (1u << 18)
#define CACHE_MAX (CACHE_SLOTS / 2)
#define CACHE_ARENA_MAX (16u << 20)

static const char EOT_TEXT[] = "<|endoftext|>";

/* ---- hashing ------------------------------------------------------------------------------ */

static uint64_t hash_bytes(const uint8_t *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 0x100000001b3ull;
    return h ^ (h >> 29);
}

static uint64_t hash_u64(uint64_t x) {
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    return x ^ (x >> 33);
}

/* ---- merge table: (left id, right id) -> (rank, merged id) --------------------------------- */

typedef struct {
    uint64_t key; /* (left << 32 | right) + 1; 0 marks an empty slot */
    uint32_t rank;
    int32_t id;
} MergeSlot;

typedef struct {
    MergeSlot *slots; /* (cap) */
    size_t cap;       /* power of two, at least twice the number of merges */
} MergeMap;

static uint64_t merge_key(int32_t a, int32_t b) { return (((uint64_t)(uint32_t)a << 32) | (uint32_t)b) + 1; }

static const MergeSlot *merge_find(const MergeMap *m, int32_t a, int32_t b) {
    uint64_t k = merge_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = hash_u64(k) & mask;; i = (i + 1) & mask) {
        if (m->slots[i].key == k) return &m->slots[i];
        if (m->slots[i].key == 0) return NULL;
    }
}

/* Returns the existing slot (and does not insert) if the pair is already there. */
static MergeSlot *merge_insert(MergeMap *m, int32_t a, int32_t b, uint32_t rank, int32_t id) {
    uint64_t k = merge_key(a, b);
    size_t mask = m->cap - 1;
    for (size_t i = hash_u64(k) & mask;; i = (i + 1) & mask) {
        if (m->slots[i].key == k) return &m->slots[i];
        if (m->slots[i].key == 0) {
            m->slots[i] = (MergeSlot){k, rank, id};
            return NULL;
        }
    }
}

/* ---- string -> id map, used while loading (keys are the vocabulary's unicode strings) ------ */

typedef struct {
    const char *key; /* NUL-terminated, owned by the cJSON tree; NULL marks an empty slot */
    int32_t id;
} StrSlot;

typedef struct {
    StrSlot *slots;
    size_t cap;
} StrMap;

static StrSlot *str_slot(StrMap *m, const char *s, size_t n) {
    size_t mask = m->cap - 1;
    for (size_t i = hash_bytes((const uint8_t *)s, n) & mask;; i = (i + 1) & mask) {
        StrSlot *sl = &m->slots[i];
        if (!sl->key || (strncmp(sl->key, s, n) == 0 && sl->key[n] == 0)) return sl;
    }
}

/* ---- pre-token cache ----------------------------------------------------------------------- */

typedef struct {
    uint64_t hash;
    uint32_t key_off, key_len; /* key_len 0 marks an empty slot (pre-tokens are never empty) */
    uint32_t ids_off, nids;
} CacheSlot;

typedef struct {
    CacheSlot *slots; /* (CACHE_SLOTS) */
    size_t n;
    LnlBuf keys; /* key bytes */
    LnlIds ids;  /* cached encodings */
} Cache;

/* ---- the tokenizer -------------------------------------------------------------------------- */

typedef struct {
    uint32_t rank;
    int32_t pos;     /* index of the left symbol */
    int32_t a, b;    /* the pair's ids when pushed; the entry is stale once they changed */
} HeapEnt;

struct LnlTokenizer {
    int kind;
    int vocab_size;
    int eot;
    /* GPT-2 only below. */
    uint32_t *tok_off;  /* (vocab_size + 1) offsets into tok_bytes: the bytes of each id */
    uint8_t *tok_bytes;
    int32_t byte_id[256]; /* id of the one-byte token of each byte */
    MergeMap merges;
    pcre2_code *re;
    pcre2_match_data *md;
    int jit;
    Cache cache;
    /* BPE scratch, grown to the longest pre-token seen. */
    int32_t *sym, *prev, *next; /* (scratch_cap) */
    HeapEnt *heap, *batch;       /* (3 * scratch_cap) */
    size_t scratch_cap;
};

void lnl_ids_push(LnlIds *l, int32_t id) {
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 256;
        l->ids = lnl_realloc(l->ids, l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = id;
}

void lnl_ids_free(LnlIds *l) {
    free(l->ids);
    l->ids = NULL;
    l->n = l->cap = 0;
}

static void ids_reserve(LnlIds *l, size_t extra) {
    if (l->n + extra <= l->cap) return;
    size_t cap = l->cap ? l->cap : 256;
    while (cap < l->n + extra) cap *= 2;
    l->ids = lnl_realloc(l->ids, cap * sizeof *l->ids);
    l->cap = cap;
}

/* ---- GPT-2's byte <-> unicode table ------------------------------------------------------- */

void lnl_gpt2_bytes_to_unicode(uint32_t cp[256]) {
    /* Printable Latin-1 bytes map to themselves; the other 68 bytes, in order, to 256, 257, ... */
    uint32_t n = 0;
    for (int b = 0; b < 256; b++) {
        int printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
        cp[b] = printable ? (uint32_t)b : 256 + n++;
    }
}

/* Decodes one UTF-8 code point of s[0..n) (strict: no overlongs, surrogates or > U+10FFFF).
 * Returns its length, or 0 if s does not start with a valid sequence. */
static int utf8_decode(const uint8_t *s, size_t n, uint32_t *cp) {
    uint8_t c = s[0];
    if (c < 0x80) {
        *cp = c;
        return 1;
    }
    int len;
    uint32_t v, min;
    if (c >= 0xC2 && c <= 0xDF) len = 2, v = c & 0x1F, min = 0x80;
    else if (c >= 0xE0 && c <= 0xEF) len = 3, v = c & 0x0F, min = 0x800;
    else if (c >= 0xF0 && c <= 0xF4) len = 4, v = c & 0x07, min = 0x10000;
    else return 0;
    if ((size_t)len > n) return 0;
    for (int i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        v = (v << 6) | (s[i] & 0x3F);
    }
    if (v < min || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF)) return 0;
    *cp = v;
    return len;
}

static int utf8_encode(uint32_t cp, char *out) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12)); /* the byte alphabet never goes past U+0143 */
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Copies at most 40 bytes of a token into a message-safe form (no control characters). */
static const char *shown(const char *s, char buf[64]) {
    size_t n = 0;
    for (; *s && n < 40; s++) buf[n++] = ((unsigned char)*s < 0x20 || *s == 0x7F) ? '?' : *s;
    if (*s) buf[n++] = '.', buf[n++] = '.', buf[n++] = '.';
    buf[n] = 0;
    return buf;
}

/* ---- the pre-tokenizing regex ------------------------------------------------------------- */

/* GPT-2's pattern is 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * as the reference JavaScript encoder runs it. Two spellings make PCRE2 agree with JavaScript:
 * \s is JavaScript's whitespace set (PCRE2's also holds U+0085 and U+180E but not U+FEFF), and
 * \p{L} / \p{N} are extended by the letters and numbers that Unicode 15.0-17.0 added, which
 * Node 20 (ICU 78, Unicode 17.0) knows and PCRE2 10.42 (Unicode 14.0) does not. Both lists come
 * from a sweep over every code point, described in docs/TOKENIZER.md. */
static const char JS_SPACE[] =
    "\\t\\n\\x0B\\f\\r \\x{A0}\\x{1680}\\x{2000}-\\x{200A}\\x{2028}\\x{2029}\\x{202F}\\x{205F}\\x{3000}\\x{FEFF}";

static const uint32_t NEW_LETTERS[][2] = {
    {0x88F, 0x88F},     {0xC5C, 0xC5C},     {0xCDC, 0xCDC},     {0x1C89, 0x1C8A},   {0xA7CB, 0xA7CF},
    {0xA7D2, 0xA7D2},   {0xA7D4, 0xA7D4},   {0xA7DA, 0xA7DC},   {0xA7F1, 0xA7F1},   {0x105C0, 0x105F3},
    {0x10940, 0x10959}, {0x10D4A, 0x10D65}, {0x10D6F, 0x10D85}, {0x10EC2, 0x10EC7}, {0x1123F, 0x11240},
    {0x11380, 0x11389}, {0x1138B, 0x1138B}, {0x1138E, 0x1138E}, {0x11390, 0x113B5}, {0x113B7, 0x113B7},
    {0x113D1, 0x113D1}, {0x113D3, 0x113D3}, {0x11BC0, 0x11BE0}, {0x11DB0, 0x11DDB}, {0x11F02, 0x11F02},
    {0x11F04, 0x11F10}, {0x11F12, 0x11F33}, {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x13460, 0x143FA},
    {0x16100, 0x1611D}, {0x16D40, 0x16D6C}, {0x16EA0, 0x16EB8}, {0x16EBB, 0x16ED3}, {0x16FF2, 0x16FF3},
    {0x187F8, 0x187FF}, {0x18CFF, 0x18CFF}, {0x18D09, 0x18D1E}, {0x18D80, 0x18DF2}, {0x1B132, 0x1B132},
    {0x1B155, 0x1B155}, {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x1E5D0, 0x1E5ED},
    {0x1E5F0, 0x1E5F0}, {0x1E6C0, 0x1E6DE}, {0x1E6E0, 0x1E6E2}, {0x1E6E4, 0x1E6E5}, {0x1E6E7, 0x1E6ED},
    {0x1E6F0, 0x1E6F4}, {0x1E6FE, 0x1E6FF}, {0x2B739, 0x2B73F}, {0x2CEA2, 0x2CEAD}, {0x2EBF0, 0x2EE5D},
    {0x31350, 0x33479},
};
static const uint32_t NEW_NUMBERS[][2] = {
    {0x10D40, 0x10D49}, {0x116D0, 0x116E3}, {0x11BF0, 0x11BF9}, {0x11DE0, 0x11DE9},
    {0x11F50, 0x11F59}, {0x16130, 0x16139}, {0x16D70, 0x16D79}, {0x16FF4, 0x16FF6},
    {0x1CCF0, 0x1CCF9}, {0x1D2C0, 0x1D2D3}, {0x1E4F0, 0x1E4F9}, {0x1E5F1, 0x1E5FA},
};

static void append_ranges(LnlBuf *b, const uint32_t (*r)[2], size_t n) {
    for (size_t i = 0; i < n; i++) {
        if (r[i][0] == r[i][1]) lnl_buf_printf(b, "\\x{%X}", (unsigned)r[i][0]);
        else lnl_buf_printf(b, "\\x{%X}-\\x{%X}", (unsigned)r[i][0], (unsigned)r[i][1]);
    }
}

static int compile_regex(LnlTokenizer *t, LnlErr *e) {
    LnlBuf L = {0}, N = {0}, p = {0};
    lnl_buf_printf(&L, "\\p{L}");
    append_ranges(&L, NEW_LETTERS, sizeof NEW_LETTERS / sizeof NEW_LETTERS[0]);
    lnl_buf_printf(&N, "\\p{N}");
    append_ranges(&N, NEW_NUMBERS, sizeof NEW_NUMBERS / sizeof NEW_NUMBERS[0]);
    lnl_buf_printf(&p, "'s|'t|'re|'ve|'m|'ll|'d| ?[%s]+| ?[%s]+| ?[^%s%s%s]+|[%s]+(?![^%s])|[%s]+", L.data,
                   N.data, JS_SPACE, L.data, N.data, JS_SPACE, JS_SPACE, JS_SPACE);
    int code;
    PCRE2_SIZE off;
    t->re = pcre2_compile((PCRE2_SPTR)p.data, p.len, PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &code,
                          &off, NULL);
    lnl_buf_free(&L);
    lnl_buf_free(&N);
    lnl_buf_free(&p);
    if (!t->re) {
        PCRE2_UCHAR msg[256];
        pcre2_get_error_message(code, msg, sizeof msg);
        return lnl_err(e, "tokenizer: internal: GPT-2 regex does not compile at %zu: %s", (size_t)off, msg);
    }
    t->jit = pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE) == 0;
    t->md = pcre2_match_data_create_from_pattern(t->re, NULL);
    if (!t->md) return lnl_err(e, "tokenizer: out of memory creating PCRE2 match data");
    return 0;
}

/* ---- loading the vocabulary ----------------------------------------------------------------- */

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

char *lnl_tok_default_vocab_dir(void) {
    const char *env = getenv("LNLAB_VOCAB");
    if (env && *env) return lnl_strdup(env);
    char *exe = lnl_exe_dir();
    char *dir = lnl_path_join(exe, "vocab/gpt2");
    free(exe);
    return dir;
}

#define SETUP_HINT "run scripts/setup (or make) to fetch it, or point --vocab / LNLAB_VOCAB at it"

/* Reads encoder.json: a JSON object mapping each token (in GPT-2's byte alphabet) to a distinct
 * id in [0, number of entries). Fills the id -> bytes table and the string -> id map. */
static int load_encoder(LnlTokenizer *t, const char *path, cJSON **root_out, StrMap *map, LnlErr *e) {
    char *text;
    size_t len;
    if (lnl_read_file(path, &text, &len, e)) return -1;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    if (!root || (size_t)(end - text) != len) {
        size_t at = end ? (size_t)(end - text) : 0;
        if (!root && !end) {
            const char *ep = cJSON_GetErrorPtr();
            at = (ep && ep >= text && ep <= text + len) ? (size_t)(ep - text) : 0;
        }
        size_t line = 1;
        for (size_t i = 0; i < at && i < len; i++) line += text[i] == '\n';
        cJSON_Delete(root);
        free(text);
        return lnl_err(e, "%s: invalid JSON at byte %zu (line %zu)", path, at, line);
    }
    free(text);
    *root_out = root;
    if (!cJSON_IsObject(root)) return lnl_err(e, "%s: expected a JSON object mapping tokens to ids", path);
    int n = cJSON_GetArraySize(root);
    if (n < 257) return lnl_err(e, "%s: only %d tokens; a GPT-2 vocabulary has the 256 bytes and more", path, n);
    t->vocab_size = n;
    map->cap = 1;
    while (map->cap < 2 * (size_t)n) map->cap *= 2;
    map->slots = lnl_calloc(map->cap, sizeof *map->slots);

    uint32_t cp_of[256];
    int16_t byte_of[512]; /* byte of each code point of the alphabet (all are < 512), or -1 */
    lnl_gpt2_bytes_to_unicode(cp_of);
    for (int i = 0; i < 512; i++) byte_of[i] = -1;
    for (int b = 0; b < 256; b++) byte_of[cp_of[b]] = (int16_t)b;

    /* First pass: ids and byte lengths. */
    uint32_t *len_of = lnl_calloc((size_t)n, sizeof *len_of);
    uint8_t *seen = lnl_calloc((size_t)n, 1);
    size_t total = 0;
    char buf[64];
    int rc = 0;
    for (cJSON *c = root->child; c; c = c->next) {
        double v = c->valuedouble;
        if (!cJSON_IsNumber(c) || v != floor(v)) {
            rc = lnl_err(e, "%s: the id of token '%s' is not an integer", path, shown(c->string, buf));
            break;
        }
        if (v < 0 || v >= n) {
            rc = lnl_err(e, "%s: id %.0f of token '%s' is out of range [0, %d)", path, v, shown(c->string, buf), n);
            break;
        }
        int id = (int)v;
        if (seen[id]) {
            rc = lnl_err(e, "%s: id %d is given to two tokens (one is '%s')", path, id, shown(c->string, buf));
            break;
        }
        seen[id] = 1;
        size_t klen = strlen(c->string);
        StrSlot *sl = str_slot(map, c->string, klen);
        if (sl->key) {
            rc = lnl_err(e, "%s: token '%s' appears twice", path, shown(c->string, buf));
            break;
        }
        sl->key = c->string;
        sl->id = id;
        const uint8_t *s = (const uint8_t *)c->string;
        uint32_t nb = 0;
        for (size_t i = 0; i < klen;) {
            uint32_t cp;
            int l = utf8_decode(s + i, klen - i, &cp);
            if (!l || cp >= 512 || byte_of[cp] < 0) {
                rc = lnl_err(e, "%s: token '%s' (id %d) has a character outside GPT-2's byte alphabet", path,
                             shown(c->string, buf), id);
                break;
            }
            i += (size_t)l;
            nb++;
        }
        if (rc) break;
        if (nb == 0) {
            rc = lnl_err(e, "%s: empty token (id %d)", path, id);
            break;
        }
        len_of[id] = nb;
        total += nb;
    }
    free(seen);
    if (rc) {
        free(len_of);
        return -1;
    }
    /* Second pass: the bytes of each id. */
    t->tok_off = lnl_malloc(((size_t)n + 1) * sizeof *t->tok_off);
    t->tok_bytes = lnl_malloc(total ? total : 1);
    t->tok_off[0] = 0;
    for (int id = 0; id < n; id++) t->tok_off[id + 1] = t->tok_off[id] + len_of[id];
    free(len_of);
    for (cJSON *c = root->child; c; c = c->next) {
        const uint8_t *s = (const uint8_t *)c->string;
        size_t klen = strlen(c->string);
        uint8_t *o = t->tok_bytes + t->tok_off[(int)c->valuedouble];
        for (size_t i = 0; i < klen;) {
            uint32_t cp;
            i += (size_t)utf8_decode(s + i, klen - i, &cp);
            *o++ = (uint8_t)byte_of[cp];
        }
    }
    for (int b = 0; b < 256; b++) {
        char ch[4];
        int l = utf8_encode(cp_of[b], ch);
        StrSlot *sl = str_slot(map, ch, (size_t)l);
        if (!sl->key) return lnl_err(e, "%s: no token for byte 0x%02X", path, b);
        t->byte_id[b] = sl->id;
    }
    StrSlot *eot = str_slot(map, EOT_TEXT, strlen(EOT_TEXT));
    if (!eot->key) return lnl_err(e, "%s: no %s token", path, EOT_TEXT);
    t->eot = eot->id;
    return 0;
}

/* Reads vocab.bpe: an optional "#version" line, then one merge "LEFT RIGHT" per line, in rank
 * order. Both sides and their concatenation must be tokens of encoder.json. */
static int load_merges(LnlTokenizer *t, const char *path, StrMap *map, const char *enc_name, LnlErr *e) {
    char *text;
    size_t len;
    if (lnl_read_file(path, &text, &len, e)) return -1;
    size_t nlines = 1;
    for (size_t i = 0; i < len; i++) nlines += text[i] == '\n';
    t->merges.cap = 1;
    while (t->merges.cap < 2 * nlines) t->merges.cap *= 2;
    t->merges.slots = lnl_calloc(t->merges.cap, sizeof *t->merges.slots);
    char *joined = lnl_malloc(len + 1);
    char b1[64], b2[64];
    uint32_t rank = 0;
    size_t lineno = 0;
    int rc = 0;
    char *p = text, *end = text + len;
    while (p < end && !rc) {
        char *nl = memchr(p, '\n', (size_t)(end - p));
        char *le = nl ? nl : end;
        char *next = nl ? nl + 1 : end;
        lineno++;
        if (le > p && le[-1] == '\r') le--;
        *le = 0;
        if (lineno == 1 && strncmp(p, "#version", 8) == 0) {
            p = next;
            continue;
        }
        if (le == p) {
            /* Blank lines are allowed only at the end of the file. */
            for (char *q = next; q < end; q++)
                if (*q != '\n' && *q != '\r') {
                    rc = lnl_err(e, "%s: line %zu: empty line before the end of the merges", path, lineno);
                    break;
                }
            break;
        }
        char *sp = strchr(p, ' ');
        if (!sp || sp == p || !sp[1] || strchr(sp + 1, ' ')) {
            rc = lnl_err(e, "%s: line %zu: expected two tokens separated by one space, got '%s'", path, lineno,
                         shown(p, b1));
            break;
        }
        *sp = 0;
        const char *l = p, *r = sp + 1;
        StrSlot *sa = str_slot(map, l, strlen(l)), *sb = str_slot(map, r, strlen(r));
        size_t ll = strlen(l), rl = strlen(r);
        memcpy(joined, l, ll);
        memcpy(joined + ll, r, rl);
        joined[ll + rl] = 0;
        StrSlot *sj = str_slot(map, joined, ll + rl);
        if (!sa->key || !sb->key) {
            rc = lnl_err(e, "%s: line %zu: token '%s' is not in %s", path, lineno, shown(sa->key ? r : l, b1),
                         enc_name);
            break;
        }
        if (!sj->key) {
            rc = lnl_err(e, "%s: line %zu: merged token '%s' is not in %s", path, lineno, shown(joined, b1),
                         enc_name);
            break;
        }
        MergeSlot *dup = merge_insert(&t->merges, sa->id, sb->id, rank, sj->id);
        if (dup) {
            rc = lnl_err(e, "%s: line %zu: merge '%s %s' repeats an earlier line", path, lineno, shown(l, b1),
                         shown(r, b2));
            break;
        }
        rank++;
        p = next;
    }
    free(joined);
    free(text);
    if (rc) return -1;
    if (rank == 0) return lnl_err(e, "%s: no merges", path);
    return 0;
}

static int open_gpt2(LnlTokenizer *t, const char *dir, LnlErr *e) {
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return lnl_err(e, "GPT-2 vocabulary directory %s does not exist; " SETUP_HINT, dir);
    const char *enc_name = "encoder.json", *bpe_name = "vocab.bpe";
    char *enc = lnl_path_join(dir, enc_name);
    if (!is_file(enc)) {
        char *hf = lnl_path_join(dir, "vocab.json");
        if (is_file(hf)) {
            free(enc);
            enc = hf;
            enc_name = "vocab.json";
            bpe_name = "merges.txt";
        } else {
            free(hf);
            free(enc);
            return lnl_err(e, "no GPT-2 vocabulary in %s (need encoder.json + vocab.bpe, or vocab.json + merges.txt); " SETUP_HINT, dir);
        }
    }
    char *bpe = lnl_path_join(dir, bpe_name);
    int rc = 0;
    cJSON *root = NULL;
    StrMap map = {0};
    if (!is_file(bpe)) rc = lnl_err(e, "%s is missing (%s is there); " SETUP_HINT, bpe, enc_name);
    if (!rc) rc = load_encoder(t, enc, &root, &map, e);
    if (!rc) rc = load_merges(t, bpe, &map, enc_name, e);
    if (!rc) rc = compile_regex(t, e);
    cJSON_Delete(root);
    free(map.slots);
    free(enc);
    free(bpe);
    if (rc) return -1;
    t->cache.slots = lnl_calloc(CACHE_SLOTS, sizeof *t->cache.slots);
    return 0;
}

int lnl_tok_open(LnlTokenizer **out, const char *kind, const char *vocab_dir, LnlErr *e) {
    *out = NULL;
    LnlTokenizer *t = lnl_calloc(1, sizeof *t);
    if (strcmp(kind, "byte") == 0) {
        t->kind = KIND_BYTE;
        t->vocab_size = LNL_BYTE_VOCAB;
        t->eot = LNL_BYTE_EOT;
    } else if (strcmp(kind, "gpt2") == 0) {
        t->kind = KIND_GPT2;
        char *dir = vocab_dir ? lnl_strdup(vocab_dir) : lnl_tok_default_vocab_dir();
        int rc = open_gpt2(t, dir, e);
        free(dir);
        if (rc) {
            lnl_tok_free(t);
            return -1;
        }
    } else {
        free(t);
        return lnl_err(e, "unknown tokenizer '%s' (expected gpt2 or byte)", kind);
    }
    *out = t;
    return 0;
}

void lnl_tok_free(LnlTokenizer *t) {
    if (!t) return;
    free(t->tok_off);
    free(t->tok_bytes);
    free(t->merges.slots);
    pcre2_match_data_free(t->md);
    pcre2_code_free(t->re);
    free(t->cache.slots);
    lnl_buf_free(&t->cache.keys);
    lnl_ids_free(&t->cache.ids);
    free(t->sym);
    free(t->prev);
    free(t->next);
    free(t->heap);
    free(t->batch);
    free(t);
}

const char *lnl_tok_kind(const LnlTokenizer *t) { return t->kind == KIND_GPT2 ? "gpt2" : "byte"; }
int lnl_tok_vocab_size(const LnlTokenizer *t) { return t->vocab_size; }
const char *lnl_tok_kind_for_vocab(int vocab_size) {
    return vocab_size == LNL_BYTE_VOCAB ? "byte" : vocab_size == LNL_GPT2_VOCAB ? "gpt2" : NULL;
}
int lnl_tok_eot(const LnlTokenizer *t) { return t->eot; }

/* ---- BPE ---------------------------------------------------------------------------------- */

static int heap_less(const HeapEnt *x, const HeapEnt *y) {
    return x->rank < y->rank || (x->rank == y->rank && x->pos < y->pos);
}

static void heap_push(HeapEnt *h, size_t *n, HeapEnt v) {
    size_t i = (*n)++;
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!heap_less(&v, &h[p])) break;
        h[i] = h[p];
        i = p;
    }
    h[i] = v;
}

static HeapEnt heap_pop(HeapEnt *h, size_t *n) {
    HeapEnt top = h[0], last = h[--*n];
    size_t i = 0, m = *n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= m) break;
        if (c + 1 < m && heap_less(&h[c + 1], &h[c])) c++;
        if (!heap_less(&h[c], &last)) break;
        h[i] = h[c];
        i = c;
    }
    if (m) h[i] = last;
    return top;
}

static void push_pair(LnlTokenizer *t, size_t *nheap, int32_t left) {
    if (left < 0) return;
    int32_t right = t->next[left];
    if (right < 0) return;
    const MergeSlot *m = merge_find(&t->merges, t->sym[left], t->sym[right]);
    if (m) heap_push(t->heap, nheap, (HeapEnt){m->rank, left, t->sym[left], t->sym[right]});
}

/* Encodes one pre-token. Same result as the reference's loop (take the lowest-ranked adjacent
 * pair, merge all its occurrences left to right, repeat), in O(n log n): a heap ordered by
 * (rank, position) yields the occurrences of one rank left to right, and they are merged as a
 * batch before any pair the batch creates is looked at. */
static void bpe(LnlTokenizer *t, const uint8_t *s, size_t n, LnlIds *out) {
    if (n > t->scratch_cap) {
        size_t cap = t->scratch_cap ? t->scratch_cap : 64;
        while (cap < n) cap *= 2;
        t->sym = lnl_realloc(t->sym, cap * sizeof *t->sym);
        t->prev = lnl_realloc(t->prev, cap * sizeof *t->prev);
        t->next = lnl_realloc(t->next, cap * sizeof *t->next);
        t->heap = lnl_realloc(t->heap, 3 * cap * sizeof *t->heap);
        t->batch = lnl_realloc(t->batch, 3 * cap * sizeof *t->batch);
        t->scratch_cap = cap;
    }
    for (size_t i = 0; i < n; i++) {
        t->sym[i] = t->byte_id[s[i]];
        t->prev[i] = (int32_t)i - 1;
        t->next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t nheap = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(t, &nheap, (int32_t)i);
    while (nheap) {
        uint32_t rank = t->heap[0].rank;
        size_t nb = 0;
        while (nheap && t->heap[0].rank == rank) t->batch[nb++] = heap_pop(t->heap, &nheap);
        for (size_t k = 0; k < nb; k++) {
            HeapEnt h = t->batch[k];
            int32_t l = h.pos, r = t->next[l];
            if (t->sym[l] != h.a || r < 0 || t->sym[r] != h.b) continue; /* stale */
            t->sym[l] = merge_find(&t->merges, h.a, h.b)->id;
            t->sym[r] = -1;
            t->next[l] = t->next[r];
            if (t->next[r] >= 0) t->prev[t->next[r]] = l;
            push_pair(t, &nheap, t->prev[l]);
            push_pair(t, &nheap, l);
        }
    }
    for (int32_t i = 0; i >= 0; i = t->next[i]) lnl_ids_push(out, t->sym[i]);
}

static void cache_clear(Cache *c) {
    memset(c->slots, 0, CACHE_SLOTS * sizeof *c->slots);
    c->n = 0;
    c->keys.len = 0;
    c->ids.n = 0;
}

static void encode_pretoken(LnlTokenizer *t, const uint8_t *s, size_t n, LnlIds *out) {
    if (n == 1) {
        lnl_ids_push(out, t->byte_id[s[0]]);
        return;
    }
    if (n > CACHE_KEY_MAX) {
        bpe(t, s, n, out);
        return;
    }
    Cache *c = &t->cache;
    uint64_t h = hash_bytes(s, n);
    size_t mask = CACHE_SLOTS - 1, i = h & mask;
    for (;; i = (i + 1) & mask) {
        CacheSlot *sl = &c->slots[i];
        if (sl->key_len == 0) break;
        if (sl->hash == h && sl->key_len == n && memcmp(c->keys.data + sl->key_off, s, n) == 0) {
            ids_reserve(out, sl->nids);
            memcpy(out->ids + out->n, c->ids.ids + sl->ids_off, sl->nids * sizeof *out->ids);
            out->n += sl->nids;
            return;
        }
    }
    size_t start = out->n;
    bpe(t, s, n, out);
    if (c->n >= CACHE_MAX || c->keys.len + n > CACHE_ARENA_MAX) {
        cache_clear(c);
        for (i = h & mask; c->slots[i].key_len; i = (i + 1) & mask) {}
    }
    CacheSlot *sl = &c->slots[i];
    sl->hash = h;
    sl->key_off = (uint32_t)c->keys.len;
    sl->key_len = (uint32_t)n;
    sl->ids_off = (uint32_t)c->ids.n;
    sl->nids = (uint32_t)(out->n - start);
    lnl_buf_append(&c->keys, s, n);
    ids_reserve(&c->ids, sl->nids);
    memcpy(c->ids.ids + c->ids.n, out->ids + start, sl->nids * sizeof *out->ids);
    c->ids.n += sl->nids;
    c->n++;
}

int lnl_tok_encode(LnlTokenizer *t, const uint8_t *text, size_t n, LnlIds *out, LnlErr *e) {
    if (t->kind == KIND_BYTE) {
        ids_reserve(out, n);
        for (size_t i = 0; i < n; i++) out->ids[out->n++] = text[i];
        return 0;
    }
    size_t off = 0;
    while (off < n) {
        int rc = t->jit ? pcre2_jit_match(t->re, text, n, off, 0, t->md, NULL)
                        : pcre2_match(t->re, text, n, off, 0, t->md, NULL);
        size_t ms = n, me = n;
        if (rc >= 0) {
            PCRE2_SIZE *ov = pcre2_get_ovector_pointer(t->md);
            ms = ov[0];
            me = ov[1];
        } else if (rc != PCRE2_ERROR_NOMATCH) {
            PCRE2_UCHAR msg[256];
            pcre2_get_error_message(rc, msg, sizeof msg);
            return lnl_err(e, "tokenizer: PCRE2 failed at byte %zu: %s", off, msg);
        }
        /* Bytes the regex skipped over are invalid UTF-8: they form a pre-token of their own. */
        if (ms > off) encode_pretoken(t, text + off, ms - off, out);
        if (me > ms) encode_pretoken(t, text + ms, me - ms, out);
        off = me;
    }
    return 0;
}

int lnl_tok_decode(const LnlTokenizer *t, const int32_t *ids, size_t n, LnlBuf *out, LnlErr *e) {
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= t->vocab_size)
            return lnl_err(e, "token %zu: id %d is out of range [0, %d]", i + 1, (int)ids[i], t->vocab_size - 1);
    if (t->kind == KIND_BYTE) {
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == LNL_BYTE_EOT) {
                lnl_buf_append(out, EOT_TEXT, sizeof EOT_TEXT - 1);
            } else {
                uint8_t b = (uint8_t)ids[i];
                lnl_buf_append(out, &b, 1);
            }
        }
        return 0;
    }
    for (size_t i = 0; i < n; i++)
        lnl_buf_append(out, t->tok_bytes + t->tok_off[ids[i]], t->tok_off[ids[i] + 1] - t->tok_off[ids[i]]);
    return 0;
}

int lnl_read_input(const char *path, LnlBuf *out, LnlErr *e) {
    int use_stdin = !path || strcmp(path, "-") == 0;
    const char *name = use_stdin ? "stdin" : path;
    FILE *f = use_stdin ? stdin : fopen(path, "rb");
    if (!f) return lnl_err(e, "%s: %s", name, strerror(errno));
    char buf[1 << 16];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0) lnl_buf_append(out, buf, got);
    int bad = ferror(f), err = errno;
    if (!use_stdin) fclose(f);
    if (bad) return lnl_err(e, "%s: read error: %s", name, strerror(err));
    return 0;
}
