"""Scripted experts ("oracles") for offline data: they read the true state, nothing else does.

- Obstacle: a waypoint controller that goes around the wall on the side the agent starts
  on: up (or down) past the wall's end, across, then to the goal. By default it passes at
  |y| = 0.75, well clear of the wall's end; with ``pass_range`` each episode draws its pass
  height from that range, so some episodes graze or stop at the wall's corner (where a
  plan that takes the shortest way goes).
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


def obstacle_waypoint(agent: np.ndarray, goal: np.ndarray, pass_y: float = _PASS_Y) -> np.ndarray:
    """Target position for the Obstacle agent at `agent`: around the wall at height |y| = `pass_y`,
    then the goal. It turns across once |y| is 0.25 short of `pass_y` (0.5 at the default 0.75);
    below |y| = 0.55 the agent disc meets the wall's end (0.45) on its way across."""
    side = 1.0 if agent[1] >= 0 else -1.0
    if agent[0] > _SWITCH_X:
        return np.asarray(goal, dtype=np.float64)
    if abs(agent[1]) > pass_y - (_PASS_Y - _SWITCH_Y):
        return np.array([_WAYPOINT_AFTER_X, side * pass_y])
    return np.array([_WAYPOINT_BEFORE_X, side * pass_y])


class Oracle:
    """A noisy scripted expert for `task`; call it as `policy(obs, info) -> action`.

    ``pass_range`` (Obstacle only): (low, high) of the height |y| at which the agent goes around
    the wall, drawn anew at every ``reset``; None passes at 0.75 every time.
    ``aim_offset`` (Push only): (low, high) in metres; at every ``reset`` the expert's view of the
    puck is moved by a horizontal offset of a length drawn from that range, in a random direction,
    so it comes down beside the puck, closes the gripper on nothing and carries nothing to the goal
    (a "decoy" episode: the hand does what a successful push does, the puck stays, unless the hand
    happens to sweep it). None: the expert sees the puck where it is.
    """

    def __init__(self, task: str, noise: float = 0.0, seed: int | None = None,
                 pass_range: tuple[float, float] | None = None,
                 aim_offset: tuple[float, float] | None = None) -> None:
        if noise < 0:
            raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise}")
        self.task = task_spec(task)
        self.noise = float(noise)
        if pass_range is not None:
            if self.task.name != "obstacle":
                raise ValueError(f"pass_range is the Obstacle oracle's pass height; {self.task.name} "
                                 "has no wall")
            low, high = (float(v) for v in pass_range)
            if not 0.0 <= low <= high <= 1.0:
                raise ValueError(f"pass_range must be (low, high) with 0 <= low <= high <= 1, "
                                 f"got {pass_range}")
            pass_range = (low, high)
        self.pass_range = pass_range
        self.pass_y = _PASS_Y
        if aim_offset is not None:
            if self.task.name != "push":
                raise ValueError(f"aim_offset shifts the Push expert's view of the puck; {self.task.name} "
                                 "has no puck")
            low, high = (float(v) for v in aim_offset)
            if not 0.0 <= low <= high:
                raise ValueError(f"aim_offset must be (low, high) in metres with 0 <= low <= high, "
                                 f"got {aim_offset}")
            aim_offset = (low, high)
        self.aim_offset = aim_offset
        self.aim = np.zeros(2)
        self._expert = None
        self.reset(seed)
        if self.task.name != "obstacle":
            from metaworld.policies import SawyerPushV3Policy, SawyerReachV3Policy

            expert = SawyerReachV3Policy if self.task.name == "reach" else SawyerPushV3Policy
            self._expert = expert()

    def reset(self, seed: int | None = None) -> None:
        """Reseed the action noise and, with ``pass_range``, draw this episode's pass height."""
        self._rng = np.random.default_rng(seed)
        if self.pass_range is not None:
            self.pass_y = float(self._rng.uniform(*self.pass_range))
        if self.aim_offset is not None:
            angle, length = self._rng.uniform(0, 2 * np.pi), self._rng.uniform(*self.aim_offset)
            self.aim = length * np.array([np.cos(angle), np.sin(angle)])
        self._closed = False

    def _decoy_action(self, obs: np.ndarray) -> np.ndarray:
        """The Push expert shown the puck at ``self.aim`` beside it: it goes there, comes down and
        closes the gripper; from the first closing on it heads for the goal with the gripper closed
        (the expert's own last phase, which it would otherwise leave once the hand is 2 cm from the
        puck it believes it holds, to try again)."""
        from metaworld.policies.policy import move

        obs = obs.copy()
        obs[4:6] += self.aim  # hand (0:3), puck (4:7), goal (last 3): the expert sees the puck here
        action = np.asarray(self._expert.get_action(obs), dtype=np.float64)
        self._closed = self._closed or action[3] > 0
        if self._closed:
            action[:3] = move(obs[:3], to_xyz=obs[-3:], p=10.0)
            action[3] = 0.6
        return action

    def __call__(self, obs: np.ndarray, info: dict[str, Any]) -> np.ndarray:
        if self._expert is None:
            state = info["state"]
            action = obstacle_waypoint(state["agent"], state["goal"], self.pass_y)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # "Constant(s) may be too high": the env clips
                obs = np.array(info["metaworld_obs"], dtype=np.float64)
                if self.aim_offset is None:
                    action = self._expert.get_action(obs)
                else:
                    action = self._decoy_action(obs)
        action = np.asarray(action, dtype=np.float64)
        if self.noise > 0:
            action = action + self.noise * self._rng.standard_normal(action.shape)
        return np.clip(action, -1.0, 1.0).astype(np.float32)


