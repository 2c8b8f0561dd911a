"""The experiments' building blocks, shared by notebooks and the workflow.

Each step writes into a directory and is resumable: re-running it after a crash continues
where it stopped and never redoes finished work.

    episodes = oracle_data("obstacle", get_profile("quick"), "results/quick/data/obstacle")
    model = world_model_for_task("obstacle", get_profile("quick"), data_dir, run_dir)
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm  # text bars: notebooks run headless through papermill (no ipywidgets)

from latco import data, envs, paths
from latco.agent import evaluate, run_episode
from latco.config import Profile, eval_episodes, make_profile_planner, world_model_config
from latco.model import RSSM
from latco.replay import Replay
from latco.train import load_model, train_world_model

HELDOUT_SEED_OFFSET = 1_000_000
"""Held-out episodes use seeds far from the training ones, so no start state is shared."""
RANDOM_SEED_OFFSET = 4_000_000
"""Random-action episodes of the offline data use these seeds."""
GREEDY_SEED_OFFSET = 5_000_000
"""Greedy (straight-to-the-goal) episodes of the offline data use these seeds."""


class RandomPolicy:
    """Uniformly random actions in [-1, 1]^A, each held for ``hold`` steps.

    Holding makes the agent travel (Obstacle's actions are target positions: a new target every
    step only jitters it near the start), so the data shows what blocks it, e.g. the wall.
    """

    def __init__(self, action_size: int, hold: int = 1) -> None:
        if hold < 1:
            raise ValueError(f"hold must be >= 1 step, got {hold}")
        self.action_size, self.hold = action_size, hold
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self._steps, self._action = 0, np.zeros(self.action_size, np.float32)

    def __call__(self, obs: np.ndarray, info: dict) -> np.ndarray:
        if self._steps % self.hold == 0:
            self._action = self._rng.uniform(-1, 1, self.action_size).astype(np.float32)
        self._steps += 1
        return self._action.copy()


def oracle_data(
    task: str, profile: Profile, data_dir: str | os.PathLike, seed: int = 0, workers: int = 1
) -> dict[str, list[data.Episode]]:
    """Offline data for ``task`` at the profile's size: ``train`` and ``heldout`` episode lists.

    ``train`` = noisy-oracle episodes (``data_dir/train``) plus random-action ones
    (``data_dir/random``) and noisy straight-to-the-goal ones (``data_dir/greedy``), so the model
    also sees failures; ``heldout`` = noisy-oracle episodes with other seeds (``data_dir/heldout``).
    Existing episodes are reused; ``workers`` processes collect side by side (``data.collect``).
    """
    data_dir = Path(data_dir)
    size = profile.world_model.image_size
    action_size = envs.task_spec(task).action_size
    cfg = profile.data_for(task)
    noisy_oracle = envs.oracle(task, noise=cfg.noise)
    splits = {
        "train": (noisy_oracle, cfg.episodes, seed),
        "random": (
            RandomPolicy(action_size, hold=cfg.random_hold),
            cfg.random_episodes,
            seed + RANDOM_SEED_OFFSET,
        ),
        "greedy": (
            envs.greedy(task, noise=cfg.noise),
            cfg.greedy_episodes,
            seed + GREEDY_SEED_OFFSET,
        ),
        "heldout": (noisy_oracle, cfg.heldout, seed + HELDOUT_SEED_OFFSET),
    }
    out = {}
    for split, (policy, count, split_seed) in splits.items():
        if count == 0:
            out[split] = []
            continue
        data.collect(task, policy, count, data_dir / split, seed=split_seed, image_size=size,
                     workers=workers)
        out[split] = data.load_episodes(data_dir / split)[:count]
    return {"train": out["train"] + out["random"] + out["greedy"], "heldout": out["heldout"]}


def world_model_for_task(
    task: str,
    profile: Profile,
    episodes: list[data.Episode],
    run_dir: str | os.PathLike,
    seed: int = 0,
    steps: int | None = None,
    device: str | None = None,
) -> RSSM:
    """Train (or resume) the profile's world model for ``task`` on ``episodes``."""
    cfg = world_model_config(profile, envs.task_spec(task).action_size)
    train_cfg = profile.train_for(task)
    train_cfg = replace(train_cfg, seed=seed, steps=steps if steps is not None else train_cfg.steps)
    # windows cannot be longer than the shortest episode (Obstacle has 31 images)
    length = min(train_cfg.length, min(len(e.images) for e in episodes))
    replay = Replay(episodes, length=length, seed=seed, balance=train_cfg.balance)
    return train_world_model(cfg, replay, run_dir, train_cfg, device=device)


OFFLINE_EVAL_SEED = 3_000_000
"""Evaluation episodes of the offline experiment start from these seeds, the same for every planner."""


