#include "CKerasHDF5.h"
#include <hdf5.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Where HDF5's object-info and visit calls changed signature (1.12 added H5O_info2_t). */
#if H5_VERSION_GE(1, 12, 0)
typedef H5O_info2_t nk_object_info;
#define NK_GET_INFO(obj, info, fields) H5Oget_info3((obj), (info), (fields))
#define NK_VISIT(obj, op, data, fields) H5Ovisit3((obj), H5_INDEX_NAME, H5_ITER_INC, (op), (data), (fields))
#else
typedef H5O_info_t nk_object_info;
#define NK_GET_INFO(obj, info, fields) H5Oget_info2((obj), (info), (fields))
#define NK_VISIT(obj, op, data, fields) H5Ovisit2((obj), H5_INDEX_NAME, H5_ITER_INC, (op), (data), (fields))
#endif

static void close_id(hid_t id) {
    if (id < 0) return;
    switch (H5Iget_type(id)) {
    case H5I_FILE: H5Fclose(id); break;
    case H5I_GROUP: H5Gclose(id); break;
    case H5I_DATATYPE: H5Tclose(id); break;
    case H5I_DATASPACE: H5Sclose(id); break;
    case H5I_DATASET: H5Dclose(id); break;
    case H5I_ATTR: H5Aclose(id); break;
    case H5I_GENPROP_LST: H5Pclose(id); break;
    default: H5Idec_ref(id); break;
    }
}

void nk_h5_quiet(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

struct error_walk {
    char outer[256];
    char inner[256];
    int count;
};

static herr_t error_walker(unsigned n, const H5E_error2_t *e, void *data) {
    struct error_walk *walk = data;
    const char *desc = (e->desc && e->desc[0]) ? e->desc : "(no description)";
    if (n == 0) snprintf(walk->outer, sizeof walk->outer, "%s: %s", e->func_name ? e->func_name : "?", desc);
    snprintf(walk->inner, sizeof walk->inner, "%s", desc);
    walk->count += 1;
    return 0;
}

void nk_h5_error(char *buffer, size_t capacity) {
    if (!buffer || capacity == 0) {
        H5Eclear2(H5E_DEFAULT);
        return;
    }
    struct error_walk walk = {{0}, {0}, 0};
    hid_t stack = H5Eget_current_stack();
    if (stack >= 0) {
        H5Ewalk2(stack, H5E_WALK_DOWNWARD, error_walker, &walk);
        H5Eclose_stack(stack);
    }
    H5Eclear2(H5E_DEFAULT);
    if (walk.count == 0) snprintf(buffer, capacity, "unknown HDF5 error");
    else if (walk.count == 1) snprintf(buffer, capacity, "%s", walk.outer);
    else snprintf(buffer, capacity, "%s (%s)", walk.outer, walk.inner);
}

int nk_h5_is_hdf5_image(const void *bytes, size_t size) {
    static const unsigned char signature[8] = {0x89, 'H', 'D', 'F', '\r', '\n', 0x1a, '\n'};
    const unsigned char *b = bytes;
    if (!b) return 0;
    /* The superblock is at 0, 512, 1024, 2048, ... bytes. */
    for (size_t offset = 0; offset <= size && size - offset >= 8; offset = offset == 0 ? 512 : offset * 2) {
        if (memcmp(b + offset, signature, 8) == 0) return 1;
    }
    return 0;
}

/* Files are told apart by name under the core driver, so every image gets its own. */
static unsigned long long image_counter = 0;

static hid_t core_access(void) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    if (fapl < 0) return -1;
    if (H5Pset_fapl_core(fapl, 1 << 16, 0) < 0 || H5Pset_fclose_degree(fapl, H5F_CLOSE_STRONG) < 0) {
        H5Pclose(fapl);
        return -1;
    }
    return fapl;
}

