"""The online experiment (paper Algorithm 1, Table 1): seed data, then repeat {act with the planner
plus exploration noise; train the world model on everything collected}, evaluating as it goes.
The seed data and first model are random episodes (``OnlineConfig.start = "scratch"``) or the
task's offline data and world model (``"offline"``: the paper's protocol for Push).

A run lives in one directory and resumes after a kill with no episode lost or collected twice; it
writes ``evaluations.csv`` at its end (``latco.paper.results``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm  # text bars: notebooks run headless through papermill (no ipywidgets)

from latco import data, envs, storage
from latco.agent import evaluate, run_episode
from latco.envs.oracle import RandomPolicy
from latco.model import RSSM
from latco.paper import paths, settings
from latco.paper.profiles import Profile, make_profile_planner
from latco.paper.results import ONLINE_DONE, SEED_PHASE_DONE, model_done, write_marker
from latco.replay import Replay
from latco.train import CHECKPOINT, METRICS, _atomic_save, load_checkpoint, train_world_model

ONLINE_EVAL_SEED = 2_000_000
"""Evaluation episodes of online runs start from these seeds, the same for every planner."""
PHASES = "phases.csv"
"""Wall seconds of each phase of an online run (seed data, training, collecting, evaluating),
appended as the run goes: where an online run's time goes (``benchmarks/online_time.py``)."""
_PHASE_FIELDS = ["phase", "episodes_collected", "seconds"]


@contextmanager
def _timed(run_dir: Path, phase: str, collected: int) -> Iterator[None]:
    """Append ``phase``'s wall time to the run's ``phases.csv`` when it finishes."""
    start = time.perf_counter()
    yield
    storage.append_csv_row(run_dir / PHASES, _PHASE_FIELDS, {
        "phase": phase, "episodes_collected": collected, "seconds": round(time.perf_counter() - start, 3)})


