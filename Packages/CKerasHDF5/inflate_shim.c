#include "CKerasInflate.h"
#include <limits.h>
#include <stdlib.h>
#include <zlib.h>

struct nk_inflater {
    z_stream stream;
};

nk_inflater *nk_inflate_begin(void) {
    nk_inflater *inflater = calloc(1, sizeof *inflater);
    if (!inflater) return NULL;
    if (inflateInit2(&inflater->stream, -MAX_WBITS) != Z_OK) {
        free(inflater);
        return NULL;
    }
    return inflater;
}

int nk_inflate_step(nk_inflater *inflater, const void *input, size_t input_length, size_t *consumed,
                    void *output, size_t output_capacity, size_t *produced) {
    z_stream *s = &inflater->stream;
    uInt in = input_length > UINT_MAX / 2 ? UINT_MAX / 2 : (uInt)input_length;
    uInt out = output_capacity > UINT_MAX / 2 ? UINT_MAX / 2 : (uInt)output_capacity;
    s->next_in = (Bytef *)input;
    s->avail_in = in;
    s->next_out = output;
    s->avail_out = out;
    int status = inflate(s, Z_NO_FLUSH);
    *consumed = in - s->avail_in;
    *produced = out - s->avail_out;
    switch (status) {
    case Z_STREAM_END: return 1;
    case Z_OK: return 0;
    case Z_BUF_ERROR: return (*consumed == 0 && *produced == 0) ? -2 : 0;
    default: return -1;
    }
}

void nk_inflate_end(nk_inflater *inflater) {
    if (!inflater) return;
    inflateEnd(&inflater->stream);
    free(inflater);
}

uint32_t nk_crc32(uint32_t crc, const void *bytes, size_t length) {
    uLong value = crc;
    const Bytef *p = bytes;
    while (length > 0) {
        uInt n = length > (1u << 30) ? (1u << 30) : (uInt)length;
        value = crc32(value, p, n);
        p += n;
        length -= n;
    }
    return (uint32_t)value;
}
