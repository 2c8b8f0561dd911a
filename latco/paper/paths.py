"""Where things live: the repository root, figures and results, independent of the working directory.

One layout for the notebooks, the Snakefile and the tests (``results`` = ``results/<profile>``):

    results/<profile>/data/<task>/                      offline data (recipe.oracle_data)
    results/<profile>/models/<task>/                    offline world model (checkpoint.pt, metrics.csv)
    results/<profile>/models/<task>_seed<k>/            ... trained with seed k (k > 0) on the same data
    results/<profile>/offline/<task>/<planner>/         offline evaluation (rows.jsonl, episodes/, plans/)
    results/<profile>/offline/<task>_seed<k>/<planner>/ ... on the model of seed k
    results/<profile>/offline/<task>/<planner>_tcache<n>/  ... re-planning every n steps (closed loop)
    results/<profile>/online/<task>/<planner>/seed<k>/  online run (episodes/, model/, eval_*/)
    results/<profile>/online/<task>/_seed_phase/seed<k>/  its planner-independent start (from scratch)
    results/<profile>/notebooks/                        executed notebooks
    figures/ (quick, paper) or results/smoke/figures/   figures (PNG + PDF) and tables (CSV + Markdown)
"""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
"""The repository root (latco is installed editable, so this is the checkout)."""

FIGURES = ROOT / "figures"
RESULTS = ROOT / "results"

PathLike = str | os.PathLike


def results_dir(profile: str, root: PathLike | None = None) -> Path:
    """``<root>/<profile>``; root defaults to ``results/`` in the checkout."""
    return Path(root if root is not None else RESULTS) / profile


def figures_dir(profile: str) -> Path:
    """The profile's figures directory (``Profile.figures_dir``): the committed ``figures/`` for quick
    and paper, ``results/smoke/figures`` for smoke."""
    from latco.paper.profiles import get_profile  # profiles import the model; keep paths import-light

    return ROOT / get_profile(profile).figures_dir


def data_dir(results: PathLike, task: str) -> Path:
    return Path(results) / "data" / task


def _task_folder(task: str, seed: int | str) -> str:
    """``task`` for the model of seed 0, ``<task>_seed<k>`` for seed k (a str: a Snakemake wildcard)."""
    return task if str(seed) == "0" else f"{task}_seed{seed}"


def model_dir(results: PathLike, task: str, seed: int | str = 0) -> Path:
    return Path(results) / "models" / _task_folder(task, seed)


def offline_dir(results: PathLike, task: str, planner: str, model_seed: int | str = 0,
                t_cache: int | str | None = None) -> Path:
    """The evaluation of ``planner`` on ``task``'s model of ``model_seed``; ``t_cache``: re-planning
    every ``t_cache`` steps instead of the task's (None)."""
    name = planner if t_cache is None else f"{planner}_tcache{t_cache}"
    return Path(results) / "offline" / _task_folder(task, model_seed) / name


def online_dir(results: PathLike, task: str, planner: str, seed: int) -> Path:
    return Path(results) / "online" / task / planner / f"seed{seed}"


def online_seed_phase_dir(results: PathLike, task: str, seed: int | str) -> Path:
    """The seed episodes and first model that every planner's from-scratch run of ``seed`` starts from."""
    return Path(results) / "online" / task / "_seed_phase" / f"seed{seed}"