def online_training(
    task: str,
    planner: str,
    profile: Profile,
    run_dir: str | os.PathLike,
    seed: int = 0,
    device: str | None = None,
    results: str | os.PathLike | None = None,
    **planner_overrides: object,
) -> pd.DataFrame:
    """Algorithm 1: seed data, then repeat {act with the planner + noise; train the model}.

    Everything lives in ``run_dir``: ``episodes/`` (seed episodes first, then one per
    iteration, each saved before the model trains on it), ``model/`` (checkpoint and metrics),
    ``eval_<k>/`` per evaluation, ``phases.csv`` (seconds per phase) and ``evaluations.csv``.
    A killed run resumes from the episodes on disk and the last checkpoint; no episode is lost or
    collected twice. ``settings.json`` records what the run is made with
    (``latco.paper.settings.online_settings``): a run made with other settings is moved aside to
    ``<run_dir>.replaced`` and started afresh, never continued or returned.
    With ``profile.online_for(task).start == "offline"`` the run starts from the offline world model
    and data in ``results`` (``models/<task>``, ``data/<task>``; default: the results folder that
    holds ``run_dir``), whose settings it records too: a re-trained offline model re-makes the run.
    Returns the evaluation table (one row per evaluation: episodes collected, success rate, …).
    """
    cfg, run_dir = profile.online_for(task), Path(run_dir)
    size = profile.world_model.image_size
    episodes_dir, model_dir = run_dir / "episodes", run_dir / "model"
    model_cfg = profile.world_model_for(task)
    offline = cfg.start == "offline"
    model_seed = 0
    if offline:
        results = _results_holding(run_dir, task) if results is None else Path(results)
        source = _offline_source(results, task)
        model_seed = _check_offline_model(source, profile, task)
    wanted = settings.online_settings(profile, task, planner, seed, model_seed, **planner_overrides)
    settings.claim(run_dir, profile, wanted,
                   f"online run of {planner} on {task} (seed {seed})", "remake")
    if offline:
        first_steps = _start_from_offline(source, model_dir, seed)
        prior = data.load_episodes(paths.data_dir(results, task) / "train")
        seed_count = 0
    else:
        shared = _finished_seed_phase(results, run_dir, profile, task, seed)
        if shared is not None:
            _start_from_seed_phase(shared, run_dir)
        with _timed(run_dir, "seed episodes", 0):
            _collect_seed_episodes(task, profile, episodes_dir, seed)
        first_steps, prior, seed_count = cfg.initial_train_steps, [], cfg.seed_episodes
    episodes = data.load_episodes(episodes_dir) if episodes_dir.exists() else []
    replay = _replay(profile, task, prior + episodes, seed)

    def train(total_steps: int, collected: int) -> RSSM:
        with _timed(run_dir, "train", collected):
            return _train(profile, model_cfg, replay, model_dir, total_steps, seed, device)

    agent = make_profile_planner(profile, planner, **planner_overrides)

    def evaluate_if_due(collected: int, model: RSSM) -> None:
        """Evaluate before the first planner episode (the seed-data or offline model; unless
        ``eval_at_start`` is off), after every eval_every-th episode, and at the end (resumes a
        half-finished evaluation)."""
        if collected == 0 and not cfg.eval_at_start:
            return
        if collected % cfg.eval_every == 0 or collected == cfg.episodes:
            with _timed(run_dir, "evaluate", collected):
                evaluate(model, agent, task, cfg.eval_episodes, seed=ONLINE_EVAL_SEED,
                         out_dir=run_dir / f"eval_{collected:04d}", progress=False)

    # Each iteration k: collect episode k (saved at once) -> train -> evaluate if due. After a
    # crash, the episodes on disk say how far the run got; training and evaluation resume.
    done = max(len(episodes) - seed_count, 0)
    model = train(first_steps + done * cfg.train_steps_per_episode, done)
    evaluate_if_due(done, model)
    if done < cfg.episodes:  # a finished run builds no environment
        env = envs.make_env(task, seed=seed, image_size=size)
        try:
            for k in tqdm(range(done, cfg.episodes), desc=f"online {task} {planner}", unit="ep",
                          initial=done, total=cfg.episodes):
                index = seed_count + k
                with _timed(run_dir, "collect", k + 1):
                    result = run_episode(env, model, agent, seed=seed + index,
                                         explore_noise=cfg.explore_noise)
                data.save_episode(data.episode_path(episodes_dir, index), result.episode)
                replay.add(result.episode)
                model = train(first_steps + (k + 1) * cfg.train_steps_per_episode, k + 1)
                evaluate_if_due(k + 1, model)
        finally:
            env.close()
    for folder in run_dir.glob("eval_*"):  # evaluations a run of the earlier code left unmarked
        storage.EvaluationLog(folder).finish_if_complete(cfg.eval_episodes)
    table = online_evaluations(run_dir)
    storage.write_table(run_dir / ONLINE_DONE, table)
    return table


def _collect_seed_episodes(task: str, profile: Profile, episodes_dir: Path, seed: int) -> None:
    """Algorithm 1's seed episodes (random actions held ``seed_hold`` steps), resuming what is on disk
    (one definition for the run and its seed phase)."""
    cfg = profile.online_for(task)
    data.collect(task, RandomPolicy(envs.task_spec(task).action_size, cfg.seed_hold), cfg.seed_episodes,
                 episodes_dir, seed, profile.world_model.image_size)


def _replay(profile: Profile, task: str, episodes: list[data.Episode], seed: int) -> Replay:
    """The replay an online run trains from (one definition for the run and its seed phase)."""
    length = min(profile.train.length, envs.task_spec(task).t_tot + 1)
    return Replay(episodes, length=length, seed=seed, balance=profile.train.balance)


def _train(profile: Profile, model_cfg: object, replay: Replay, model_dir: Path, total_steps: int, seed: int,
           device: str | None) -> RSSM:
    """Train (or resume) the run's world model to ``total_steps`` gradient steps."""
    train_cfg = replace(profile.train, steps=total_steps, seed=seed)
    return train_world_model(model_cfg, replay, model_dir, train_cfg, device=device, progress=False)


