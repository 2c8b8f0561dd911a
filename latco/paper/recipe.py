"""The offline data recipe (the paper's appendix, "Offline training"): noisy-oracle episodes, plus
random-action and greedy episodes so the model also sees failures, plus held-out oracle episodes.

Every split is collected resumably (``latco.data.collect``), and the data directory gets
``episodes.json`` when all are on disk (``latco.paper.results``). The folder's ``settings.json`` records
what the data was collected with (``latco.paper.settings.data_settings``); asked for other noise, seed or
image size, ``oracle_data`` stops with ``SettingsMismatch`` instead of mixing two recipes (more or
fewer episodes are fine: collected episodes are kept and a prefix is used):

    episodes = oracle_data("obstacle", get_profile("quick"), "results/quick/data/obstacle")
"""

from __future__ import annotations

import os
from pathlib import Path

from latco import data, envs
from latco.envs.oracle import RandomPolicy
from latco.paper import settings
from latco.paper.profiles import Profile
from latco.paper.results import DATA_DONE, write_marker

HELDOUT_SEED_OFFSET = 1_000_000
"""Held-out episodes use seeds far from the training ones, so no start state is shared."""

RANDOM_SEED_OFFSET = 4_000_000
"""Random-action episodes of the offline data use these seeds."""

GREEDY_SEED_OFFSET = 5_000_000
"""Greedy (straight-to-the-goal) episodes of the offline data use these seeds."""

DASH_SEED_OFFSET = 8_000_000
"""Dash episodes of the offline data (``DataConfig.dash_episodes``) use these seeds."""

DECOY_SEED_OFFSET = 9_000_000
"""Push decoy episodes of the offline data (``DataConfig.decoy_episodes``) use these seeds."""

CORNER_DASH_SEED = 7_000_000
"""Obstacle's corner-probe episodes (``corner_dashes``) start from these seeds: no training, held-out
or evaluation episode starts there."""


def oracle_data(
    task: str, profile: Profile, data_dir: str | os.PathLike, seed: int = 0, workers: int = 1
) -> dict[str, list[data.Episode]]:
    """Offline data for ``task`` at the profile's size: ``train`` and ``heldout`` episode lists.

    ``train`` = noisy-oracle episodes (``data_dir/train``) plus random-action ones
    (``data_dir/random``), noisy straight-to-the-goal ones (``data_dir/greedy``), and where the
    profile asks for them Obstacle's dashes (``dash``) and Push's decoys (``decoy``), so the model
    also sees failures; ``heldout`` = noisy-oracle episodes with other seeds (``data_dir/heldout``).
    Existing episodes are reused; ``workers`` processes collect side by side (``data.collect``).
    """
    data_dir = Path(data_dir)
    wanted = settings.data_settings(profile, task, seed)
    # other episode counts are the same recipe: collected episodes are kept and a prefix is used
    settings.claim(data_dir, profile, wanted, f"offline data of {task}", "error",
                   allowed=settings.DATA_COUNTS)
    size = profile.world_model.image_size
    action_size = envs.task_spec(task).action_size
    cfg = profile.data_for(task)
    noisy_oracle = envs.oracle(task, noise=cfg.noise, pass_range=cfg.oracle_pass)
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
        "dash": (
            envs.CornerDash(heights=(0.2, 1.0), dash_steps=(1, 5), noise=cfg.noise),
            cfg.dash_episodes,
            seed + DASH_SEED_OFFSET,
        ),
        "decoy": (
            envs.oracle(task, noise=cfg.noise, aim_offset=cfg.decoy_offset) if cfg.decoy_episodes else None,
            cfg.decoy_episodes,
            seed + DECOY_SEED_OFFSET,
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
    if envs.task_spec(task).name == "obstacle":  # the corner probe's episodes, made here once for every model
        corner_dashes(data_dir, size)
    write_marker(data_dir / DATA_DONE, {**{split: len(eps) for split, eps in out.items()},
                                        "record": settings.read_record(data_dir)})
    train = out["train"] + out["random"] + out["greedy"] + out["dash"] + out["decoy"]
    return {"train": train, "heldout": out["heldout"]}


def corner_dashes(data_dir: str | os.PathLike, image_size: int, count: int = 200) -> list[data.Episode]:
    """Obstacle episodes of ``latco.envs.CornerDash`` for ``latco.paper.diagnostics.corner_probe`` (about half
    blocked at the wall's end), collected once into ``data_dir/corner_dashes`` (a few seconds).
    Not training data: they judge a model where an optimizing planner's plans go."""
    folder = Path(data_dir) / "corner_dashes"
    data.collect("obstacle", envs.CornerDash(), count, folder, seed=CORNER_DASH_SEED, image_size=image_size)
    return data.load_episodes(folder)[:count]
