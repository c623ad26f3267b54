#ifndef CKERASINFLATE_H
#define CKERASINFLATE_H
/* Raw deflate decoding and CRC-32 for KerasInterop's zip reader, over zlib. In C so that Swift
 * never imports zlib's module here (ZIPFoundation brings its own `CZlib` module on Linux, and two
 * modules of that name cannot meet in one target). */
#include <stddef.h>
#include <stdint.h>

typedef struct nk_inflater nk_inflater;

/* A raw-deflate (no zlib or gzip header) decoder, or NULL when out of memory. */
nk_inflater *nk_inflate_begin(void);

/* Decodes from `input` (at most `input_length` bytes) into `output` (at most `output_capacity`
 * bytes) and reports how much of each was used. Returns 1 at the end of the deflate stream, 0 when
 * more can follow, -1 for bad deflate data, -2 when no progress is possible (input ended early). */
int nk_inflate_step(nk_inflater *inflater, const void *input, size_t input_length, size_t *consumed,
                    void *output, size_t output_capacity, size_t *produced);

/* Frees the decoder. */
void nk_inflate_end(nk_inflater *inflater);

/* The CRC-32 (as zip uses it) of `length` bytes, continuing from `crc` (0 to start). */
uint32_t nk_crc32(uint32_t crc, const void *bytes, size_t length);
#endif
