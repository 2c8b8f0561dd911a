"""Replay buffer: (batch, length) windows from stored episodes (Algorithm 1, line 12).

Windows are drawn uniformly, or, with ``balance`` > 0, that fraction of every batch is drawn
uniformly from the windows that contain a positive reward (the authors' ``dataset_balance``
option, for sparse tasks where success frames are rare: Reach's 0.05 m ball).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def _field(episode: Any, key: str) -> np.ndarray:
    """Read a field from an episode stored as a mapping or as an object with attributes."""
    return np.asarray(episode[key] if isinstance(episode, Mapping) else getattr(episode, key))


class Replay:
    """Windows of ``length`` consecutive images with the ``length − 1`` actions and rewards between them.

    With ``balance`` = 0 every valid window of every episode is equally likely (an episode with
    T actions has T + 2 − length windows). With ``balance`` = b, each batch takes
    ``round(b * batch)`` windows uniformly from the *rewarded* windows (those whose ``length − 1``
    rewards include one > 0) and the rest uniformly from all windows, so a rewarded window makes
    up at least a fraction b of every batch; with no rewarded window yet (dense-reward tasks,
    early online data) all windows are drawn uniformly. Sampling is seeded, and the generator
    state is part of ``state_dict`` so a resumed training run draws exactly the batches it would
    have drawn.
    """

    def __init__(self, episodes: Sequence[Any], length: int, seed: int = 0, balance: float = 0.0) -> None:
        if length < 2:
            raise ValueError(f"length must be >= 2 (images per window), got {length}")
        if not 0.0 <= balance <= 1.0:
            raise ValueError(f"balance is a fraction of the batch, in [0, 1]; got {balance}")
        self.length, self.balance = length, float(balance)
        self._rewarded: list[np.ndarray] = []
        self._rewarded_flat: np.ndarray | None = None
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
        # rewarded[s]: window starting at s holds a positive reward among rewards[s : s + L - 1]
        positive = np.concatenate([[0], np.cumsum(rewards > 0)])
        starts = np.arange(max(len(images) - self.length + 1, 0))
        self._rewarded.append(positive[starts + self.length - 1] > positive[starts])
        self._rewarded_flat = None

    @property
    def windows_per_episode(self) -> np.ndarray:
        return np.array([len(r) for r in self._rewarded], dtype=int)

    @property
    def num_steps(self) -> int:
        """Environment steps stored (actions)."""
        return sum(len(a) for a in self.actions)

    @property
    def rewarded_windows(self) -> int:
        """How many windows contain a positive reward (what ``balance`` draws from)."""
        return int(sum(r.sum() for r in self._rewarded))

    def sample(self, batch: int) -> dict[str, np.ndarray]:
        """A batch of windows: images (B, L, S, S, 3) uint8, actions (B, L−1, A), rewards (B, L−1)."""
        counts = self.windows_per_episode
        total = int(counts.sum())
        if total == 0:
            raise ValueError(
                f"no episode has {self.length} images; collect longer episodes or shorten the window"
            )
        flat = self.rng.integers(0, total, size=batch)
        n_balanced = int(round(self.balance * batch))
        if n_balanced and self._rewarded_flat is None:
            self._rewarded_flat = np.flatnonzero(np.concatenate(self._rewarded))
        if n_balanced and len(self._rewarded_flat):
            rewarded = self._rewarded_flat
            flat[:n_balanced] = rewarded[self.rng.integers(0, len(rewarded), size=n_balanced)]
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