def oracle(task: str, noise: float = 0.0, seed: int | None = None,
           pass_range: tuple[float, float] | None = None,
           aim_offset: tuple[float, float] | None = None) -> Oracle:
    """The scripted expert of `task` with Gaussian action noise of std `noise`, clipped
    (``pass_range``: the Obstacle oracle's per-episode pass height; ``aim_offset``: the Push
    expert aims beside the puck; ``Oracle``)."""
    return Oracle(task, noise, seed, pass_range, aim_offset)


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


class CornerDash:
    """Obstacle probe actions like an optimizer's shortest way: dash at the wall's end, then turn.

    Each episode draws a side (above or below), a height ``u`` in ``heights`` and a dash length
    ``k`` in ``dash_steps``; the action (a target position) is (1, ±u) for ``k`` steps, then
    (1, 0), the goal's height. If the dash cleared the wall's end the agent goes on to the goal;
    if it did not, the turn presses it against the wall and it stays there, blocked. With the
    defaults about half the episodes end either way, decided within a pixel or two at the corner
    (``latco.paper.diagnostics.corner_probe``). Blind to the state: the same actions from any start.
    ``noise``: Gaussian noise of that std on every action, clipped (as offline data, not a probe).
    """

    def __init__(self, heights: tuple[float, float] = (0.5, 1.0),
                 dash_steps: tuple[int, int] = (2, 3), noise: float = 0.0) -> None:
        if noise < 0:
            raise ValueError(f"noise is a standard deviation and must be >= 0, got {noise}")
        self.heights, self.dash_steps, self.noise = heights, dash_steps, float(noise)
        self.reset()

    def reset(self, seed: int | None = None) -> None:
        self._rng = np.random.default_rng(seed)
        self.side = float(self._rng.choice([-1.0, 1.0]))
        self.height = float(self._rng.uniform(*self.heights))
        self.dash = int(self._rng.integers(self.dash_steps[0], self.dash_steps[1] + 1))
        self._steps = 0

    def __call__(self, obs: np.ndarray, info: dict) -> np.ndarray:
        self._steps += 1
        y = self.side * self.height if self._steps <= self.dash else 0.0
        action = np.array([1.0, y])
        if self.noise > 0:
            action = np.clip(action + self.noise * self._rng.standard_normal(2), -1.0, 1.0)
        return action.astype(np.float32)
