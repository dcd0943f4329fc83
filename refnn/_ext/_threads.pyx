# cython: language_level=3
"""Thread count for the OpenMP kernels: $REFNN_NUM_THREADS, else all cores."""
import os

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int refnn_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int refnn_max_threads(void) { return 1; }
    #endif
    """
    int refnn_max_threads()


def max_threads():
    """Threads the kernels use: $REFNN_NUM_THREADS if set, else OpenMP's maximum."""
    env = os.environ.get("REFNN_NUM_THREADS")
    if env:
        return max(1, int(env))
    return refnn_max_threads()


def has_openmp():
    return refnn_max_threads() > 1 or os.environ.get("OMP_NUM_THREADS") == "1"
