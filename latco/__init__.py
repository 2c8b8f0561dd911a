"""latco: Model-Based Reinforcement Learning via Latent-Space Collocation.

The library is ``latco.<module>``: the environments (``envs``), the world model and its training
(``model``, ``train``, ``replay``, ``data``), the collocation solver and the planners (``solver``,
``planners``, ``analytic``), the agent (``agent``) and what it writes to disk (``storage``). The paper's
rebuild (profiles, producers, readers, figures, tables, the Snakefile's jobs) is ``latco.paper``,
which uses the library and is never imported by it.

Thread settings are applied before numpy/torch are imported by anything in this package:
with 2 cores, OpenMP's busy-waiting makes torch 5-15x slower under any other load, and
OpenBLAS is fastest single-threaded on the small blocks the LM solver factorizes.
"""

import os as _os

_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