def seed_phase(task: str, profile: Profile, out_dir: str | os.PathLike, seed: int = 0,
               device: str | None = None) -> Path:
    """The planner-independent start of a from-scratch online run: Algorithm 1's seed episodes and the
    world model trained on them for ``initial_train_steps``; returns its finished marker.

    Every planner's run of (``task``, ``seed``) starts exactly this way, so the Snakefile makes it once in
    ``paths.online_seed_phase_dir`` and each run copies it (``online_training`` finds it in its results
    folder): the same episodes and checkpoint bit for bit, computed once instead of once per planner.
    Resumes after a kill; ``settings.json`` records what it is made with (other settings: made afresh).
    """
    cfg, out_dir = profile.online_for(task), Path(out_dir)
    if cfg.start != "scratch":
        raise ValueError(f"{task}'s online runs start from the offline model ({cfg.start!r}): there is no "
                         "seed phase to share; an online run of it needs the offline model and data instead")
    wanted = settings.seed_phase_settings(profile, task, seed)
    settings.claim(out_dir, profile, wanted, f"online seed phase of {task} (seed {seed})", "remake")
    spec = envs.task_spec(task)
    episodes_dir = out_dir / "episodes"
    with _timed(out_dir, "seed episodes", 0):  # phases.csv: benchmarks/online_time.py shows it as a run
        _collect_seed_episodes(task, profile, episodes_dir, seed)
    replay = _replay(profile, task, data.load_episodes(episodes_dir), seed)
    with _timed(out_dir, "train", 0):
        _train(profile, profile.world_model_for(task), replay, out_dir / "model",
               cfg.initial_train_steps, seed, device)
    return write_marker(out_dir / SEED_PHASE_DONE, {"task": spec.name, "seed": int(seed),
                                                    "settings": settings.digest(wanted)})


def _finished_seed_phase(results: str | os.PathLike | None, run_dir: Path, profile: Profile, task: str,
                         seed: int) -> Path | None:
    """The finished seed phase this run may start from: in ``results`` (default: the results folder that
    holds ``run_dir``, if it is laid out as one), made with this run's settings; else None."""
    if results is None:
        try:
            results = _results_holding(run_dir, task)
        except ValueError:  # a run outside a results folder makes its own seed phase
            return None
    folder = paths.online_seed_phase_dir(results, task, seed)
    record = settings.read_record(folder)
    if not (folder / SEED_PHASE_DONE).exists() or record is None:
        return None
    wanted = settings.jsonable(settings.seed_phase_settings(profile, task, seed))
    return folder if not settings.changed(record["settings"], wanted) else None


def _start_from_seed_phase(source: Path, run_dir: Path) -> None:
    """Copy a finished seed phase's episodes and model into a run that has not begun (no episode and no
    checkpoint yet); the checkpoint last and atomically, so a kill mid-copy leaves a run that collects
    and trains what is missing itself, to the same result."""
    episodes_dir, model_dir = run_dir / "episodes", run_dir / "model"
    if (model_dir / CHECKPOINT).exists() or (episodes_dir.exists() and any(episodes_dir.iterdir())):
        return
    shutil.copytree(source / "episodes", episodes_dir, dirs_exist_ok=True)
    model_dir.mkdir(parents=True, exist_ok=True)
    for path in sorted((source / "model").iterdir(), key=lambda p: p.name == CHECKPOINT):
        if path.is_file():
            storage.write_atomic(model_dir / path.name, lambda tmp, path=path: shutil.copyfile(path, tmp))


def _results_holding(run_dir: Path, task: str) -> Path:
    """The results folder of ``run_dir`` = ``<results>/online/<task>/<planner>/seed<k>``."""
    parents = run_dir.resolve().parents
    if len(parents) < 4 or parents[2].name != "online":
        raise ValueError(
            f"this online run of {task} starts from the offline world model, and {run_dir} is not laid out "
            "as <results>/online/<task>/<planner>/seed<k>: pass results=<the folder with models/ and data/>")
    return parents[3]


