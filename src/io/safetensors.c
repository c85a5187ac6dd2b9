/* Safetensors reader (mmap + strict validation) and atomic writer; format in safetensors.h and
 * docs/FORMATS.md. */
#include "safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/crc32.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors data is little-endian; this reader assumes a little-endian host"
#endif

/* JSON numbers are doubles in cJSON: integers above 2^53 cannot be represented exactly. */
#define MAX_JSON_INT 9007199254740992.0

static const struct {
    const char *name;
    size_t size;
} dtypes[LNL_ST_N_DTYPES] = {
    [LNL_ST_F32] = {"F32", 4},         [LNL_ST_F16] = {"F16", 2},         [LNL_ST_BF16] = {"BF16", 2},
    [LNL_ST_F64] = {"F64", 8},         [LNL_ST_I64] = {"I64", 8},         [LNL_ST_I32] = {"I32", 4},
    [LNL_ST_I16] = {"I16", 2},         [LNL_ST_I8] = {"I8", 1},           [LNL_ST_U8] = {"U8", 1},
    [LNL_ST_U16] = {"U16", 2},         [LNL_ST_U32] = {"U32", 4},         [LNL_ST_U64] = {"U64", 8},
    [LNL_ST_BOOL] = {"BOOL", 1},       [LNL_ST_F8_E4M3] = {"F8_E4M3", 1}, [LNL_ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *lnl_st_dtype_name(int dtype) {
    return dtype >= 0 && dtype < LNL_ST_N_DTYPES ? dtypes[dtype].name : NULL;
}

size_t lnl_st_dtype_size(int dtype) {
    return dtype >= 0 && dtype < LNL_ST_N_DTYPES ? dtypes[dtype].size : 0;
}

int lnl_st_dtype_parse(const char *name) {
    for (int i = 0; i < LNL_ST_N_DTYPES; i++)
        if (strcmp(name, dtypes[i].name) == 0) return i;
    return -1;
}

static int mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    if (a != 0 && b > UINT64_MAX / a) return -1;
    *out = a * b;
    return 0;
}

/* Returns the offset of the first byte that is not valid UTF-8, or n if all are. */
static size_t utf8_bad_at(const uint8_t *s, size_t n) {
    size_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        size_t len;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            len = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            len = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            len = 4;
            cp = c & 0x07;
        } else {
            return i;
        }
        if (i + len > n) return i;
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) return i;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
        i += len;
    }
    return n;
}

/* ---------------------------------------------------------------------------------------------
 * Reader */

static int cmp_by_name(const void *a, const void *b) {
    return strcmp((*(const LnlStTensor *const *)a)->name, (*(const LnlStTensor *const *)b)->name);
}

