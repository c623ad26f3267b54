// JPEG decode through libjpeg(-turbo).
//
// libjpeg reports errors through `error_exit`, which must not return; ours formats the message
// and longjmps back into `jpeg_read_run`, the function that called setjmp and libjpeg. The state
// to release lives in a job struct owned by `nic_jpeg_read`, which releases it once.
//
// Stricter than libjpeg's defaults, on purpose (a training set should not silently contain
// half-grey pictures):
// - the data source fails when the data runs out, instead of inventing an EOI marker;
// - warnings about damaged data ("Corrupt JPEG data: ...", bad Huffman codes, missing markers)
//   are errors; only two warnings about harmless metadata are tolerated;
// - a progress monitor refuses files with more than NIC_JPEG_MAX_SCANS scans, which could
//   otherwise make a tiny progressive file take minutes to decode.
#include "codecs_internal.h"

#include <stdio.h>
#include <jpeglib.h>
#include <jerror.h>
#include <setjmp.h>
#include <stdlib.h>

// Real progressive files have about ten scans; libjpeg-turbo's TurboJPEG API suggests 500 as a limit.
#define NIC_JPEG_MAX_SCANS 500

typedef struct jpeg_read_job {
    jmp_buf jump;
    struct jpeg_decompress_struct cinfo;
    struct jpeg_error_mgr errors;
    struct jpeg_source_mgr source;
    struct jpeg_progress_mgr progress;
    const uint8_t *data;
    size_t size;
    const nic_limits *limits;
    int decode;
    // Released by nic_jpeg_read.
    int created;
    uint8_t *pixels;
    uint8_t *cmyk_row;
    // Outcome.
    int status;
    char *message;
    size_t capacity;
    nic_image_info result;
} jpeg_read_job;

_Noreturn static void jpeg_read_job_fail(jpeg_read_job *job, int status, const char *prefix, const char *text) {
    job->status = status;
    nic_set_message(job->message, job->capacity, prefix, text);
    longjmp(job->jump, 1);
}

static void jpeg_read_job_error_exit(j_common_ptr cinfo) {
    jpeg_read_job *job = (jpeg_read_job *)cinfo->client_data;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    switch (cinfo->err->msg_code) {
    case JERR_BAD_PRECISION:
        jpeg_read_job_fail(job, NIC_UNSUPPORTED, "JPEG: only 8-bit samples are supported: ", text);
    case JERR_SOF_UNSUPPORTED:
    case JERR_NOT_COMPILED:
    case JERR_CONVERSION_NOTIMPL:
        jpeg_read_job_fail(job, NIC_UNSUPPORTED, "JPEG: unsupported: ", text);
    case JERR_OUT_OF_MEMORY:
        jpeg_read_job_fail(job, NIC_OUT_OF_MEMORY, "JPEG: ", text);
    case JERR_IMAGE_TOO_BIG:
    case JERR_WIDTH_OVERFLOW:
        jpeg_read_job_fail(job, NIC_TOO_LARGE, "JPEG: ", text);
    default:
        jpeg_read_job_fail(job, NIC_CORRUPT, "JPEG: ", text);
    }
}

// level -1 is a warning; levels 0 and up are trace messages, which we never show.
static void jpeg_read_job_emit_message(j_common_ptr cinfo, int level) {
    if (level >= 0) return;
    int code = cinfo->err->msg_code;
    if (code == JWRN_ADOBE_XFORM || code == JWRN_JFIF_MAJOR) {
        cinfo->err->num_warnings++;
        return;
    }
    jpeg_read_job *job = (jpeg_read_job *)cinfo->client_data;
    char text[JMSG_LENGTH_MAX];
    (*cinfo->err->format_message)(cinfo, text);
    jpeg_read_job_fail(job, NIC_CORRUPT, "JPEG: damaged data: ", text);
}

