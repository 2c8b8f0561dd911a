"""The experiments' building blocks, shared by notebooks and the workflow.

Each step writes into a directory and is resumable: re-running it after a crash continues
where it stopped and never redoes finished work.

    episodes = oracle_data("obstacle", get_profile("quick"), "results/quick/data/obstacle")
    model = world_model_for_task("obstacle", get_profile("quick"), data_dir, run_dir)
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from latco import data, envs
from latco.config import Profile, world_model_config
from latco.model import RSSM
from latco.replay import Replay
from latco.train import train_world_model

HELDOUT_SEED_OFFSET = 1_000_000
"""Held-out episodes use seeds far from the training ones, so no start state is shared."""


def oracle_data(
    task: str, profile: Profile, data_dir: str | os.PathLike, seed: int = 0
) -> dict[str, list[data.Episode]]:
    """Noisy-oracle episodes for ``task`` at the profile's size: ``train`` and ``heldout`` splits.

    Stored under ``data_dir/train`` and ``data_dir/heldout``; existing episodes are reused.
    """
    data_dir = Path(data_dir)
    size = profile.world_model.image_size
    splits = {
        "train": (profile.data.episodes, seed),
        "heldout": (profile.data.heldout, seed + HELDOUT_SEED_OFFSET),
    }
    out = {}
    for split, (count, split_seed) in splits.items():
        policy = envs.oracle(task, noise=profile.data.noise)
        data.collect(task, policy, count, data_dir / split, seed=split_seed, image_size=size)
        out[split] = data.load_episodes(data_dir / split)[:count]
    return out


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
    train_cfg = replace(profile.train, seed=seed, steps=steps if steps is not None else profile.train.steps)
    # windows cannot be longer than the shortest episode (Obstacle has 31 images)
    length = min(train_cfg.length, min(len(e.images) for e in episodes))
    replay = Replay(episodes, length=length, seed=seed)
    return train_world_model(cfg, replay, run_dir, train_cfg, device=device)