static int cmp_by_offset(const void *a, const void *b) {
    const LnlStTensor *x = *(const LnlStTensor *const *)a, *y = *(const LnlStTensor *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return 0;
}

/* The tensors as pointers sorted by cmp. Caller frees. */
static const LnlStTensor **sorted(const LnlSafetensors *st, int (*cmp)(const void *, const void *)) {
    const LnlStTensor **v = lnl_malloc(((size_t)st->n + 1) * sizeof *v);
    for (int i = 0; i < st->n; i++) v[i] = &st->tensors[i];
    qsort(v, (size_t)st->n, sizeof *v, cmp);
    return v;
}

/* A JSON number that is a non-negative integer representable exactly. */
static int json_uint(const cJSON *j, uint64_t *out) {
    if (!cJSON_IsNumber(j)) return -1;
    double d = j->valuedouble;
    if (!(d >= 0) || d > MAX_JSON_INT || d != floor(d)) return -1;
    *out = (uint64_t)d;
    return 0;
}

static int parse_tensor(LnlSafetensors *st, LnlStTensor *t, const cJSON *j, uint64_t data_len, LnlErr *e) {
    const char *p = st->path, *nm = t->name;
    if (!cJSON_IsObject(j)) return lnl_err(e, "%s: tensor '%.200s': header entry is not a JSON object", p, nm);
    const cJSON *jd = cJSON_GetObjectItemCaseSensitive(j, "dtype");
    const cJSON *js = cJSON_GetObjectItemCaseSensitive(j, "shape");
    const cJSON *jo = cJSON_GetObjectItemCaseSensitive(j, "data_offsets");
    if (!jd) return lnl_err(e, "%s: tensor '%.200s': missing field 'dtype'", p, nm);
    if (!cJSON_IsString(jd)) return lnl_err(e, "%s: tensor '%.200s': field 'dtype' is not a string", p, nm);
    t->dtype = lnl_st_dtype_parse(jd->valuestring);
    if (t->dtype < 0) return lnl_err(e, "%s: tensor '%.200s': unknown dtype '%.40s'", p, nm, jd->valuestring);
    if (!js) return lnl_err(e, "%s: tensor '%.200s': missing field 'shape'", p, nm);
    if (!cJSON_IsArray(js)) return lnl_err(e, "%s: tensor '%.200s': field 'shape' is not an array", p, nm);
    int nd = cJSON_GetArraySize(js);
    if (nd > LNL_ST_MAX_DIMS)
        return lnl_err(e, "%s: tensor '%.200s': shape has %d dimensions, at most %d supported", p, nm, nd,
                       LNL_ST_MAX_DIMS);
    t->ndim = nd;
    uint64_t numel = 1;
    int overflow = 0;
    for (int d = 0; d < nd; d++) {
        uint64_t v;
        if (json_uint(cJSON_GetArrayItem(js, d), &v))
            return lnl_err(e, "%s: tensor '%.200s': shape[%d] is not a non-negative integer", p, nm, d);
        t->shape[d] = (int64_t)v;
        if (!overflow && mul_u64(numel, v, &numel)) overflow = 1;
    }
    uint64_t nbytes;
    if (overflow || mul_u64(numel, lnl_st_dtype_size(t->dtype), &nbytes))
        return lnl_err(e, "%s: tensor '%.200s': shape is too large (element count overflows 64 bits)", p, nm);
    t->numel = numel;
    if (!jo) return lnl_err(e, "%s: tensor '%.200s': missing field 'data_offsets'", p, nm);
    uint64_t b, en;
    if (!cJSON_IsArray(jo) || cJSON_GetArraySize(jo) != 2 || json_uint(cJSON_GetArrayItem(jo, 0), &b) ||
        json_uint(cJSON_GetArrayItem(jo, 1), &en))
        return lnl_err(e, "%s: tensor '%.200s': data_offsets must be [begin, end], two non-negative integers", p,
                       nm);
    if (en < b) return lnl_err(e, "%s: tensor '%.200s': data_offsets [%llu, %llu] end before begin", p, nm,
                               (unsigned long long)b, (unsigned long long)en);
    if (en > data_len)
        return lnl_err(e, "%s: tensor '%.200s': data_offsets [%llu, %llu] past the end of the data section (%llu bytes)",
                       p, nm, (unsigned long long)b, (unsigned long long)en, (unsigned long long)data_len);
    if (en - b != nbytes)
        return lnl_err(e, "%s: tensor '%.200s': %s shape needs %llu bytes, data_offsets [%llu, %llu] give %llu", p,
                       nm, lnl_st_dtype_name(t->dtype), (unsigned long long)nbytes, (unsigned long long)b,
                       (unsigned long long)en, (unsigned long long)(en - b));
    t->begin = b;
    t->end = en;
    return 0;
}

static int parse_metadata(LnlSafetensors *st, const cJSON *j, LnlErr *e) {
    if (!cJSON_IsObject(j)) return lnl_err(e, "%s: %s is not a JSON object", st->path, LNL_ST_METADATA_KEY);
    int n = cJSON_GetArraySize(j);
    st->meta_keys = lnl_calloc((size_t)n + 1, sizeof(char *));
    st->meta_vals = lnl_calloc((size_t)n + 1, sizeof(char *));
    const cJSON *m;
    cJSON_ArrayForEach(m, j) {
        if (!cJSON_IsString(m))
            return lnl_err(e, "%s: %s['%.200s']: value is not a string", st->path, LNL_ST_METADATA_KEY, m->string);
        for (int k = 0; k < st->n_meta; k++)
            if (strcmp(st->meta_keys[k], m->string) == 0)
                return lnl_err(e, "%s: %s: duplicate key '%.200s'", st->path, LNL_ST_METADATA_KEY, m->string);
        st->meta_keys[st->n_meta] = lnl_strdup(m->string);
        st->meta_vals[st->n_meta] = lnl_strdup(m->valuestring);
        st->n_meta++;
    }
    return 0;
}

/* Every byte of the data section belongs to exactly one tensor. */
static int check_coverage(LnlSafetensors *st, uint64_t data_len, LnlErr *e) {
    const LnlStTensor **v = sorted(st, cmp_by_offset);
    uint64_t at = 0;
    const LnlStTensor *prev = NULL; /* the tensor that ends at `at` */
    int r = 0;
    for (int i = 0; i < st->n && !r; i++) {
        const LnlStTensor *t = v[i];
        if (t->begin < at)
            r = lnl_err(e, "%s: tensors '%.200s' [%llu, %llu] and '%.200s' [%llu, %llu] overlap in the data section",
                        st->path, prev->name, (unsigned long long)prev->begin, (unsigned long long)prev->end,
                        t->name, (unsigned long long)t->begin, (unsigned long long)t->end);
        else if (t->begin > at)
            r = lnl_err(e, "%s: bytes [%llu, %llu) of the data section belong to no tensor (hole before '%.200s')",
                        st->path, (unsigned long long)at, (unsigned long long)t->begin, t->name);
        if (t->end > at || !prev) {
            at = t->end;
            prev = t;
        }
    }
    if (!r && at != data_len)
        r = lnl_err(e, "%s: the data section has %llu bytes but the tensors end at %llu (trailing bytes)", st->path,
                    (unsigned long long)data_len, (unsigned long long)at);
    free(v);
    return r;
}

static int check_names(LnlSafetensors *st, LnlErr *e) {
    const LnlStTensor **v = sorted(st, cmp_by_name);
    int r = 0;
    st->by_name = lnl_malloc(((size_t)st->n + 1) * sizeof(int));
    for (int i = 0; i < st->n; i++) {
        st->by_name[i] = (int)(v[i] - st->tensors);
        if (i && !r && strcmp(v[i]->name, v[i - 1]->name) == 0)
            r = lnl_err(e, "%s: duplicate tensor name '%.200s' in the header", st->path, v[i]->name);
    }
    free(v);
    return r;
}

/* Verifies the LNL_ST_CRC_KEY checksums, if the file has them: one entry per tensor, each
 * matching the tensor's bytes. */
static int check_crcs(LnlSafetensors *st, LnlErr *e) {
    const char *js = lnl_st_meta(st, LNL_ST_CRC_KEY);
    if (!js) return 0;
    const char *p = st->path, *k = LNL_ST_CRC_KEY;
    cJSON *o = cJSON_Parse(js);
    int r = 0;
    if (!cJSON_IsObject(o)) {
        r = lnl_err(e, "%s: %s['%s'] is not a JSON object of checksums", p, LNL_ST_METADATA_KEY, k);
        goto done;
    }
    char *seen = lnl_calloc((size_t)st->n + 1, 1);
    const cJSON *c;
    cJSON_ArrayForEach(c, o) {
        uint32_t want;
        const LnlStTensor *t = lnl_st_find(st, c->string);
        if (!t) {
            r = lnl_err(e, "%s: %s lists '%.200s', which is not a tensor of the file", p, k, c->string);
            break;
        }
        if (seen[t - st->tensors]) {
            r = lnl_err(e, "%s: %s lists tensor '%.200s' twice", p, k, c->string);
            break;
        }
        seen[t - st->tensors] = 1;
        if (!cJSON_IsString(c) || lnl_crc32_parse_hex(c->valuestring, &want)) {
            r = lnl_err(e, "%s: %s: the checksum of tensor '%.200s' is not 8 hex digits", p, k, c->string);
            break;
        }
        uint32_t got = lnl_crc32(0, lnl_st_data(st, t), (size_t)(t->end - t->begin));
        if (got != want) {
            r = lnl_err(e, "%s: tensor '%.200s': checksum mismatch (%s has %08x, the data gives %08x): the file is "
                           "corrupt",
                        p, t->name, k, (unsigned)want, (unsigned)got);
            break;
        }
    }
    for (int i = 0; i < st->n && !r; i++)
        if (!seen[i]) r = lnl_err(e, "%s: tensor '%.200s' has no checksum in %s", p, st->tensors[i].name, k);
    free(seen);
done:
    cJSON_Delete(o);
    return r;
}

static int parse_header(LnlSafetensors *st, uint64_t hlen, LnlErr *e) {
    const char *p = st->path;
    const uint8_t *h = st->map + 8;
    uint64_t data_len = st->map_len - st->data_start;
    if (hlen == 0 || h[0] != '{')
        return lnl_err(e, "%s: header at offset 8 does not start with '{' (not a safetensors file?)", p);
    const uint8_t *nul = memchr(h, 0, (size_t)hlen);
    if (nul) return lnl_err(e, "%s: header contains a NUL byte at offset %llu", p, (unsigned long long)(8 + (nul - h)));
    size_t bad = utf8_bad_at(h, (size_t)hlen);
    if (bad != hlen) return lnl_err(e, "%s: header is not valid UTF-8 at offset %llu", p, (unsigned long long)(8 + bad));
    char *text = lnl_malloc((size_t)hlen + 1);
    memcpy(text, h, (size_t)hlen);
    text[hlen] = 0;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
    int r = 0;
    if (!root) {
        size_t at = end && end >= text ? (size_t)(end - text) : 0;
        r = lnl_err(e, "%s: header is not valid JSON (error near offset %llu)", p, (unsigned long long)(8 + at));
    } else if (!cJSON_IsObject(root)) {
        r = lnl_err(e, "%s: header is not a JSON object", p);
    } else {
        int n = cJSON_GetArraySize(root);
        st->tensors = lnl_calloc((size_t)n + 1, sizeof(LnlStTensor));
        const cJSON *j;
        int seen_meta = 0;
        cJSON_ArrayForEach(j, root) {
            if (strcmp(j->string, LNL_ST_METADATA_KEY) == 0) {
                if (seen_meta) {
                    r = lnl_err(e, "%s: %s appears twice in the header", p, LNL_ST_METADATA_KEY);
                    break;
                }
                seen_meta = 1;
                if ((r = parse_metadata(st, j, e))) break;
                continue;
            }
            LnlStTensor *t = &st->tensors[st->n++];
            t->name = lnl_strdup(j->string);
            if ((r = parse_tensor(st, t, j, data_len, e))) break;
        }
        if (!r) r = check_names(st, e);
        if (!r) r = check_coverage(st, data_len, e);
        if (!r) r = check_crcs(st, e);
    }
    cJSON_Delete(root);
    free(text);
    return r;
}

int lnl_st_open(LnlSafetensors *st, const char *path, LnlErr *e) {
    memset(st, 0, sizeof *st);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return lnl_err(e, "%s: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int r = lnl_err(e, "%s: %s", path, strerror(errno));
        close(fd);
        return r;
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        return lnl_err(e, "%s: not a regular file", path);
    }
    uint64_t size = (uint64_t)sb.st_size;
    if (size < 8) {
        close(fd);
        return lnl_err(e, "%s: file is %llu bytes, too short for the 8-byte header length (not a safetensors file?)",
                       path, (unsigned long long)size);
    }
    void *map = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
    int mmap_errno = errno;
    close(fd);
    if (map == MAP_FAILED) return lnl_err(e, "%s: cannot map %llu bytes: %s", path, (unsigned long long)size,
                                          strerror(mmap_errno));
    st->path = lnl_strdup(path);
    st->map = map;
    st->map_len = (size_t)size;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | st->map[i];
    int r;
    if (hlen > LNL_ST_MAX_HEADER)
        r = lnl_err(e, "%s: header length %llu at offset 0 exceeds the limit of %llu bytes (not a safetensors file?)",
                    path, (unsigned long long)hlen, LNL_ST_MAX_HEADER);
    else if (hlen > size - 8)
        r = lnl_err(e, "%s: header length %llu at offset 0 is past the end of the file (%llu bytes after the length)",
                    path, (unsigned long long)hlen, (unsigned long long)(size - 8));
    else {
        st->data_start = 8 + hlen;
        r = parse_header(st, hlen, e);
    }
    if (r) lnl_st_close(st);
    return r;
}

void lnl_st_close(LnlSafetensors *st) {
    if (st->map) munmap((void *)st->map, st->map_len);
    for (int i = 0; i < st->n; i++) free(st->tensors[i].name);
    for (int i = 0; i < st->n_meta; i++) {
        free(st->meta_keys[i]);
        free(st->meta_vals[i]);
    }
    free(st->tensors);
    free(st->meta_keys);
    free(st->meta_vals);
    free(st->by_name);
    free(st->path);
    memset(st, 0, sizeof *st);
}

const LnlStTensor *lnl_st_find(const LnlSafetensors *st, const char *name) {
    int lo = 0, hi = st->n - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        const LnlStTensor *t = &st->tensors[st->by_name[mid]];
        int c = strcmp(name, t->name);
        if (c == 0) return t;
        if (c < 0) hi = mid - 1;
        else lo = mid + 1;
    }
    return NULL;
}

