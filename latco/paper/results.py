"""Results are read, not recomputed: typed readers of what the workflow's producers wrote.

The producers (``latco.paper.recipe``, ``latco.paper.offline``, ``latco.paper.online``, run by
notebooks 01-04 under the Snakefile) write into ``results/<profile>/`` (layout: ``latco.paper.paths``),
record in each result folder the settings it was made with (``settings.json``,
``latco.paper.settings``; ``record`` below reads it) and mark each result finished with one file:

    data/<task>/episodes.json                     the offline data is collected
    models/<task>/trained.json                    the offline world model has trained its steps
    offline/<task>/<planner>/table.csv            every offline evaluation episode has run
    online/<task>/<planner>/seed<k>/evaluations.csv   the online run has collected all episodes

Those files are the Snakefile's outputs, so ``snakemake -n`` after deleting one re-runs only that
job and what depends on it. Figures and tables (notebooks 10-14) only read, through the functions
below; a missing or unfinished result raises ``MissingResult`` naming the rule, the notebook and
the command that make it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latco import data, storage
from latco.model import RSSM
from latco.paper import paths
from latco.paper.profiles import Profile

DATA_DONE = "episodes.json"
"""Written into ``data/<task>/`` by ``recipe.oracle_data`` once every split is collected."""
MODEL_DONE = "trained.json"
"""Written into a model directory by ``offline.world_model_for_task`` once training is done."""
ONLINE_DONE = "evaluations.csv"
"""Written into an online run's directory by ``online.online_training`` at its end."""
SEED_PHASE_DONE = "seed_phase.json"
"""Written into an online seed phase's directory by ``online.seed_phase`` once its model is trained."""

PRODUCERS = {
    "data": ("data", "notebooks/01_data.ipynb"),
    "model": ("world_model", "notebooks/02_world_model.ipynb"),
    "offline": ("offline", "notebooks/03_offline_planning.ipynb"),
    "online": ("online", "notebooks/04_online_training.ipynb"),
}
"""Kind of result -> (Snakefile rule, notebook) that makes it."""


class MissingResult(FileNotFoundError):
    """A result that a figure or table needs is not on disk (or not finished)."""

    def __init__(self, kind: str, path: Path, detail: str = "") -> None:
        rule, notebook = PRODUCERS[kind]
        super().__init__(
            f"{path} is missing{detail}: the {kind} result is made by the Snakefile rule `{rule}` "
            f"({notebook}). Make it with `snakemake --cores 2 {path}` (or `make paper` for "
            "everything)."
        )
        self.kind, self.path, self.rule, self.notebook = kind, path, rule, notebook


def locate(profile: str, results: str | os.PathLike | None = None,
           fig_dir: str | os.PathLike | None = None, seeds: int | None = None,
           overrides: dict | str | None = None) -> tuple[Profile, Path, Path]:
    """A notebook's set-up: the profile (with ``seeds`` online seeds if given, as the Snakefile's
    ``--config seeds=N``, and ``overrides`` applied: ``{"planners.latco.iterations": 100}`` or
    ``"planners.latco.iterations=100 ..."``, ``latco.paper.settings``), its results directory (default
    ``results/<profile>``) and its figures directory (default ``Profile.figures_dir``)."""
    from latco.paper.profiles import get_profile
    from latco.paper.settings import parse_assignments

    if isinstance(overrides, str):  # papermill's -p gives text: "{a.b: 1}" (YAML) or "a.b=1 c=2"
        import yaml

        loaded = yaml.safe_load(overrides) if overrides.strip() else {}
        overrides = loaded if isinstance(loaded, dict) else parse_assignments(overrides)
    prof = get_profile(profile).with_overrides(overrides).with_seeds(seeds)
    return (prof, Path(results) if results else paths.results_dir(profile),
            Path(fig_dir) if fig_dir else paths.figures_dir(profile))


def record(folder: str | os.PathLike) -> dict:
    """What a result folder records about how it was made (``settings.json``): ``settings``,
    ``profile``, ``overrides``, ``commit``, ``written``. Raises FileNotFoundError if it has none."""
    from latco.paper.settings import SETTINGS_FILE, read_record

    found = read_record(folder)
    if found is None:
        raise FileNotFoundError(f"{Path(folder) / SETTINGS_FILE} is missing: {folder} is not a result "
                                "folder, or was made by code that did not record settings")
    return found


def _check_names(task: str, planner: str | None = None) -> None:
    """A task or planner name that no producer can make is named as such, not as a missing result."""
    from latco.envs import task_spec
    from latco.planners import available_planners

    task_spec(task)  # ValueError listing the tasks
    if planner is not None and planner not in available_planners():
        raise ValueError(f"unknown planner {planner!r}; choose one of: {', '.join(available_planners())}")


def _finished(kind: str, path: Path) -> Path:
    if not path.exists():
        unfinished = " (the run started but has not finished)" if path.parent.exists() else ""
        raise MissingResult(kind, path, unfinished)
    return path


def data_done(results: str | os.PathLike, task: str) -> Path:
    return paths.data_dir(results, task) / DATA_DONE


def model_done(results: str | os.PathLike, task: str, seed: int | str = 0) -> Path:
    return paths.model_dir(results, task, seed) / MODEL_DONE


def offline_done(results: str | os.PathLike, task: str, planner: str, model_seed: int | str = 0,
                 t_cache: int | str | None = None) -> Path:
    return paths.offline_dir(results, task, planner, model_seed, t_cache) / storage.FINISHED


def online_done(results: str | os.PathLike, task: str, planner: str, seed: int) -> Path:
    return paths.online_dir(results, task, planner, seed) / ONLINE_DONE


def seed_phase_done(results: str | os.PathLike, task: str, seed: int | str) -> Path:
    return paths.online_seed_phase_dir(results, task, seed) / SEED_PHASE_DONE


