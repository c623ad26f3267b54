#include "CKerasHDF5.h"
#include <hdf5.h>

int nk_hdf5_version(unsigned *major, unsigned *minor, unsigned *release) {
    return H5get_libversion(major, minor, release) < 0 ? -1 : 0;
}
