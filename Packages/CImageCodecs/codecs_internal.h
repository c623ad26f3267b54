// Helpers shared by the PNG and JPEG halves of the shim; not part of the public header.
#ifndef NIC_CODECS_INTERNAL_H
#define NIC_CODECS_INTERNAL_H

#include "CImageCodecs.h"
#include <stdio.h>
#include <string.h>

/// Copies `text` (with an optional prefix) into the caller's message buffer, always NUL-terminated.
static inline void nic_set_message(char *message, size_t capacity, const char *prefix, const char *text) {
    if (message == NULL || capacity == 0) return;
    snprintf(message, capacity, "%s%s", prefix ? prefix : "", text ? text : "");
}

/// Checks width and height against `limits`; NIC_OK or NIC_TOO_LARGE with a message.
static inline int nic_check_limits(const nic_limits *limits, uint32_t width, uint32_t height,
                                   char *message, size_t capacity) {
    if (width == 0 || height == 0) {
        if (message && capacity) snprintf(message, capacity, "image has no pixels (%u x %u)", width, height);
        return NIC_CORRUPT;
    }
    if (limits == NULL) return NIC_OK;
    uint64_t pixels = (uint64_t)width * (uint64_t)height;
    if (width > limits->max_width || height > limits->max_height || pixels > limits->max_pixels) {
        if (message && capacity)
            snprintf(message, capacity,
                     "image is %u x %u pixels, above the limit of %u x %u and %llu pixels in all",
                     width, height, limits->max_width, limits->max_height,
                     (unsigned long long)limits->max_pixels);
        return NIC_TOO_LARGE;
    }
    return NIC_OK;
}

#endif