static void jpeg_read_job_progress(j_common_ptr cinfo) {
    if (!cinfo->is_decompressor) return;
    j_decompress_ptr d = (j_decompress_ptr)cinfo;
    if (d->input_scan_number > NIC_JPEG_MAX_SCANS) {
        jpeg_read_job *job = (jpeg_read_job *)cinfo->client_data;
        char text[128];
        snprintf(text, sizeof text, "file has more than %d scans", NIC_JPEG_MAX_SCANS);
        jpeg_read_job_fail(job, NIC_TOO_LARGE, "JPEG: ", text);
    }
}

// MARK: - Memory source: all the data is there from the start, so running out is an error.

static void jpeg_source_init(j_decompress_ptr cinfo) { (void)cinfo; }

static boolean jpeg_source_fill(j_decompress_ptr cinfo) {
    jpeg_read_job *job = (jpeg_read_job *)cinfo->client_data;
    char text[96];
    snprintf(text, sizeof text, "data ends early after %zu bytes (truncated file)", job->size);
    jpeg_read_job_fail(job, NIC_CORRUPT, "JPEG: ", text);
}

static void jpeg_source_skip(j_decompress_ptr cinfo, long count) {
    if (count <= 0) return;
    struct jpeg_source_mgr *source = cinfo->src;
    if ((unsigned long)count > (unsigned long)source->bytes_in_buffer) jpeg_source_fill(cinfo);
    source->next_input_byte += count;
    source->bytes_in_buffer -= (size_t)count;
}

static void jpeg_source_term(j_decompress_ptr cinfo) { (void)cinfo; }

// MARK: - Decoding

// CMYK to RGB. Adobe writes CMYK inverted (255 = no ink), and libjpeg hands it over as stored;
// then R = C * K / 255, rounded, as djpeg's PPM writer does. Without an Adobe marker, the values
// are taken as plain ink amounts.
static void jpeg_cmyk_row_to_rgb(const uint8_t *cmyk, uint8_t *rgb, size_t width, int inverted) {
    for (size_t x = 0; x < width; x++) {
        unsigned c = cmyk[4 * x], m = cmyk[4 * x + 1], y = cmyk[4 * x + 2], k = cmyk[4 * x + 3];
        if (!inverted) {
            c = 255 - c;
            m = 255 - m;
            y = 255 - y;
            k = 255 - k;
        }
        rgb[3 * x] = (uint8_t)((c * k + 127) / 255);
        rgb[3 * x + 1] = (uint8_t)((m * k + 127) / 255);
        rgb[3 * x + 2] = (uint8_t)((y * k + 127) / 255);
    }
}