const LnlStTensor *lnl_st_find_prefixed(const LnlSafetensors *st, const char *prefix, const char *name) {
    const LnlStTensor *t = lnl_st_find(st, name);
    if (t || !prefix || !*prefix) return t;
    char *full = lnl_malloc(strlen(prefix) + strlen(name) + 1);
    strcpy(full, prefix);
    strcat(full, name);
    t = lnl_st_find(st, full);
    free(full);
    return t;
}

const char *lnl_st_meta(const LnlSafetensors *st, const char *key) {
    for (int i = 0; i < st->n_meta; i++)
        if (strcmp(st->meta_keys[i], key) == 0) return st->meta_vals[i];
    return NULL;
}

const void *lnl_st_data(const LnlSafetensors *st, const LnlStTensor *t) {
    return st->map + st->data_start + t->begin;
}

static float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h >> 15) << 31, exp = (h >> 10) & 0x1f, mant = h & 0x3ff;
    uint32_t bits;
    if (exp == 0) {
        float v = ldexpf((float)mant, -24); /* zero or subnormal: mant * 2^-24 */
        return sign ? -v : v;
    }
    if (exp == 31) bits = sign | 0x7f800000u | (mant << 13); /* inf / nan, payload kept */
    else bits = sign | ((exp + 112) << 23) | (mant << 13);    /* rebias 15 -> 127 */
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

