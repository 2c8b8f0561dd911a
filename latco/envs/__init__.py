"""The paper's three image-based tasks: Obstacle, Sawyer Reach, Sawyer Push.

    env = make_env("push", seed=0, image_size=64)      # or gymnasium.make("latco/Push-v0")
    obs, info = env.reset()                             # obs: (64, 64, 3) uint8, the only input
    obs, reward, terminated, truncated, info = env.step(action)   # action in [-1, 1]^A

`info` holds `success` (bool) and `state` (true positions: `agent`, `goal`, `puck` for
push) for evaluation and figures only; planners never read it. `task_spec(task)` gives the
paper's H, T_cache, T_tot, action repeat and number of evaluation runs; `oracle(task,
noise)` the scripted expert used for offline data.

Importing this package chooses the headless OpenGL backend (`latco.envs.gl`: sets
MUJOCO_GL) but does not import mujoco; the simulators load on first use. Import latco.envs
before mujoco or metaworld, or set MUJOCO_GL yourself.
"""

from __future__ import annotations

import gymnasium
from gymnasium.wrappers import TimeLimit

from latco.envs import gl  # noqa: F401  (sets MUJOCO_GL before anything imports mujoco)
from latco.envs.oracle import CornerDash, Greedy, Oracle, Policy, RandomPolicy, greedy, oracle, oracle_success
from latco.envs.tasks import TASKS, TaskSpec, task_spec

__all__ = [
    "CornerDash",
    "TASKS",
    "Greedy",
    "Oracle",
    "Policy",
    "RandomPolicy",
    "TaskSpec",
    "greedy",
    "make_env",
    "oracle",
    "oracle_success",
    "task_spec",
]


def _make_unwrapped(
    task: str,
    image_size: int = 64,
    seed: int | None = None,
    render: bool = True,
    render_mode: str | None = "rgb_array",
) -> gymnasium.Env:
    """The task's env without TimeLimit (the gymnasium entry point)."""
    spec = task_spec(task)
    if render_mode not in (None, "rgb_array"):
        raise ValueError(f"render_mode must be 'rgb_array' (images are the observation), got {render_mode!r}")
    if spec.name == "obstacle":
        from latco.envs.obstacle import ObstacleEnv

        return ObstacleEnv(image_size=image_size, seed=seed, render=render)
    from latco.envs.sawyer import SawyerEnv

    return SawyerEnv(spec.name, image_size=image_size, seed=seed, render=render)


def make_env(task: str, seed: int = 0, image_size: int = 64, *, render: bool = True) -> gymnasium.Env:
    """The env of `task` (obstacle, reach, push), ending after T_tot steps (truncated).

    Observations are uint8 images `(image_size, image_size, 3)`. `seed` seeds the start
    state of the first `reset()`; `reset(seed=s)` reseeds (same seed, same images).
    `render=False` skips OpenGL (observations are black): only for oracle rollouts in tests.
    """
    spec = task_spec(task)
    return TimeLimit(_make_unwrapped(spec.name, image_size, seed, render), spec.t_tot)


def _register() -> None:
    """Register `latco/Obstacle-v0`, `latco/Reach-v0`, `latco/Push-v0` with gymnasium."""
    for spec in TASKS.values():
        if spec.env_id not in gymnasium.registry:
            gymnasium.register(
                id=spec.env_id,
                entry_point="latco.envs:_make_unwrapped",
                kwargs={"task": spec.name},
                max_episode_steps=spec.t_tot,
            )


_register()