static int jpeg_read_run(jpeg_read_job *job) {
    if (setjmp(job->jump)) return job->status;

    j_decompress_ptr cinfo = &job->cinfo;
    cinfo->err = jpeg_std_error(&job->errors);
    job->errors.error_exit = jpeg_read_job_error_exit;
    job->errors.emit_message = jpeg_read_job_emit_message;
    cinfo->client_data = job;  // jpeg_create_decompress keeps err and client_data
    jpeg_create_decompress(cinfo);
    job->created = 1;

    job->source.next_input_byte = job->data;
    job->source.bytes_in_buffer = job->size;
    job->source.init_source = jpeg_source_init;
    job->source.fill_input_buffer = jpeg_source_fill;
    job->source.skip_input_data = jpeg_source_skip;
    job->source.resync_to_restart = jpeg_resync_to_restart;
    job->source.term_source = jpeg_source_term;
    cinfo->src = &job->source;
    job->progress.progress_monitor = jpeg_read_job_progress;
    cinfo->progress = &job->progress;

    jpeg_read_header(cinfo, TRUE);

    J_COLOR_SPACE output_space;
    int output_components;
    switch (cinfo->jpeg_color_space) {
    case JCS_GRAYSCALE:
        output_space = JCS_GRAYSCALE;
        output_components = 1;
        break;
    case JCS_YCbCr:
    case JCS_RGB:
        output_space = JCS_RGB;
        output_components = 3;
        break;
    case JCS_CMYK:
    case JCS_YCCK:
        output_space = JCS_CMYK;
        output_components = 4;
        break;
    default: {
        char text[96];
        snprintf(text, sizeof text, "unknown colour space with %d components", cinfo->num_components);
        jpeg_read_job_fail(job, NIC_UNSUPPORTED, "JPEG: ", text);
    }
    }
    uint32_t width = cinfo->image_width, height = cinfo->image_height;
    job->result.width = width;
    job->result.height = height;
    job->result.color_channels = output_components == 1 ? 1 : 3;
    job->result.has_alpha = 0;
    job->result.bit_depth = cinfo->data_precision;
    job->result.pixel_channels = job->result.color_channels;
    if (!job->decode) return NIC_OK;

    char text[NIC_MESSAGE_CAPACITY];
    int status = nic_check_limits(job->limits, width, height, text, sizeof text);
    if (status != NIC_OK) jpeg_read_job_fail(job, status, "JPEG: ", text);

    cinfo->out_color_space = output_space;
    jpeg_start_decompress(cinfo);
    if (cinfo->output_width != width || cinfo->output_height != height ||
        cinfo->output_components != output_components) {
        jpeg_read_job_fail(job, NIC_UNSUPPORTED, "JPEG: ", "libjpeg did not produce the expected output layout");
    }
    size_t channels = (size_t)job->result.pixel_channels;
    size_t row_bytes = (size_t)width * channels;
    job->pixels = (uint8_t *)malloc(row_bytes * height);
    if (job->pixels == NULL) jpeg_read_job_fail(job, NIC_OUT_OF_MEMORY, "JPEG: ", "out of memory for the pixels");
    if (output_components == 4) {
        job->cmyk_row = (uint8_t *)malloc((size_t)width * 4);
        if (job->cmyk_row == NULL) jpeg_read_job_fail(job, NIC_OUT_OF_MEMORY, "JPEG: ", "out of memory for a row");
    }
    while (cinfo->output_scanline < cinfo->output_height) {
        JDIMENSION y = cinfo->output_scanline;
        JDIMENSION read;
        if (output_components == 4) {
            JSAMPROW row = job->cmyk_row;
            read = jpeg_read_scanlines(cinfo, &row, 1);
            if (read == 1) jpeg_cmyk_row_to_rgb(job->cmyk_row, job->pixels + (size_t)y * row_bytes, width,
                                                cinfo->saw_Adobe_marker);
        } else {
            JSAMPROW rows[16];
            JDIMENSION count = height - y < 16 ? height - y : 16;
            for (JDIMENSION i = 0; i < count; i++) rows[i] = job->pixels + (size_t)(y + i) * row_bytes;
            read = jpeg_read_scanlines(cinfo, rows, count);
        }
        if (read == 0) jpeg_read_job_fail(job, NIC_CORRUPT, "JPEG: ", "the decoder stopped making progress");
    }
    // Reads up to EOI, so damage after the last row is still found.
    jpeg_finish_decompress(cinfo);
    return NIC_OK;
}

int nic_jpeg_read(const uint8_t *data, size_t size, const nic_limits *limits,
                  nic_image_info *info, uint8_t **pixels, char *message, size_t message_capacity) {
    if (pixels) *pixels = NULL;
    if (message && message_capacity) message[0] = 0;
    if ((data == NULL && size > 0) || info == NULL) {
        nic_set_message(message, message_capacity, "JPEG: ", "no input");
        return NIC_INVALID_ARGUMENT;
    }
    jpeg_read_job *job = (jpeg_read_job *)calloc(1, sizeof(jpeg_read_job));
    if (job == NULL) {
        nic_set_message(message, message_capacity, "JPEG: ", "out of memory");
        return NIC_OUT_OF_MEMORY;
    }
    job->data = data;
    job->size = size;
    job->limits = limits;
    job->decode = pixels != NULL;
    job->message = message;
    job->capacity = message_capacity;

    int status = jpeg_read_run(job);

    if (job->created) jpeg_destroy_decompress(&job->cinfo);
    free(job->cmyk_row);
    if (status == NIC_OK) {
        *info = job->result;
        if (pixels) *pixels = job->pixels;
    } else {
        free(job->pixels);
    }
    free(job);
    return status;
}
