#ifndef NEURITE_CK_VMATH_H
#define NEURITE_CK_VMATH_H

#include <stdint.h>

// Vectorised transcendental functions over contiguous float arrays, per ISA path.
// (Declarations are added here as the kernels land.)

#endif