static int check_count(const LnlSafetensors *st, const LnlStTensor *t, size_t n_expected, LnlErr *e) {
    if (t->numel != (uint64_t)n_expected) {
        char shape[160] = "";
        size_t k = 0;
        for (int d = 0; d < t->ndim && k < sizeof shape - 24; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, "%s%lld", d ? ", " : "", (long long)t->shape[d]);
        return lnl_err(e, "%s: tensor '%.200s': expected %zu elements, found %llu (shape [%s])", st->path, t->name,
                       n_expected, (unsigned long long)t->numel, shape);
    }
    return 0;
}

int lnl_st_tensor_f32(const LnlSafetensors *st, const LnlStTensor *t, float *out, size_t n_expected, LnlErr *e) {
    if (check_count(st, t, n_expected, e)) return -1;
    const uint8_t *src = lnl_st_data(st, t);
    size_t n = (size_t)t->numel;
    switch (t->dtype) {
    case LNL_ST_F32:
        if (n) memcpy(out, src, n * 4);
        return 0;
    case LNL_ST_F16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            out[i] = f16_to_f32(h);
        }
        return 0;
    case LNL_ST_BF16:
        for (size_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, src + 2 * i, 2);
            uint32_t bits = (uint32_t)h << 16;
            memcpy(&out[i], &bits, 4);
        }
        return 0;
    case LNL_ST_F64:
        for (size_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, src + 8 * i, 8);
            out[i] = (float)d;
        }
        return 0;
    default:
        return lnl_err(e, "%s: tensor '%.200s': dtype %s cannot be read as float (F32, F16, BF16 or F64 expected)",
                       st->path, t->name, lnl_st_dtype_name(t->dtype));
    }
}