def offline_evaluation(
    task: str,
    planner: str,
    profile: Profile,
    model_dir: str | os.PathLike,
    out_dir: str | os.PathLike,
    device: str | None = None,
    **planner_overrides: object,
) -> pd.DataFrame:
    """Table 2: evaluate ``planner`` with the world model trained offline in ``model_dir``.

    Every planner sees the same model and the same start states; resumable through ``out_dir``.
    """
    model = load_model(model_dir, device=device)
    episodes = eval_episodes(profile, envs.task_spec(task).eval_episodes)
    agent = make_profile_planner(profile, planner, **planner_overrides)
    return evaluate(model, agent, task, episodes, seed=OFFLINE_EVAL_SEED, out_dir=out_dir)


ONLINE_EVAL_SEED = 2_000_000
"""Evaluation episodes of online runs start from these seeds, the same for every planner."""


def online_training(
    task: str,
    planner: str,
    profile: Profile,
    run_dir: str | os.PathLike,
    seed: int = 0,
    device: str | None = None,
    **planner_overrides: object,
) -> pd.DataFrame:
    """Algorithm 1: seed data, then repeat {act with the planner + noise; train the model}.

    Everything lives in ``run_dir``: ``episodes/`` (seed episodes first, then one per
    iteration, each saved before the model trains on it), ``model/`` (checkpoint and metrics),
    ``eval_<k>/`` per evaluation and ``evaluations.csv``. A killed run resumes from the episodes
    on disk and the last checkpoint; no episode is lost or collected twice.
    Returns the evaluation table (one row per evaluation: episodes collected, success rate, …).
    """
    cfg, run_dir = profile.online, Path(run_dir)
    spec = envs.task_spec(task)
    size = profile.world_model.image_size
    episodes_dir, model_dir = run_dir / "episodes", run_dir / "model"
    seed_policy = RandomPolicy(spec.action_size, cfg.seed_hold)
    data.collect(task, seed_policy, cfg.seed_episodes, episodes_dir, seed, size)
    episodes = data.load_episodes(episodes_dir)
    model_cfg = world_model_config(profile, spec.action_size)
    length = min(profile.train.length, spec.t_tot + 1)
    replay = Replay(episodes, length=length, seed=seed, balance=profile.train.balance)

    def train(total_steps: int) -> RSSM:
        train_cfg = replace(profile.train, steps=total_steps, seed=seed)
        return train_world_model(model_cfg, replay, model_dir, train_cfg, device=device, progress=False)

    agent = make_profile_planner(profile, planner, **planner_overrides)

    def evaluate_if_due(collected: int, model: RSSM) -> None:
        """Evaluate before the first planner episode (the seed-data model), after every
        eval_every-th episode, and at the end (resumes a half-finished evaluation)."""
        if collected % cfg.eval_every == 0 or collected == cfg.episodes:
            evaluate(model, agent, task, cfg.eval_episodes, seed=ONLINE_EVAL_SEED,
                     out_dir=run_dir / f"eval_{collected:04d}", progress=False)

    # Each iteration k: collect episode k (saved at once) -> train -> evaluate if due. After a
    # crash, the episodes on disk say how far the run got; training and evaluation resume.
    done = max(len(episodes) - cfg.seed_episodes, 0)
    model = train(cfg.initial_train_steps + done * cfg.train_steps_per_episode)
    evaluate_if_due(done, model)
    env = envs.make_env(task, seed=seed, image_size=size)
    try:
        for k in tqdm(range(done, cfg.episodes), desc=f"online {task} {planner}", unit="ep",
                      initial=done, total=cfg.episodes):
            index = cfg.seed_episodes + k
            result = run_episode(env, model, agent, seed=seed + index, explore_noise=cfg.explore_noise)
            data.save_episode(data.episode_path(episodes_dir, index), result.episode)
            replay.add(result.episode)
            model = train(cfg.initial_train_steps + (k + 1) * cfg.train_steps_per_episode)
            evaluate_if_due(k + 1, model)
    finally:
        env.close()
    return online_evaluations(run_dir)


def offline_model(task: str, profile: Profile, results: str | os.PathLike, seed: int = 0,
                  device: str | None = None) -> RSSM:
    """The offline world model of ``task`` under ``results`` (``latco.paths`` layout), made if missing.

    Collects the profile's data and trains (or resumes) the model; existing episodes are reused and
    a finished model is only loaded.
    """
    model_path = paths.model_dir(results, task)
    episodes = oracle_data(task, profile, paths.data_dir(results, task), seed)
    return world_model_for_task(task, profile, episodes["train"], model_path, seed=seed, device=device)


