// Open MPI, as Swift can call it. MPI's handles and constants (MPI_COMM_WORLD, MPI_FLOAT,
// MPI_SUM, ...) are macros that expand to casts of the addresses of library globals, which
// Swift cannot import; these inline functions hand them over as values. Only the
// DistributedTraining module sees this header.
#ifndef NEURITE_CMPI_SHIM_H
#define NEURITE_CMPI_SHIM_H

#include <mpi.h>

static inline MPI_Comm neurite_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype neurite_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype neurite_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Op neurite_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Errhandler neurite_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline void *neurite_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int neurite_mpi_success(void) { return MPI_SUCCESS; }
static inline int neurite_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline int neurite_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }

#endif
