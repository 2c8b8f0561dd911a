"""How long one agent step (simulation + rendering the observation) takes, per task.

Used by `benchmarks/envs.py` and `notebooks/00_tasks.ipynb`. Steps follow the noisy oracle
(noise 0.3) so the arm and puck move as in data collection; resets are not timed.
"""

from __future__ import annotations

import time

import numpy as np

from latco.envs import make_env, oracle


def step_times(
    task: str, image_size: int = 64, steps: int = 200, seed: int = 0, render: bool = True
) -> np.ndarray:
    """Seconds taken by each of `steps` calls of `env.step`, `(steps,)`, after 5 warm-up steps."""
    env = make_env(task, seed=seed, image_size=image_size, render=render)
    policy = oracle(task, noise=0.3, seed=seed)
    times = []
    try:
        obs, info = env.reset(seed=seed)
        while len(times) < steps + 5:
            action = policy(obs, info)
            tick = time.perf_counter()
            obs, _, terminated, truncated, info = env.step(action)
            times.append(time.perf_counter() - tick)
            if terminated or truncated:
                obs, info = env.reset()
    finally:
        env.close()
    return np.array(times[5:])