def offline_run(task: str, planner: str, profile: Profile, results: str | os.PathLike, seed: int = 0,
                device: str | None = None, **planner_overrides: object) -> pd.DataFrame:
    """Offline experiment for one (task, planner) under ``results``, every missing piece made first.

    Data, model and evaluation are all resumable, so this is cheap when they exist (Snakemake) and
    self-sufficient when they do not (a notebook run on its own).
    """
    offline_model(task, profile, results, seed, device)
    return offline_evaluation(task, planner, profile, paths.model_dir(results, task),
                              paths.offline_dir(results, task, planner), device, **planner_overrides)


def online_evaluations(run_dir: str | os.PathLike) -> pd.DataFrame:
    """One row per finished evaluation of an online run: episodes collected, success, return."""
    rows = []
    for folder in sorted(Path(run_dir).glob("eval_*")):
        table = pd.read_json(folder / "rows.jsonl", lines=True) if (folder / "rows.jsonl").exists() else None
        if table is None or table.empty:
            continue
        rows.append({
            "episodes_collected": int(folder.name.split("_")[1]),
            "success": table["success"].mean(),
            "return": table["return"].mean(),
            "final_distance": table["final_distance"].mean(),
            "eval_episodes": len(table),
        })
    return pd.DataFrame(rows)


def cross_evaluation(
    task: str,
    models: Mapping[str, str | os.PathLike],
    planners: Sequence[str],
    profile: Profile,
    episodes: int,
    device: str | None = None,
    planner_overrides: Mapping[str, Mapping[str, object]] | None = None,
    seed: int = ONLINE_EVAL_SEED,
) -> pd.DataFrame:
    """Every planner on every given model, from the same start states as the online evaluations
    (or, with ``seed=OFFLINE_EVAL_SEED``, as the offline ones).

    ``models`` maps a label (e.g. the planner whose online run trained the model) to a model
    directory. Online runs confound the planner with the data it collected; planning on each
    other's models separates the two: a planner that does worse on a model another planner
    solves has an optimizer problem, not a data problem. One row per (model, planner), with
    success rate, return, the model's predicted reward of the executed plans and s / plan.
    """
    rows = []
    for label, model_dir in models.items():
        model = load_model(model_dir, device=device)
        for planner in planners:
            agent = make_profile_planner(profile, planner, **(planner_overrides or {}).get(planner, {}))
            table = evaluate(model, agent, task, episodes, seed=seed, progress=False)
            rows.append({"model": label, "planner": planner, "episodes": len(table),
                         "success": table["success"].mean(), "return": table["return"].mean(),
                         "predicted": table["predicted_reward"].mean(),
                         "final distance": table["final_distance"].mean(),
                         "s / plan": table["plan_seconds"].mean()})
    return pd.DataFrame(rows)


def obstacle_passages(results: str | os.PathLike, planners: Sequence[str]) -> pd.DataFrame:
    """Which way round the wall did each planner's offline Obstacle episodes go, and did they get there?

    One row per planner with episode counts per ``envs.obstacle.wall_passage`` outcome
    (``above``, ``below``, ``blocked``: pressed against the wall), how many of each succeeded,
    and the mean lowest agent y of the blocked episodes (the wall ends at y = −0.45; an agent of
    radius 0.1 needs its centre below −0.55 to pass below it). Reads the saved
    episodes of ``offline_evaluation``; raises if a planner has none.
    """
    from latco.envs.obstacle import wall_passage

    table = []
    for planner in planners:
        folder = paths.offline_dir(results, "obstacle", planner)
        log = folder / "rows.jsonl"
        rows = pd.read_json(log, lines=True).to_dict("records") if log.exists() else []
        if not rows:
            raise FileNotFoundError(f"no offline Obstacle episodes of {planner!r} in {folder}; "
                                    "run the offline evaluation (notebook 03 or `make paper`) first")
        counts: dict[str, list[int]] = {"above": [0, 0], "below": [0, 0], "blocked": [0, 0]}
        lowest = []
        for row in rows:
            # the episode beside its row, wherever the results folder has been moved since
            agent = data.load_episode(folder / "episodes" / Path(row["episode_file"]).name).state["agent"]
            side = wall_passage(agent)
            counts[side][0] += 1
            counts[side][1] += bool(row["success"])
            if side == "blocked":
                lowest.append(agent[:, 1].min())
        entry: dict[str, object] = {"planner": planner, "episodes": len(rows),
                                    "success": sum(r["success"] for r in rows) / len(rows)}
        for side, (n, solved) in counts.items():
            entry[side] = f"{n} ({solved} solved)"
        entry["lowest y (blocked)"] = float(np.mean(lowest)) if lowest else float("nan")
        table.append(entry)
    return pd.DataFrame(table)
