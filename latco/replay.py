"""Replay buffer: uniformly sampled (batch, length) windows from stored episodes (Algorithm 1, line 12)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _field(episode: Any, key: str) -> np.ndarray:
    """Read a field from an episode stored as a mapping or as an object with attributes."""
    return np.asarray(episode[key] if isinstance(episode, Mapping) else getattr(episode, key))


class Replay:
    """Windows of ``length`` consecutive images with the ``length − 1`` actions and rewards between them.

    Every valid window of every episode is equally likely (an episode with T actions has
    T + 2 − length windows). Sampling is seeded, and the generator state is part of
    ``state_dict`` so a resumed training run draws exactly the batches it would have drawn.
    """

    def __init__(self, episodes: Sequence[Any], length: int, seed: int = 0) -> None:
        if length < 2:
            raise ValueError(f"length must be >= 2 (images per window), got {length}")
        self.length = length
        self.images: list[np.ndarray] = []
        self.actions: list[np.ndarray] = []
        self.rewards: list[np.ndarray] = []
        for episode in episodes:
            self.add(episode)
        self.rng = np.random.default_rng(seed)

    def add(self, episode: Any) -> None:
        """Append one episode: images (T+1, S, S, 3) uint8, actions (T, A), rewards (T,)."""
        images, actions = _field(episode, "images"), _field(episode, "actions")
        rewards = _field(episode, "rewards")
        if len(images) != len(actions) + 1 or len(rewards) != len(actions):
            raise ValueError(
                f"episode needs T+1 images for T actions and T rewards; got {len(images)} images, "
                f"{len(actions)} actions, {len(rewards)} rewards"
            )
        self.images.append(images)
        self.actions.append(actions.astype(np.float32))
        self.rewards.append(rewards.astype(np.float32))

    @property
    def windows_per_episode(self) -> np.ndarray:
        return np.array([max(len(im) - self.length + 1, 0) for im in self.images])

    @property
    def num_steps(self) -> int:
        """Environment steps stored (actions)."""
        return sum(len(a) for a in self.actions)

    def sample(self, batch: int) -> dict[str, np.ndarray]:
        """A batch of windows: images (B, L, S, S, 3) uint8, actions (B, L−1, A), rewards (B, L−1)."""
        counts = self.windows_per_episode
        total = int(counts.sum())
        if total == 0:
            raise ValueError(
                f"no episode has {self.length} images; collect longer episodes or shorten the window"
            )
        flat = self.rng.integers(0, total, size=batch)
        offsets = np.cumsum(counts)
        episode = np.searchsorted(offsets, flat, side="right")
        start = flat - (offsets[episode] - counts[episode])
        L = self.length
        images = np.stack([self.images[e][s : s + L] for e, s in zip(episode, start, strict=True)])
        actions = np.stack([self.actions[e][s : s + L - 1] for e, s in zip(episode, start, strict=True)])
        rewards = np.stack([self.rewards[e][s : s + L - 1] for e, s in zip(episode, start, strict=True)])
        return {"images": images, "actions": actions, "rewards": rewards}

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state, "length": self.length}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]
