"""The paper pipeline: everything that rebuilds the paper's figures and tables from this library.

- ``profiles``: the ``paper``, ``quick`` and ``smoke`` budgets (model sizes, data, training, planner
  budgets, run grids); ``settings``: overrides by dotted path and the record each result keeps of
  the settings it was made with.
- ``recipe``, ``offline``, ``online``: the producers that notebooks 01-04 run as the Snakefile's
  jobs (``workflow`` runs a notebook through papermill; ``produce`` runs every producer of a profile
  in one process); ``paths``: where their results live.
- ``results``: typed readers of the finished results; ``analyses``, ``scaling``, ``diagnostics``,
  ``benchmark``: measurements beyond the paper's tables.
- ``figures``, ``tables``, ``plotting``, ``video``, ``manifest``: the paper's figures and Tables 1-3,
  and which notebook writes which file of ``figures/``.

Planning with collocation in your own world model needs only the library (``latco.planners``,
``latco.solver``, ``latco.model``, ``latco.agent``, ...), which never imports this package.
"""
