"""Scripted experts ("oracles") for offline data: they read the true state, nothing else does.

- Obstacle: a waypoint controller that goes around the wall on the side the agent starts
  on: up (or down) past the wall's end, across, then to the goal.
- Reach, Push: Meta-World's scripted policies (`SawyerReachV3Policy`, `SawyerPushV3Policy`),
  fed the full Meta-World observation vector from `info['metaworld_obs']`.
Gaussian noise of standard deviation `noise` is added to every action, then clipped to
[-1, 1], as the paper collects its offline data with a noisy expert (Appendix, "Offline
training"; our expert is scripted where theirs was a trained agent).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from latco.envs.tasks import task_spec

Policy = Callable[[np.ndarray, dict[str, Any]], np.ndarray]
"""`policy(obs, info) -> action`. A policy may also have `reset(seed)`, called by
`latco.data.collect` before each episode so that episode i is the same whenever it is made."""

# Obstacle waypoints: the wall spans y in [-0.45, 0.45] and x in [0.2, 0.3], the agent
# disc has radius 0.1, so it passes at |y| = 0.75, well clear of the wall's end.
_PASS_Y = 0.75
_WAYPOINT_BEFORE_X = 0.0  # first go up/down here, left of the wall (x < 0.2 - 0.1)
_WAYPOINT_AFTER_X = 0.6  # then across to here, right of the wall (x > 0.3 + 0.1)
_SWITCH_Y = 0.5  # |y| beyond which the wall's end is cleared
_SWITCH_X = 0.45  # x beyond which the straight line to the goal is clear


def obstacle_waypoint(agent: np.ndarray, goal: np.ndarray) -> np.ndarray:
    """Target position for the Obstacle agent at `agent`: around the wall, then the goal."""
    side = 1.0 if agent[1] >= 0 else -1.0
    if agent[0] > _SWITCH_X:
        return np.asarray(goal, dtype=np.float64)
    if abs(agent[1]) > _SWITCH_Y:
        return np.array([_WAYPOINT_AFTER_X, side * _PASS_Y])
    return np.array([_WAYPOINT_BEFORE_X, side * _PASS_Y])


class Oracle:
    """A noisy scripted expert for `task`; call it as `policy(obs, info) -> action`."""

    def __init__(self, task: str, noise: float = 0.0, seed: int | None = None) -> None:
        if noise < 0:
            raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise}")
        self.task = task_spec(task)
        self.noise = float(noise)
        self._rng = np.random.default_rng(seed)
        self._expert = None
        if self.task.name != "obstacle":
            from metaworld.policies import SawyerPushV3Policy, SawyerReachV3Policy

            expert = SawyerReachV3Policy if self.task.name == "reach" else SawyerPushV3Policy
            self._expert = expert()

    def reset(self, seed: int | None = None) -> None:
        """Reseed the action noise (the experts themselves are stateless)."""
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if self._expert is None:
            state = info["state"]
            action = obstacle_waypoint(state["agent"], state["goal"])
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Constant(s) may be too high": the env clips
                action = self._expert.get_action(info["metaworld_obs"])
        action = np.asarray(action, dtype=np.float64)
        if self.noise > 0:
            action = action + self.noise * self._rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def oracle(task: str, noise: float = 0.0, seed: int | None = None) -> Oracle:
    """The scripted expert of `task` with Gaussian action noise of std `noise`, clipped."""
    return Oracle(task, noise, seed)


class Greedy:
    """Heads straight for the goal, ignoring obstacles and the puck, with Gaussian noise.

    The failure mode the paper describes ("greedy descent hits the wall"): offline data made by
    an agent trained on dense reward contains it, and a model must have seen it to know that
    the straight line is blocked. Reads the true state, like the oracle.
    """

    def __init__(self, task: str, noise: float = 0.0, seed: int | None = None) -> None:
        self.task = task_spec(task)
        self.noise = float(noise)
        self._rng = np.random.default_rng(seed)

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        agent, goal = info["state"]["agent"], info["state"]["goal"]
        if self.task.name == "obstacle":
            action = np.asarray(goal, dtype=np.float64)  # the position target is the goal itself
        else:  # hand displacement toward the goal (x 0.01 m per unit), gripper idle
            action = np.append(np.clip(50.0 * (goal - agent), -1, 1), 0.0)
        if self.noise > 0:
            action = action + self.noise * self._rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def greedy(task: str, noise: float = 0.0, seed: int | None = None) -> Greedy:
    """A noisy straight-to-the-goal policy for `task` (offline data showing the greedy failure)."""
    return Greedy(task, noise, seed)


def oracle_success(task: str, episodes: int = 10, noise: float = 0.0, seed: int = 0) -> np.ndarray:
    """Whether the oracle succeeds (at any step) in each of `episodes` episodes, `(episodes,)` bool.

    Episode i starts from `reset(seed=seed + i)` and runs the full T_tot steps; nothing is
    rendered (the oracle does not look at images), so this takes seconds.
    """
    from latco.data import rollout
    from latco.envs import make_env

    env = make_env(task, seed=seed, render=False)
    policy = oracle(task, noise)
    try:
        return np.array([rollout(env, policy, seed + i).succeeded for i in range(episodes)], dtype=bool)
    finally:
        env.close()


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
