"""The offline experiment (the paper's appendix, "Offline training"; Tables 2 and 3): one world model
per task, trained on the fixed offline data, then every planner evaluated on it from the same start
states.

Each step is resumable, records the settings it was made with (``latco.paper.settings``) and marks its
result finished (``latco.paper.results``):

    model = offline_model("obstacle", get_profile("quick"), "results/quick")
    table = offline_evaluation("obstacle", "latco", get_profile("quick"), model, out_dir)
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import pandas as pd

from latco import data
from latco.agent import evaluate
from latco.model import RSSM
from latco.paper import paths, settings
from latco.paper.profiles import Profile, make_profile_planner
from latco.paper.recipe import oracle_data
from latco.paper.results import MODEL_DONE, write_marker
from latco.replay import Replay
from latco.train import CHECKPOINT, load_checkpoint, train_world_model


def world_model_for_task(
    task: str,
    profile: Profile,
    episodes: list[data.Episode],
    run_dir: str | os.PathLike,
    seed: int = 0,
    steps: int | None = None,
    device: str | None = None,
    data_seed: int | None = None,
) -> RSSM:
    """Train (or resume) the profile's world model for ``task`` on ``episodes`` with ``seed`` (the
    initialization and the batches; ``data_seed``: the seed the episodes were collected with, None:
    ``seed``, as recorded).

    ``run_dir`` records the settings (``latco.paper.settings.model_settings``). A model trained with other
    settings is kept and ``SettingsMismatch`` names the difference, except more ``steps``: training
    continues from the checkpoint, exactly as one longer run would have gone. Fewer steps than the
    checkpoint has is an error too (a model cannot be untrained). ``trained.json`` states the
    steps the checkpoint holds.
    """
    run_dir = Path(run_dir)
    cfg = profile.world_model_for(task)
    train_cfg = profile.train_for(task)
    train_cfg = replace(train_cfg, seed=seed, steps=steps if steps is not None else train_cfg.steps)
    wanted = settings.model_settings(profile, task, seed, train_cfg.steps, data_seed=data_seed)
    if (run_dir / CHECKPOINT).exists():
        have = load_checkpoint(run_dir / CHECKPOINT)["step"]
        if have > train_cfg.steps:
            raise settings.SettingsMismatch(
                f"the world model in {run_dir} has trained {have} steps and {train_cfg.steps} were asked "
                "for: "
                f"a model cannot be untrained. Ask for {have} or more (task_train_steps.{task}={have}), or "
                f"delete {run_dir} to train {train_cfg.steps} steps from scratch.")
    # more steps (checked above): training goes on from the checkpoint
    settings.claim(run_dir, profile, wanted, f"world model of {task}", "error",
                   allowed=("train.steps",) + settings.MODEL_BOOKKEEPING)
    # windows cannot be longer than the shortest episode (Obstacle has 31 images)
    length = min(train_cfg.length, min(len(e.images) for e in episodes))
    replay = Replay(episodes, length=length, seed=seed, balance=train_cfg.balance)
    model = train_world_model(cfg, replay, run_dir, train_cfg, device=device)
    write_marker(run_dir / MODEL_DONE,
                 {"steps": model.trained_steps, "episodes": len(episodes),
                  "env_steps": sum(len(e) for e in episodes), "record": settings.read_record(run_dir)})
    return model


OFFLINE_EVAL_SEED = 3_000_000
"""Evaluation episodes of the offline experiment start from these seeds, the same for every planner."""


def offline_evaluation(
    task: str,
    planner: str,
    profile: Profile,
    model: RSSM,
    out_dir: str | os.PathLike,
    model_seed: int | None = None,
    t_cache: int | None = None,
    data_seed: int | None = None,
    **planner_overrides: object,
) -> pd.DataFrame:
    """Table 2: evaluate ``planner`` with the world model trained offline (``offline_model``).
    ``t_cache``: re-plan every ``t_cache`` steps (closed loop, beyond the paper; None: the task's).

    Every planner sees the same model and the same start states; resumable through ``out_dir``,
    which gets ``table.csv`` when every episode has run (``latco.storage``). ``out_dir`` records the
    settings (``latco.paper.settings.offline_settings``; ``model_seed``: the seed of the profile's offline
    model that ``model`` is, so a re-trained model re-makes the evaluation; None: a model from
    elsewhere). An evaluation made with other settings is moved aside and made anew, never returned.
    """
    episodes = profile.offline_episodes(task, t_cache)
    agent = make_profile_planner(profile, planner, **planner_overrides)
    wanted = settings.offline_settings(profile, task, planner, model_seed, t_cache, data_seed,
                                       **planner_overrides)
    settings.claim(out_dir, profile, wanted, f"offline evaluation of {planner} on {task}", "remake")
    return evaluate(model, agent, task, episodes, seed=OFFLINE_EVAL_SEED, out_dir=out_dir, t_cache=t_cache)


def train_and_evaluate(task: str, profile: Profile, data_dir: str | os.PathLike, folder: str | os.PathLike,
                       planners: tuple[str, ...], seed: int = 0,
                       data_seed: int = 0) -> dict[str, pd.DataFrame]:
    """A study's variant of the offline experiment: the offline data in ``data_dir`` (collected, or
    the episodes already there), the world model of training ``seed`` in ``folder/model_seed<seed>``,
    and each planner on Table 2's starts in ``folder/seed<seed>/<planner>``; resumable like the
    workflow. Returns each planner's table."""
    folder = Path(folder)
    episodes = oracle_data(task, profile, data_dir, workers=1)
    model = world_model_for_task(task, profile, episodes["train"], folder / f"model_seed{seed}",
                                 seed=seed, data_seed=data_seed)
    return {planner: offline_evaluation(task, planner, profile, model, folder / f"seed{seed}" / planner,
                                        model_seed=seed, data_seed=data_seed)
            for planner in planners}


def offline_model(task: str, profile: Profile, results: str | os.PathLike, seed: int = 0,
                  device: str | None = None, data_seed: int | None = None) -> RSSM:
    """The offline world model of ``task`` trained with ``seed`` under ``results`` (``latco.paper.paths``
    layout), made if missing, on the data of ``data_seed`` (None: ``seed``; the profile's extra
    models, ``Profile.model_seeds``, share the first one's data).

    Collects the profile's data and trains (or resumes) the model; existing episodes are reused and
    a finished model is only loaded.
    """
    data_seed = seed if data_seed is None else data_seed
    episodes = oracle_data(task, profile, paths.data_dir(results, task), data_seed)
    return world_model_for_task(task, profile, episodes["train"], paths.model_dir(results, task, seed),
                                seed=seed, device=device, data_seed=data_seed)


def offline_run(task: str, planner: str, profile: Profile, results: str | os.PathLike, seed: int = 0,
                device: str | None = None, t_cache: int | None = None, data_seed: int | None = None,
                **planner_overrides: object) -> pd.DataFrame:
    """Offline experiment for one (task, planner, model ``seed``, ``t_cache``) under ``results``, every
    missing piece made first.

    Data, model and evaluation are all resumable, so this is cheap when they exist (Snakemake) and
    self-sufficient when they do not (a notebook run on its own).
    """
    model = offline_model(task, profile, results, seed, device, data_seed)
    return offline_evaluation(task, planner, profile, model,
                              paths.offline_dir(results, task, planner, seed, t_cache), model_seed=seed,
                              t_cache=t_cache, data_seed=data_seed, **planner_overrides)
