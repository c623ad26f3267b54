// PNG decode and encode through libpng.
//
// libpng reports errors by calling an error function that must not return; ours copies the
// message and longjmps back into the function that called libpng. Each operation is split in
// two: an outer function that owns a job struct, and an inner `*_run` that calls setjmp and then
// libpng. Everything that must be released lives in the job (not in locals of the function that
// called setjmp, whose values would be indeterminate after the longjmp), and the outer function
// releases it once, whichever way the inner one returned.
#include "codecs_internal.h"

#include <png.h>
#include <setjmp.h>
#include <stdlib.h>

// MARK: - Decoding

typedef struct png_read_job {
    jmp_buf jump;
    const uint8_t *data;
    size_t size;
    size_t offset;
    const nic_limits *limits;
    int decode;
    // Released by nic_png_read.
    png_structp png;
    png_infop info;
    png_bytep *rows;
    uint8_t *pixels;
    // Outcome.
    int status;
    char *message;
    size_t capacity;
    nic_image_info result;
} png_read_job;

_Noreturn static void png_read_job_fail(png_read_job *job, int status, const char *prefix, const char *text) {
    job->status = status;
    nic_set_message(job->message, job->capacity, prefix, text);
    longjmp(job->jump, 1);
}

static void png_read_job_error(png_structp png, png_const_charp text) {
    png_read_job *job = (png_read_job *)png_get_error_ptr(png);
    int status = (text && strstr(text, "memory")) ? NIC_OUT_OF_MEMORY : NIC_CORRUPT;
    png_read_job_fail(job, status, "PNG: ", text);
}

// Warnings (bad ancillary-chunk CRCs, which libpng discards; odd but harmless metadata) do not
// affect the pixels, so they are not errors.
static void png_ignore_warning(png_structp png, png_const_charp text) {
    (void)png;
    (void)text;
}

static void png_read_job_input(png_structp png, png_bytep out, size_t count) {
    png_read_job *job = (png_read_job *)png_get_io_ptr(png);
    if (count > job->size - job->offset) {
        char text[128];
        snprintf(text, sizeof text, "data ends early: needed %zu bytes at offset %zu of %zu (truncated file)",
                 count, job->offset, job->size);
        png_read_job_fail(job, NIC_CORRUPT, "PNG: ", text);
    }
    memcpy(out, job->data + job->offset, count);
    job->offset += count;
}

// libpng allocates, and zero-fills, a buffer of a chunk's declared length before it reads the
// chunk's data, and its own length check ("chunk data is too large") is only a warning when
// reading. A file of a few hundred bytes whose chunk claims 2^31 bytes would so cost seconds
// and gigabytes before the data ran out. This walks the chunk lengths first and refuses any
// chunk that claims more bytes than follow it: up to IEND, or up to the first IDAT when only
// the header is read (png_read_info stops there). Files with a bad signature are left to libpng,
// which names the damage.
static int png_check_chunk_lengths(const uint8_t *data, size_t size, int whole_file, char *message, size_t capacity) {
    if (size < 8 || png_sig_cmp(data, 0, 8) != 0) return NIC_OK;
    size_t offset = 8;
    while (size - offset >= 8) {
        const uint8_t *p = data + offset;
        uint32_t length = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
        char type[5];
        for (int i = 0; i < 4; i++) {
            type[i] = (p[4 + i] >= 'A' && p[4 + i] <= 'z') ? (char)p[4 + i] : '?';
        }
        type[4] = 0;
        if ((uint64_t)length + 12 > size - offset) {
            if (message && capacity)
                snprintf(message, capacity,
                         "PNG: chunk %s at byte offset %zu declares %u bytes of data, but only %zu bytes follow "
                         "its header (truncated or corrupt file)", type, offset, length, size - offset - 8);
            return NIC_CORRUPT;
        }
        if (memcmp(p + 4, "IEND", 4) == 0 || (!whole_file && memcmp(p + 4, "IDAT", 4) == 0)) break;
        offset += 12 + (size_t)length;
    }
    return NIC_OK;
}

