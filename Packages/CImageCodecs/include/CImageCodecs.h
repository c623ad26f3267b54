// CImageCodecs: PNG and JPEG through libpng and libjpeg(-turbo), with their longjmp-based
// error reporting contained here. Every function returns a status code and, on failure, a
// NUL-terminated message; no call ever longjmps into, or aborts, the caller.
//
// Decoding works on bytes already in memory (the Swift side does the file I/O and its errors).
// Output pixels are 8-bit, interleaved, row-major, `width * pixel_channels` bytes per row with
// no padding, in one block allocated here and released with nic_free.
#ifndef CIMAGECODECS_H
#define CIMAGECODECS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// Status codes (the Swift side maps them onto DatasetError kinds).
#define NIC_OK 0
#define NIC_CORRUPT 1           // not a valid file of the format: bad signature, CRC, truncated, ...
#define NIC_UNSUPPORTED 2       // valid, but a feature we do not decode (12-bit JPEG, unknown colour space)
#define NIC_TOO_LARGE 3         // dimensions above the caller's limits
#define NIC_OUT_OF_MEMORY 4     // an allocation failed
#define NIC_INVALID_ARGUMENT 5  // the caller passed something unusable (encoder input)

// Room the caller provides for a message, including the terminating NUL.
#define NIC_MESSAGE_CAPACITY 256

/// What a file's header says, after the checks the library does on it.
typedef struct nic_image_info {
    uint32_t width;
    uint32_t height;
    /// Colour channels without alpha: 1 (gray) or 3 (palette, RGB, YCbCr, CMYK/YCCK: all decode to RGB).
    int32_t color_channels;
    /// 1 when the image has an alpha channel (PNG alpha colour types, or a tRNS chunk), else 0.
    int32_t has_alpha;
    /// Bits per stored sample (PNG: 1, 2, 4, 8 or 16, the palette index depth for palette images; JPEG: 8).
    int32_t bit_depth;
    /// Interleaved channels in the decoded pixels: color_channels + has_alpha.
    int32_t pixel_channels;
} nic_image_info;

/// Limits checked against the header before anything sized by it is allocated.
typedef struct nic_limits {
    uint32_t max_width;
    uint32_t max_height;
    uint64_t max_pixels;  // width * height
} nic_limits;

/// Reads a PNG header (`pixels == NULL`) or decodes the whole image.
///
/// Palette images and tRNS are expanded, gray below 8 bits is widened to 8, 16-bit samples are
/// scaled to 8 bits (round(v * 255 / 65535)), interlaced images are de-interlaced; no gamma
/// correction. `limits` may be NULL for a header-only read. On success with `pixels != NULL`,
/// `*pixels` holds height * width * pixel_channels bytes, to be released with nic_free.
int nic_png_read(const uint8_t *data, size_t size, const nic_limits *limits,
                 nic_image_info *info, uint8_t **pixels, char *message, size_t message_capacity);

/// Reads a JPEG header (`pixels == NULL`) or decodes the whole image, with libjpeg's default
/// (accurate integer) DCT and fancy upsampling, as `djpeg` does by default.
///
/// Gray stays gray; YCbCr and RGB give RGB; CMYK and YCCK give RGB through R = C * K / 255 on
/// the (usually Adobe-inverted) CMYK values. Data that ends early, and every libjpeg warning
/// about damaged data, is an error (NIC_CORRUPT). 12-bit (and lossless) JPEG give NIC_UNSUPPORTED.
int nic_jpeg_read(const uint8_t *data, size_t size, const nic_limits *limits,
                  nic_image_info *info, uint8_t **pixels, char *message, size_t message_capacity);

/// Encodes 8-bit gray (channels 1) or RGB (channels 3) pixels, rows packed without padding, as a
/// non-interlaced PNG in memory. On success `*png` (released with nic_free) holds `*png_size` bytes.
int nic_png_encode(const uint8_t *pixels, uint32_t width, uint32_t height, int32_t channels,
                   uint8_t **png, size_t *png_size, char *message, size_t message_capacity);

/// Releases a block returned by this library (NULL is fine).
void nic_free(void *block);

#ifdef __cplusplus
}
#endif

#endif
