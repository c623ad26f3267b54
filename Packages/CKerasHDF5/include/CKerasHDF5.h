#ifndef CKERASHDF5_H
#define CKERASHDF5_H
/* Shim over libhdf5 for KerasInterop.
 *
 * Swift cannot import HDF5's type macros (H5T_NATIVE_FLOAT and friends are function calls behind
 * macros), so every call that needs one lives here. Files are only ever opened from, or written
 * to, memory images (the core driver without a backing store); Swift reads and writes the bytes.
 *
 * libhdf5 as Debian builds it is not thread-safe: callers must serialise every nk_h5_* call
 * (KerasInterop holds one global lock around each whole read or write).
 *
 * Every function returns a negative value on failure; nk_h5_error then describes the failure. */
#include <stddef.h>
#include <stdint.h>

/* Turns off HDF5's printing of its error stack to stderr. Idempotent. */
void nk_h5_quiet(void);

/* Copies a description of the current HDF5 error stack (outermost and innermost messages) into
 * `buffer` (always NUL-terminated) and clears the stack; with a NULL buffer it only clears it. */
void nk_h5_error(char *buffer, size_t capacity);

/* 1 when the image starts with (or holds at 512, 1024, ... bytes) an HDF5 signature, else 0. */
int nk_h5_is_hdf5_image(const void *bytes, size_t size);

/* Opens an HDF5 file image read-only (the bytes are copied). Returns a file id, or -1. */
int64_t nk_h5_open_image(const void *bytes, size_t size);

/* Creates an empty in-memory HDF5 file for writing. Returns a file id, or -1. */
int64_t nk_h5_create_image(void);

/* Flushes a file made by nk_h5_create_image and returns the size of its image (or -1); when
 * `buffer` is not NULL and `capacity` is at least that size, the image is copied there too. */
int64_t nk_h5_file_image(int64_t file, void *buffer, size_t capacity);

/* Closes a file id (all objects opened from it are closed by the shim before it returns). */
int nk_h5_close(int64_t file);

/* Object kinds reported by nk_h5_visit. */
enum { NK_H5_GROUP = 0, NK_H5_DATASET = 1, NK_H5_OTHER = 2 };

/* Called once per object reachable from the root (the root itself is reported as "."), each
 * object once even when several hard links lead to it. Returning non-zero stops the visit. */
typedef int (*nk_h5_visitor)(void *context, const char *path, int kind);

/* Visits every object; returns 0 when done, 1 when the visitor stopped it, -1 on error. */
int nk_h5_visit(int64_t file, nk_h5_visitor visitor, void *context);

/* Type classes reported by nk_h5_dataset_info. */
enum { NK_H5_CLASS_FLOAT = 0, NK_H5_CLASS_INTEGER = 1, NK_H5_CLASS_STRING = 2, NK_H5_CLASS_OTHER = 3 };

/* Describes the dataset at `path`: its type class, element size in bytes and rank; up to
 * `max_rank` dimensions are stored in `dims`. A scalar dataset has rank 0; a dataset with a null
 * dataspace (no elements at all) reports rank -1. Returns 0, or -1. */
int nk_h5_dataset_info(int64_t file, const char *path, int *type_class, size_t *type_size,
                       int *rank, uint64_t *dims, int max_rank);

/* Reads the whole dataset at `path`, converted by HDF5 to native float, into `values`, which
 * must hold exactly `count` elements (the product of its dimensions). Returns 0, or -1. */
int nk_h5_dataset_read_float(int64_t file, const char *path, float *values, size_t count);

/* Where the first chunk of the object header of the object at `path` lies in the file (an
 * address relative to the superblock's base) and its size in bytes. Returns 0, or -1. */
int nk_h5_object_header(int64_t file, const char *path, uint64_t *address, uint64_t *size);

/* The number of attributes on the object at `path`, or -1. */
int64_t nk_h5_attribute_count(int64_t file, const char *path);

/* Reads attribute number `index` (creation order as HDF5 stores it, else name order) of the
 * object at `path`. Its name is copied into `name` (NUL-terminated, truncated to `name_capacity`).
 * When it is a scalar or one-element string (fixed or variable length), its value is copied to
 * `value` (NUL-terminated, truncated to `value_capacity`) and *value_length is set to its full
 * length, and 1 is returned; a value longer than the buffer can be read again with a bigger one.
 * Any other attribute returns 0 (its name still copied). -1 on error. */
int nk_h5_attribute_string(int64_t file, const char *path, uint64_t index,
                           char *name, size_t name_capacity, size_t *name_length,
                           char *value, size_t value_capacity, size_t *value_length);

/* Creates the group at `path` and any missing groups above it; an existing group is fine.
 * Returns 0, or -1. */
int nk_h5_create_group(int64_t file, const char *path);

/* Sets (creating or replacing) a scalar variable-length UTF-8 string attribute on the object at
 * `path` ("/" for the root group), as h5py writes `obj.attrs[name] = "..."`. Returns 0, or -1. */
int nk_h5_set_string_attribute(int64_t file, const char *path, const char *name, const char *value);

/* Creates a little-endian float32 dataset at `path` (with missing groups above it) of the given
 * rank and dimensions (rank 0: a scalar) and writes `count` values into it. Returns 0, or -1. */
int nk_h5_write_float_dataset(int64_t file, const char *path, int rank, const uint64_t *dims,
                              const float *values, size_t count);

/* The libhdf5 version this shim is linked against. */
int nk_hdf5_version(unsigned *major, unsigned *minor, unsigned *release);
#endif
