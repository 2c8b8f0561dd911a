"""Set latco's thread defaults before any test module imports torch (busy-waiting OpenMP threads
slow everything down many times on a shared 2-core machine)."""

import latco  # noqa: F401  (sets OMP_WAIT_POLICY=PASSIVE and OPENBLAS_NUM_THREADS=1 if unset)
