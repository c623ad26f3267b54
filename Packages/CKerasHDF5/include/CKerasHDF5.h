#ifndef CKERASHDF5_H
#define CKERASHDF5_H
/* Shim over libhdf5 for KerasInterop: filled in by the HDF5 reader/writer. */
int nk_hdf5_version(unsigned *major, unsigned *minor, unsigned *release);
#endif