int lnl_st_read_f32(const LnlSafetensors *st, const char *name, float *out, size_t n_expected, LnlErr *e) {
    const LnlStTensor *t = lnl_st_find(st, name);
    if (!t) return lnl_err(e, "%s: tensor '%.200s' not found", st->path, name);
    return lnl_st_tensor_f32(st, t, out, n_expected, e);
}

int lnl_st_read_i32(const LnlSafetensors *st, const char *name, int32_t *out, size_t n_expected, LnlErr *e) {
    const LnlStTensor *t = lnl_st_find(st, name);
    if (!t) return lnl_err(e, "%s: tensor '%.200s' not found", st->path, name);
    if (check_count(st, t, n_expected, e)) return -1;
    const uint8_t *src = lnl_st_data(st, t);
    size_t n = (size_t)t->numel;
    for (size_t i = 0; i < n; i++) {
        int64_t v;
        int ok = 1;
        switch (t->dtype) {
        case LNL_ST_I8: v = (int8_t)src[i]; break;
        case LNL_ST_U8: v = src[i]; break;
        case LNL_ST_BOOL: v = src[i] != 0; break;
        case LNL_ST_I16: { int16_t x; memcpy(&x, src + 2 * i, 2); v = x; break; }
        case LNL_ST_U16: { uint16_t x; memcpy(&x, src + 2 * i, 2); v = x; break; }
        case LNL_ST_I32: { int32_t x; memcpy(&x, src + 4 * i, 4); v = x; break; }
        case LNL_ST_U32: { uint32_t x; memcpy(&x, src + 4 * i, 4); v = x; break; }
        case LNL_ST_I64: memcpy(&v, src + 8 * i, 8); break;
        case LNL_ST_U64: {
            uint64_t x;
            memcpy(&x, src + 8 * i, 8);
            ok = x <= INT32_MAX;
            v = ok ? (int64_t)x : 0;
            break;
        }
        default:
            return lnl_err(e, "%s: tensor '%.200s': dtype %s cannot be read as int32 (an integer dtype expected)",
                           st->path, t->name, lnl_st_dtype_name(t->dtype));
        }
        if (!ok || v < INT32_MIN || v > INT32_MAX)
            return lnl_err(e, "%s: tensor '%.200s': element %zu does not fit in int32", st->path, t->name, i);
        out[i] = (int32_t)v;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Writer */

void lnl_stw_init(LnlStWriter *w) {
    memset(w, 0, sizeof *w);
}

static int valid_utf8(const char *s) {
    size_t n = strlen(s);
    return utf8_bad_at((const uint8_t *)s, n) == n;
}

/* Why a tensor cannot be added, or NULL. Fills t's shape and byte count. */
static const char *stw_check(const LnlStWriter *w, LnlStwTensor *t, const char *name, int ndim, const int64_t *shape) {
    if (!name || !*name) return "empty name";
    if (strcmp(name, LNL_ST_METADATA_KEY) == 0) return "reserved name";
    if (!valid_utf8(name)) return "name is not valid UTF-8";
    for (int i = 0; i < w->n - 1; i++)
        if (strcmp(w->t[i].name, name) == 0) return "added twice";
    size_t es = lnl_st_dtype_size(t->dtype);
    if (!es) return "unknown dtype";
    if (ndim < 0 || ndim > LNL_ST_MAX_DIMS) return "ndim must be 0..8";
    t->ndim = ndim;
    uint64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return "negative dimension";
        t->shape[d] = shape[d];
        if (mul_u64(numel, (uint64_t)shape[d], &numel)) return "too large";
    }
    if (mul_u64(numel, es, &t->nbytes) || (double)t->nbytes > MAX_JSON_INT) return "too large";
    if (t->nbytes && !t->data) return "NULL data for a non-empty tensor";
    return NULL;
}

void lnl_stw_add(LnlStWriter *w, const char *name, int dtype, int ndim, const int64_t *shape, const void *data,
                 int take_ownership) {
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 64;
        w->t = lnl_realloc(w->t, (size_t)w->cap * sizeof *w->t);
    }
    LnlStwTensor *t = &w->t[w->n++];
    memset(t, 0, sizeof *t);
    t->name = lnl_strdup(name ? name : "");
    t->dtype = dtype;
    t->data = data;
    t->owned = take_ownership;
    const char *why = stw_check(w, t, name, ndim, shape);
    if (why && !w->err[0]) snprintf(w->err, sizeof w->err, "tensor '%.200s': %s", t->name, why);
}