def _offline_source(results: Path, task: str) -> Path:
    """The finished offline world model of ``task`` in ``results``; a clear error if there is none."""
    if not model_done(results, task).exists():
        raise FileNotFoundError(
            f"no finished offline world model of {task} in {results} ({model_done(results, task)} is "
            f"missing): this online run starts from it. Make it first: notebook 02 with task={task!r}, or "
            f"`snakemake --cores 2 {model_done(results, task)}`")
    return paths.model_dir(results, task)


def _check_offline_model(source: Path, profile: Profile, task: str) -> int:
    """The seed of the offline model in ``source``, after checking it was made with ``profile``'s
    settings (``SettingsMismatch`` naming the differences otherwise: an online run never starts
    from a model of other settings)."""
    record = settings.read_record(source)
    model_seed = int(record["settings"].get("seed", 0))
    expected = settings.jsonable(settings.model_settings(profile, task, model_seed))
    diffs = {k: v for k, v in settings.changed(record["settings"], expected).items()
             if k not in settings.MODEL_BOOKKEEPING}
    if diffs:
        raise settings.SettingsMismatch(
            f"the offline world model in {source} was made with other settings than this profile's "
            f"({settings.describe(diffs)}), and this online run starts from it: re-make the model with "
            f"these settings (notebook 02 or the Snakefile) first")
    return model_seed


def _start_from_offline(source: Path, model_dir: Path, seed: int) -> int:
    """Copy the offline checkpoint into ``model_dir`` (once), with this run's seed for the batches
    and the noise, so seeds differ in training too; returns the offline model's steps."""
    offline_state = load_checkpoint(source / CHECKPOINT)
    if not (model_dir / CHECKPOINT).exists():
        model_dir.mkdir(parents=True, exist_ok=True)
        state = dict(offline_state)
        state["generator"] = torch.Generator().manual_seed(seed).get_state()
        state["replay"] = {**state["replay"], "rng": np.random.default_rng(seed).bit_generator.state}
        if (source / METRICS).exists():
            (model_dir / METRICS).write_text((source / METRICS).read_text())
        _atomic_save(state, model_dir / CHECKPOINT)
    return int(offline_state["step"])


def online_evaluations(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per finished evaluation of an online run: episodes collected, success, return."""
    rows = []
    for folder in sorted(Path(run_dir).glob("eval_*")):
        finished = folder / storage.FINISHED
        if not finished.exists():  # an evaluation a crash interrupted (it resumes with the run)
            continue
        table = pd.read_csv(finished)
        rows.append({
            "episodes_collected": int(folder.name.split("_")[1]),
            "success": table["success"].mean(),
            "return": table["return"].mean(),
            "final_distance": table["final_distance"].mean(),
            "eval_episodes": len(table),
        })
    return pd.DataFrame(rows)


def phase_times(run_dir: str | os.PathLike) -> pd.DataFrame:
    """Where an online run's wall time went: per phase (seed episodes, train, collect, evaluate),
    the seconds summed over the run and how many times it ran, from its ``phases.csv``."""
    path = Path(run_dir) / PHASES
    if not path.exists():
        raise FileNotFoundError(f"no {PHASES} in {run_dir}: runs of code before phases were logged lack "
                                "it; rerun the online run in a new directory to time it")
    phases = pd.read_csv(path)
    return phases.groupby("phase", sort=False)["seconds"].agg(["sum", "count"]).rename(
        columns={"sum": "seconds", "count": "times"})


def main(argv: list[str] | None = None) -> None:
    """``python -m latco.paper.online --task obstacle --seed 0 --profile quick``: make the seed phase
    of a from-scratch online run (the Snakefile's ``online_seed_phase`` rule)."""
    from latco.paper.results import locate

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--task", required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--results", default=None, help="results folder (default: results/<profile>)")
    parser.add_argument("--overrides", default="{}", help="profile settings by dotted path, as JSON")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    profile, results, _ = locate(args.profile, args.results, overrides=json.loads(args.overrides))
    marker = seed_phase(args.task, profile, paths.online_seed_phase_dir(results, args.task, args.seed),
                        args.seed)
    print(f"seed phase of {args.task} (seed {args.seed}) done: {marker}")


if __name__ == "__main__":
    main()
