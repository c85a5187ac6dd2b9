/* CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib's crc32 and Python's
 * zlib.crc32): the per-tensor checksum of the files lnlab writes. Not a cryptographic hash. */
#ifndef LNL_CRC32_H
#define LNL_CRC32_H

#include <stddef.h>
#include <stdint.h>

/* Continues a CRC over n more bytes: crc = lnl_crc32(0, a, na); crc = lnl_crc32(crc, b, nb)
 * equals lnl_crc32(0, ab, na + nb). */
uint32_t lnl_crc32(uint32_t crc, const void *data, size_t n);

/* The text form in files ("%08x": 8 lowercase hex digits): parses exactly 8 hex digits, either
 * case, nothing after them; -1 otherwise. */
int lnl_crc32_parse_hex(const char *s, uint32_t *out);

#endif