void lnl_stw_meta(LnlStWriter *w, const char *key, const char *value) {
    if (!valid_utf8(key) || !valid_utf8(value)) {
        if (!w->err[0]) snprintf(w->err, sizeof w->err, "metadata '%.200s': key or value is not valid UTF-8", key);
        return;
    }
    for (int i = 0; i < w->n_meta; i++) {
        if (strcmp(w->meta_keys[i], key) == 0) {
            free(w->meta_vals[i]);
            w->meta_vals[i] = lnl_strdup(value);
            return;
        }
    }
    if (w->n_meta == w->cap_meta) {
        w->cap_meta = w->cap_meta ? 2 * w->cap_meta : 16;
        w->meta_keys = lnl_realloc(w->meta_keys, (size_t)w->cap_meta * sizeof(char *));
        w->meta_vals = lnl_realloc(w->meta_vals, (size_t)w->cap_meta * sizeof(char *));
    }
    w->meta_keys[w->n_meta] = lnl_strdup(key);
    w->meta_vals[w->n_meta] = lnl_strdup(value);
    w->n_meta++;
}

static void json_string(LnlBuf *b, const char *s) {
    lnl_buf_append(b, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char esc[2] = {'\\', (char)*p};
            lnl_buf_append(b, esc, 2);
        } else if (*p < 0x20) {
            lnl_buf_printf(b, "\\u%04x", *p);
        } else {
            lnl_buf_append(b, p, 1);
        }
    }
    lnl_buf_append(b, "\"", 1);
}