def model(results: str | os.PathLike, task: str, device: str | torch.device | None = None,
          seed: int = 0) -> RSSM:
    """The offline world model of ``task`` trained with ``seed``, trained to the end, in eval mode."""
    from latco.train import load_model

    _check_names(task)
    _finished("model", model_done(results, task, seed))
    return load_model(paths.model_dir(results, task, seed), device=device)


def heldout_episodes(results: str | os.PathLike, task: str, n: int | None = None) -> list[data.Episode]:
    """The first ``n`` (default: all) held-out noisy-oracle episodes of ``task``'s offline data."""
    _check_names(task)
    _finished("data", data_done(results, task))
    return data.load_episodes(paths.data_dir(results, task) / "heldout")[:n]


def heldout_starts(model: RSSM, results: str | os.PathLike, task: str, n: int) -> list[torch.Tensor]:
    """Filtered features of the first frames of ``n`` held-out episodes: start states for planning."""
    from latco.agent import infer_feature

    return [infer_feature(model, [ep.images[0]], []) for ep in heldout_episodes(results, task, n)]


@dataclass(frozen=True)
class Evaluation:
    """A finished evaluation folder (``latco.storage``): its table, episodes and plans."""

    folder: Path
    table: pd.DataFrame
    """One row per episode (``latco.agent.ROW_COLUMNS``)."""

    def episode(self, index: int) -> data.Episode:
        """The executed episode of row ``index`` (found beside the table wherever it was moved)."""
        return data.load_episode(self.folder / "episodes" / Path(self.table["episode_file"][index]).name)

    def plans(self, index: int) -> list[storage.SavedPlan]:
        """Every plan of episode ``index``, first plan first."""
        return storage.load_plans(self.folder / "plans" / Path(self.table["plans_file"][index]).name)

    def plan_and_frames(self, index: int, plan: int = 0) -> tuple[storage.SavedPlan, np.ndarray]:
        """Plan ``plan`` (0: the first) of episode ``index`` and the frames the agent saw from the step
        it was made at: ``frames[t]`` is the observation t steps after the plan's start (Fig. 4)."""
        plans = self.plans(index)
        if not -len(plans) <= plan < len(plans):
            raise IndexError(f"episode {index} of {self.folder} has {len(plans)} plans; plan {plan} does "
                             f"not exist (0 .. {len(plans) - 1})")
        chosen = plans[plan]
        return chosen, self.episode(index).images[chosen.step:]


def offline(results: str | os.PathLike, task: str, planner: str, model_seed: int = 0,
            t_cache: int | None = None) -> Evaluation:
    """The offline evaluation of ``planner`` on ``task``'s offline model of ``model_seed`` (Tables 2,
    3); ``t_cache``: the closed-loop one re-planning every ``t_cache`` steps (``Profile.closed_loop``)."""
    _check_names(task, planner)
    path = _finished("offline", offline_done(results, task, planner, model_seed, t_cache))
    return Evaluation(path.parent, pd.read_csv(path))


def offline_tables(results: str | os.PathLike, profile: Profile, tasks: Sequence[str] | None = None,
                   seed: int = 0) -> dict[tuple[str, str], pd.DataFrame]:
    """Every offline table of the profile's grid (tasks x ``offline_planners``, executed as the paper
    does), by (task, planner): the evaluations on every model of the task (``Profile.model_seeds``)
    one after the other, with a ``model_seed`` column."""
    from latco.envs import TASKS

    return {(task, planner): pd.concat([offline(results, task, planner, s).table.assign(model_seed=s)
                                        for s in profile.model_seeds(task, seed)], ignore_index=True)
            for task in (tasks or TASKS) for planner in profile.offline_planners}


def closed_loop_tables(results: str | os.PathLike, profile: Profile,
                       seed: int = 0) -> dict[tuple[str, str, int], pd.DataFrame]:
    """The closed-loop evaluations (``Profile.closed_loop``, beyond the paper) by (task, planner,
    T_cache), on the task's first model."""
    planners = profile.closed_loop_planner_names()
    return {(task, planner, t_cache): offline(results, task, planner, seed, t_cache).table
            .assign(model_seed=seed)
            for task, t_cache in profile.closed_loop.items() for planner in planners}


def online(results: str | os.PathLike, task: str, planner: str, seed: int) -> pd.DataFrame:
    """The evaluations of one online run: one row per evaluation (episodes collected, success, …)."""
    _check_names(task, planner)
    return pd.read_csv(_finished("online", online_done(results, task, planner, seed)))


def online_tables(results: str | os.PathLike, profile: Profile) -> dict[tuple[str, str, int], pd.DataFrame]:
    """Every online run of the profile's grid, by (task, planner, seed)."""
    return {(task, planner, seed): online(results, task, planner, seed)
            for task, planner, seed in profile.online_runs()}


def write_marker(path: Path, content: dict) -> Path:
    """A producer's finished-marker (``DATA_DONE``, ``MODEL_DONE``) with what it records, atomically.

    A marker that already says the same (all but its ``record``, the copy of the folder's settings
    record with its commit and time) is left untouched: its modification time is what Snakemake
    compares, and re-claiming finished data or a finished model (another seed's job, a study) must
    not make everything built on it look out of date."""
    path = Path(path)
    if path.exists():
        try:
            old = json.loads(path.read_text())
        except (OSError, ValueError):
            old = None
        if isinstance(old, dict) and _without_record(old) == _without_record(json.loads(json.dumps(content))):
            return path
    return storage.write_atomic(path, lambda tmp: tmp.write_text(json.dumps(content, indent=1)))


def _without_record(content: dict) -> dict:
    return {k: v for k, v in content.items() if k != "record"}