static int png_read_run(png_read_job *job) {
    if (setjmp(job->jump)) return job->status;

    job->png = png_create_read_struct(PNG_LIBPNG_VER_STRING, job, png_read_job_error, png_ignore_warning);
    if (job->png == NULL) png_read_job_fail(job, NIC_OUT_OF_MEMORY, "PNG: ", "could not create a libpng reader");
    job->info = png_create_info_struct(job->png);
    if (job->info == NULL) png_read_job_fail(job, NIC_OUT_OF_MEMORY, "PNG: ", "could not create a libpng info struct");
    png_set_read_fn(job->png, job, png_read_job_input);
    // Our own limits (checked below, before any allocation sized by the header) replace libpng's
    // default of one million pixels a side, so that raising ours works and a refusal is NIC_TOO_LARGE.
    png_set_user_limits(job->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);

    png_read_info(job->png, job->info);
    png_uint_32 width = 0, height = 0;
    int depth = 0, color = 0;
    png_get_IHDR(job->png, job->info, &width, &height, &depth, &color, NULL, NULL, NULL);
    int has_trns = png_get_valid(job->png, job->info, PNG_INFO_tRNS) != 0;
    job->result.width = width;
    job->result.height = height;
    job->result.color_channels = (color & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    job->result.has_alpha = ((color & PNG_COLOR_MASK_ALPHA) || has_trns) ? 1 : 0;
    job->result.bit_depth = depth;
    job->result.pixel_channels = job->result.color_channels + job->result.has_alpha;
    if (!job->decode) return NIC_OK;

    char text[NIC_MESSAGE_CAPACITY];
    int status = nic_check_limits(job->limits, width, height, text, sizeof text);
    if (status != NIC_OK) png_read_job_fail(job, status, "PNG: ", text);

    if (color == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(job->png);
    if (color == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(job->png);
    if (has_trns) png_set_tRNS_to_alpha(job->png);
    if (depth == 16) png_set_scale_16(job->png);
    png_set_interlace_handling(job->png);
    png_read_update_info(job->png, job->info);

    size_t channels = png_get_channels(job->png, job->info);
    size_t row_bytes = png_get_rowbytes(job->png, job->info);
    if (channels != (size_t)job->result.pixel_channels || png_get_bit_depth(job->png, job->info) != 8 ||
        row_bytes != (size_t)width * channels) {
        png_read_job_fail(job, NIC_UNSUPPORTED, "PNG: ", "libpng did not produce 8-bit interleaved samples");
    }
    job->pixels = (uint8_t *)malloc(row_bytes * height);
    job->rows = (png_bytep *)malloc(sizeof(png_bytep) * height);
    if (job->pixels == NULL || job->rows == NULL)
        png_read_job_fail(job, NIC_OUT_OF_MEMORY, "PNG: ", "out of memory for the pixels");
    for (png_uint_32 y = 0; y < height; y++) job->rows[y] = job->pixels + (size_t)y * row_bytes;
    png_read_image(job->png, job->rows);
    // Reads the chunks after the image data up to IEND, checking their CRCs: a file cut after
    // its last IDAT is still an error.
    png_read_end(job->png, NULL);
    return NIC_OK;
}

int nic_png_read(const uint8_t *data, size_t size, const nic_limits *limits,
                 nic_image_info *info, uint8_t **pixels, char *message, size_t message_capacity) {
    if (pixels) *pixels = NULL;
    if (message && message_capacity) message[0] = 0;
    if ((data == NULL && size > 0) || info == NULL) {
        nic_set_message(message, message_capacity, "PNG: ", "no input");
        return NIC_INVALID_ARGUMENT;
    }
    int checked = png_check_chunk_lengths(data, size, pixels != NULL, message, message_capacity);
    if (checked != NIC_OK) return checked;
    png_read_job job;
    memset(&job, 0, sizeof job);
    job.data = data;
    job.size = size;
    job.limits = limits;
    job.decode = pixels != NULL;
    job.message = message;
    job.capacity = message_capacity;

    int status = png_read_run(&job);

    if (job.png) png_destroy_read_struct(&job.png, job.info ? &job.info : NULL, NULL);
    free(job.rows);
    if (status == NIC_OK) {
        *info = job.result;
        if (pixels) *pixels = job.pixels;
    } else {
        free(job.pixels);
    }
    return status;
}

// MARK: - Encoding

typedef struct png_write_job {
    jmp_buf jump;
    const uint8_t *pixels;
    uint32_t width;
    uint32_t height;
    int32_t channels;
    // Released by nic_png_encode (the buffer only on failure).
    png_structp png;
    png_infop info;
    uint8_t *buffer;
    size_t size;
    size_t buffer_capacity;
    // Outcome.
    int status;
    char *message;
    size_t capacity;
} png_write_job;

_Noreturn static void png_write_job_fail(png_write_job *job, int status, const char *text) {
    job->status = status;
    nic_set_message(job->message, job->capacity, "PNG encoder: ", text);
    longjmp(job->jump, 1);
}

static void png_write_job_error(png_structp png, png_const_charp text) {
    png_write_job *job = (png_write_job *)png_get_error_ptr(png);
    png_write_job_fail(job, (text && strstr(text, "memory")) ? NIC_OUT_OF_MEMORY : NIC_INVALID_ARGUMENT, text);
}

static void png_write_job_output(png_structp png, png_bytep bytes, size_t count) {
    png_write_job *job = (png_write_job *)png_get_io_ptr(png);
    if (count > job->buffer_capacity - job->size) {
        size_t needed = job->size + count;
        if (needed < job->size) png_write_job_fail(job, NIC_OUT_OF_MEMORY, "encoded size overflows");
        size_t grown = job->buffer_capacity ? job->buffer_capacity * 2 : 4096;
        if (grown < needed) grown = needed;
        uint8_t *buffer = (uint8_t *)realloc(job->buffer, grown);
        if (buffer == NULL) png_write_job_fail(job, NIC_OUT_OF_MEMORY, "out of memory for the encoded file");
        job->buffer = buffer;
        job->buffer_capacity = grown;
    }
    memcpy(job->buffer + job->size, bytes, count);
    job->size += count;
}

static void png_write_job_flush(png_structp png) { (void)png; }

static int png_write_run(png_write_job *job) {
    if (setjmp(job->jump)) return job->status;

    job->png = png_create_write_struct(PNG_LIBPNG_VER_STRING, job, png_write_job_error, png_ignore_warning);
    if (job->png == NULL) png_write_job_fail(job, NIC_OUT_OF_MEMORY, "could not create a libpng writer");
    job->info = png_create_info_struct(job->png);
    if (job->info == NULL) png_write_job_fail(job, NIC_OUT_OF_MEMORY, "could not create a libpng info struct");
    png_set_write_fn(job->png, job, png_write_job_output, png_write_job_flush);
    png_set_user_limits(job->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_set_IHDR(job->png, job->info, job->width, job->height, 8,
                 job->channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(job->png, job->info);
    size_t row_bytes = (size_t)job->width * (size_t)job->channels;
    for (uint32_t y = 0; y < job->height; y++) png_write_row(job->png, job->pixels + (size_t)y * row_bytes);
    png_write_end(job->png, NULL);
    return NIC_OK;
}

int nic_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int32_t channels,
                   uint8_t **png, size_t *png_size, char *message, size_t message_capacity) {
    if (message && message_capacity) message[0] = 0;
    if (png) *png = NULL;
    if (png_size) *png_size = 0;
    if (pixels == NULL || png == NULL || png_size == NULL || (channels != 1 && channels != 3) ||
        width == 0 || height == 0 || width > PNG_UINT_31_MAX || height > PNG_UINT_31_MAX) {
        nic_set_message(message, message_capacity, "PNG encoder: ",
                        "needs pixels, 1 or 3 channels and a width and height from 1 to 2^31 - 1");
        return NIC_INVALID_ARGUMENT;
    }
    png_write_job job;
    memset(&job, 0, sizeof job);
    job.pixels = pixels;
    job.width = width;
    job.height = height;
    job.channels = channels;
    job.message = message;
    job.capacity = message_capacity;

    int status = png_write_run(&job);

    if (job.png) png_destroy_write_struct(&job.png, job.info ? &job.info : NULL);
    if (status == NIC_OK) {
        *png = job.buffer;
        *png_size = job.size;
    } else {
        free(job.buffer);
    }
    return status;
}

void nic_free(void *block) { free(block); }