/* Data-section order: element size 8, 4, 2, 1, and the order added within each size. */
static int *data_order(const LnlStWriter *w) {
    int *order = lnl_malloc(((size_t)w->n + 1) * sizeof(int));
    int k = 0;
    for (size_t es = 8; es >= 1; es /= 2)
        for (int i = 0; i < w->n; i++)
            if (lnl_st_dtype_size(w->t[i].dtype) == es) order[k++] = i;
    return order;
}

int lnl_stw_write(const LnlStWriter *w, const char *path, LnlErr *e) {
    if (w->err[0]) return lnl_err(e, "%s: %s", path, w->err);
    int *order = data_order(w);
    uint64_t *begin = lnl_malloc(((size_t)w->n + 1) * sizeof(uint64_t));
    uint64_t at = 0;
    for (int k = 0; k < w->n; k++) {
        begin[order[k]] = at;
        at += w->t[order[k]].nbytes;
    }
    LnlBuf crcs = {0};
    if (!w->no_checksums) {
        lnl_buf_append(&crcs, "{", 1);
        for (int i = 0; i < w->n; i++) {
            if (i) lnl_buf_append(&crcs, ",", 1);
            json_string(&crcs, w->t[i].name);
            lnl_buf_printf(&crcs, ":\"%08x\"", (unsigned)lnl_crc32(0, w->t[i].data, (size_t)w->t[i].nbytes));
        }
        lnl_buf_append(&crcs, "}", 1);
    }
    LnlBuf h = {0};
    lnl_buf_append(&h, "{", 1);
    int nm = 0;
    if (w->n_meta || crcs.len) {
        json_string(&h, LNL_ST_METADATA_KEY);
        lnl_buf_append(&h, ":{", 2);
        for (int i = 0; i < w->n_meta; i++) {
            if (crcs.len && strcmp(w->meta_keys[i], LNL_ST_CRC_KEY) == 0) continue;
            if (nm++) lnl_buf_append(&h, ",", 1);
            json_string(&h, w->meta_keys[i]);
            lnl_buf_append(&h, ":", 1);
            json_string(&h, w->meta_vals[i]);
        }
        if (crcs.len) {
            if (nm++) lnl_buf_append(&h, ",", 1);
            json_string(&h, LNL_ST_CRC_KEY);
            lnl_buf_append(&h, ":", 1);
            json_string(&h, crcs.data);
        }
        lnl_buf_append(&h, "}", 1);
    }
    lnl_buf_free(&crcs);
    for (int i = 0; i < w->n; i++) {
        const LnlStwTensor *t = &w->t[i];
        if (i || nm) lnl_buf_append(&h, ",", 1);
        json_string(&h, t->name);
        lnl_buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", lnl_st_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) lnl_buf_printf(&h, "%s%lld", d ? "," : "", (long long)t->shape[d]);
        lnl_buf_printf(&h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)begin[i],
                       (unsigned long long)(begin[i] + t->nbytes));
    }
    lnl_buf_append(&h, "}", 1);
    while (h.len % 8) lnl_buf_append(&h, " ", 1);
    int r = 0;
    if (h.len > LNL_ST_MAX_HEADER) {
        r = lnl_err(e, "%s: header would be %zu bytes, over the limit of %llu", path, h.len, LNL_ST_MAX_HEADER);
    } else {
        LnlAtomicFile af;
        uint8_t len8[8];
        for (int i = 0; i < 8; i++) len8[i] = (uint8_t)((uint64_t)h.len >> (8 * i));
        r = lnl_atomic_open(&af, path, e);
        if (!r) r = lnl_fwrite_exact(af.f, len8, 8, af.tmp, e);
        if (!r) r = lnl_fwrite_exact(af.f, h.data, h.len, af.tmp, e);
        for (int k = 0; k < w->n && !r; k++) {
            const LnlStwTensor *t = &w->t[order[k]];
            if (t->nbytes) r = lnl_fwrite_exact(af.f, t->data, (size_t)t->nbytes, af.tmp, e);
        }
        if (!r) r = lnl_atomic_commit(&af, e);
        else if (af.f) lnl_atomic_abort(&af);
    }
    lnl_buf_free(&h);
    free(begin);
    free(order);
    return r;
}

void lnl_stw_free(LnlStWriter *w) {
    for (int i = 0; i < w->n; i++) {
        free(w->t[i].name);
        if (w->t[i].owned) free((void *)w->t[i].data);
    }
    for (int i = 0; i < w->n_meta; i++) {
        free(w->meta_keys[i]);
        free(w->meta_vals[i]);
    }
    free(w->t);
    free(w->meta_keys);
    free(w->meta_vals);
    memset(w, 0, sizeof *w);
}