int64_t nk_h5_open_image(const void *bytes, size_t size) {
    if (!bytes || size == 0) return -1;
    hid_t fapl = core_access();
    if (fapl < 0) return -1;
    hid_t file = -1;
    if (H5Pset_file_image(fapl, (void *)bytes, size) >= 0) {
        char name[64];
        snprintf(name, sizeof name, "neurite-h5-image-%llu", ++image_counter);
        file = H5Fopen(name, H5F_ACC_RDONLY, fapl);
    }
    H5Pclose(fapl);
    return file;
}

int64_t nk_h5_create_image(void) {
    hid_t fapl = core_access();
    if (fapl < 0) return -1;
    char name[64];
    snprintf(name, sizeof name, "neurite-h5-new-%llu", ++image_counter);
    hid_t file = H5Fcreate(name, H5F_ACC_EXCL, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    return file;
}

int64_t nk_h5_file_image(int64_t file, void *buffer, size_t capacity) {
    if (H5Fflush(file, H5F_SCOPE_GLOBAL) < 0) return -1;
    ssize_t size = H5Fget_file_image(file, NULL, 0);
    if (size < 0) return -1;
    if (buffer && capacity >= (size_t)size) {
        if (H5Fget_file_image(file, buffer, capacity) < 0) return -1;
    }
    return (int64_t)size;
}

int nk_h5_close(int64_t file) {
    return H5Fclose(file) < 0 ? -1 : 0;
}

struct visit_context {
    nk_h5_visitor visitor;
    void *context;
    int stopped;
};

static herr_t visit_one(hid_t obj, const char *name, const nk_object_info *info, void *data) {
    (void)obj;
    struct visit_context *visit = data;
    int kind = info->type == H5O_TYPE_GROUP ? NK_H5_GROUP : info->type == H5O_TYPE_DATASET ? NK_H5_DATASET : NK_H5_OTHER;
    if (visit->visitor(visit->context, name, kind) != 0) {
        visit->stopped = 1;
        return 1;
    }
    return 0;
}

int nk_h5_visit(int64_t file, nk_h5_visitor visitor, void *context) {
    struct visit_context visit = {visitor, context, 0};
    herr_t status = NK_VISIT(file, visit_one, &visit, H5O_INFO_BASIC);
    if (visit.stopped) return 1;
    return status < 0 ? -1 : 0;
}

int nk_h5_dataset_info(int64_t file, const char *path, int *type_class, size_t *type_size,
                       int *rank, uint64_t *dims, int max_rank) {
    int result = -1;
    hid_t dataset = -1, type = -1, space = -1;
    if ((dataset = H5Dopen2(file, path, H5P_DEFAULT)) < 0) goto done;
    if ((type = H5Dget_type(dataset)) < 0) goto done;
    switch (H5Tget_class(type)) {
    case H5T_FLOAT: *type_class = NK_H5_CLASS_FLOAT; break;
    case H5T_INTEGER: *type_class = NK_H5_CLASS_INTEGER; break;
    case H5T_STRING: *type_class = NK_H5_CLASS_STRING; break;
    case H5T_NO_CLASS: goto done;
    default: *type_class = NK_H5_CLASS_OTHER; break;
    }
    *type_size = H5Tget_size(type);
    if ((space = H5Dget_space(dataset)) < 0) goto done;
    H5S_class_t space_class = H5Sget_simple_extent_type(space);
    if (space_class == H5S_NO_CLASS) goto done;
    if (space_class == H5S_NULL) {
        *rank = -1;
    } else {
        int n = H5Sget_simple_extent_ndims(space);
        if (n < 0) goto done;
        *rank = n;
        if (n > 0 && n <= max_rank) {
            hsize_t extent[H5S_MAX_RANK];
            if (H5Sget_simple_extent_dims(space, extent, NULL) < 0) goto done;
            for (int i = 0; i < n; i++) dims[i] = (uint64_t)extent[i];
        }
    }
    result = 0;
done:
    close_id(space);
    close_id(type);
    close_id(dataset);
    return result;
}

int nk_h5_dataset_read_float(int64_t file, const char *path, float *values, size_t count) {
    int result = -1;
    hid_t dataset = -1, space = -1;
    if ((dataset = H5Dopen2(file, path, H5P_DEFAULT)) < 0) goto done;
    if ((space = H5Dget_space(dataset)) < 0) goto done;
    hssize_t points = H5Sget_simple_extent_npoints(space);
    if (points < 0 || (size_t)points != count) goto done;
    if (count > 0) {
        if (!values) goto done;
        if (H5Dread(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0) goto done;
    }
    result = 0;
done:
    close_id(space);
    close_id(dataset);
    return result;
}

int nk_h5_object_header(int64_t file, const char *path, uint64_t *address, uint64_t *size) {
    hid_t object = H5Oopen(file, path, H5P_DEFAULT);
    if (object < 0) return -1;
    int result = -1;
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    H5O_native_info_t native;
    haddr_t addr;
    if (H5Oget_info3(object, &info, H5O_INFO_BASIC) >= 0 &&
        H5Oget_native_info(object, &native, H5O_NATIVE_INFO_HDR) >= 0 &&
        H5VLnative_token_to_addr(file, info.token, &addr) >= 0) {
        *address = (uint64_t)addr;
        *size = (uint64_t)native.hdr.space.total;
        result = 0;
    }
#else
    H5O_info_t info;
    if (H5Oget_info2(object, &info, H5O_INFO_BASIC | H5O_INFO_HDR) >= 0) {
        *address = (uint64_t)info.addr;
        *size = (uint64_t)info.hdr.space.total;
        result = 0;
    }
#endif
    H5Oclose(object);
    return result;
}

int64_t nk_h5_attribute_count(int64_t file, const char *path) {
    hid_t object = H5Oopen(file, path, H5P_DEFAULT);
    if (object < 0) return -1;
    nk_object_info info;
    herr_t status = NK_GET_INFO(object, &info, H5O_INFO_NUM_ATTRS);
    H5Oclose(object);
    return status < 0 ? -1 : (int64_t)info.num_attrs;
}

static void copy_truncated(char *destination, size_t capacity, const char *source, size_t length) {
    if (!destination || capacity == 0) return;
    size_t n = length < capacity - 1 ? length : capacity - 1;
    if (n > 0) memcpy(destination, source, n);
    destination[n] = 0;
}

int nk_h5_attribute_string(int64_t file, const char *path, uint64_t index,
                           char *name, size_t name_capacity, size_t *name_length,
                           char *value, size_t value_capacity, size_t *value_length) {
    int result = -1;
    hid_t attribute = -1, type = -1, space = -1, memory = -1;
    char *fixed = NULL;
    attribute = H5Aopen_by_idx(file, path, H5_INDEX_NAME, H5_ITER_INC, (hsize_t)index, H5P_DEFAULT, H5P_DEFAULT);
    if (attribute < 0) goto done;
    ssize_t length = H5Aget_name(attribute, name_capacity, name);
    if (length < 0) goto done;
    *name_length = (size_t)length;
    *value_length = 0;
    if ((type = H5Aget_type(attribute)) < 0) goto done;
    if ((space = H5Aget_space(attribute)) < 0) goto done;
    if (H5Tget_class(type) != H5T_STRING || H5Sget_simple_extent_npoints(space) != 1) {
        result = 0;
        goto done;
    }
    htri_t variable = H5Tis_variable_str(type);
    if (variable < 0) goto done;
    if (variable) {
        if ((memory = H5Tcopy(H5T_C_S1)) < 0) goto done;
        if (H5Tset_size(memory, H5T_VARIABLE) < 0) goto done;
        H5T_cset_t cset = H5Tget_cset(type);
        if (cset >= 0 && H5Tset_cset(memory, cset) < 0) goto done;
        char *text = NULL;
        if (H5Aread(attribute, memory, &text) < 0) goto done;
        size_t n = text ? strlen(text) : 0;
        *value_length = n;
        copy_truncated(value, value_capacity, text ? text : "", n);
        if (text) H5free_memory(text);
    } else {
        size_t size = H5Tget_size(type);
        if (size == 0 || size > ((size_t)1 << 24)) goto done;
        if ((memory = H5Tcopy(type)) < 0) goto done;
        if (!(fixed = calloc(size + 1, 1))) goto done;
        if (H5Aread(attribute, memory, fixed) < 0) goto done;
        size_t n = strnlen(fixed, size);
        *value_length = n;
        copy_truncated(value, value_capacity, fixed, n);
    }
    result = 1;
done:
    free(fixed);
    close_id(memory);
    close_id(space);
    close_id(type);
    close_id(attribute);
    return result;
}

/* Creates every missing group on `path` up to (and, when `include_last`, including) its last
 * component. An existing object that is not a group is an error. */
static int ensure_groups(hid_t file, const char *path, int include_last) {
    size_t length = strlen(path);
    char *prefix = malloc(length + 1);
    if (!prefix) return -1;
    int result = 0;
    for (size_t i = 1; i <= length && result == 0; i++) {
        int at_end = i == length;
        if (!at_end && path[i] != '/') continue;
        if (at_end && !include_last) break;
        memcpy(prefix, path, i);
        prefix[i] = 0;
        htri_t exists = H5Lexists(file, prefix, H5P_DEFAULT);
        if (exists < 0) { result = -1; break; }
        if (exists) {
            nk_object_info info;
            hid_t object = H5Oopen(file, prefix, H5P_DEFAULT);
            if (object < 0) { result = -1; break; }
            herr_t status = NK_GET_INFO(object, &info, H5O_INFO_BASIC);
            H5Oclose(object);
            if (status < 0 || info.type != H5O_TYPE_GROUP) result = -1;
        } else {
            hid_t group = H5Gcreate2(file, prefix, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
            if (group < 0) result = -1; else H5Gclose(group);
        }
    }
    free(prefix);
    return result;
}

int nk_h5_create_group(int64_t file, const char *path) {
    return ensure_groups(file, path, 1);
}

int nk_h5_set_string_attribute(int64_t file, const char *path, const char *name, const char *value) {
    int result = -1;
    hid_t object = -1, type = -1, space = -1, attribute = -1;
    if ((object = H5Oopen(file, path, H5P_DEFAULT)) < 0) goto done;
    htri_t exists = H5Aexists(object, name);
    if (exists < 0) goto done;
    if (exists && H5Adelete(object, name) < 0) goto done;
    if ((type = H5Tcopy(H5T_C_S1)) < 0) goto done;
    if (H5Tset_size(type, H5T_VARIABLE) < 0 || H5Tset_cset(type, H5T_CSET_UTF8) < 0) goto done;
    if ((space = H5Screate(H5S_SCALAR)) < 0) goto done;
    if ((attribute = H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (H5Awrite(attribute, type, &value) < 0) goto done;
    result = 0;
done:
    close_id(attribute);
    close_id(space);
    close_id(type);
    if (object >= 0) H5Oclose(object);
    return result;
}

int nk_h5_write_float_dataset(int64_t file, const char *path, int rank, const uint64_t *dims,
                              const float *values, size_t count) {
    int result = -1;
    hid_t space = -1, dataset = -1;
    if (rank < 0 || rank > H5S_MAX_RANK) goto done;
    if (ensure_groups(file, path, 0) < 0) goto done;
    if (rank == 0) {
        space = H5Screate(H5S_SCALAR);
    } else {
        hsize_t extent[H5S_MAX_RANK];
        for (int i = 0; i < rank; i++) extent[i] = (hsize_t)dims[i];
        space = H5Screate_simple(rank, extent, NULL);
    }
    if (space < 0) goto done;
    if ((dataset = H5Dcreate2(file, path, H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0) goto done;
    if (count > 0) {
        if (!values) goto done;
        if (H5Dwrite(dataset, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values) < 0) goto done;
    }
    result = 0;
done:
    close_id(dataset);
    close_id(space);
    return result;
}

int nk_hdf5_version(unsigned *major, unsigned *minor, unsigned *release) {
    return H5get_libversion(major, minor, release) < 0 ? -1 : 0;
}
