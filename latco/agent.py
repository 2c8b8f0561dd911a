"""The agent: model-predictive control with any planner (paper Algorithm 1, lines 3–9), and its evaluation.
::

    for each environment step t = 1 … T_tot with step T_cache:
        infer the latent state z_t from the images so far          (filtering, line 4)
        plan H steps from z_t                                        (lines 5–8, any planner)
        execute the first T_cache planned actions in the environment (line 9)

``evaluate`` runs this for a number of episodes and returns one row per episode; the same
seed gives the same start states for every planner.
"""

from __future__ import annotations

import dataclasses
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm  # text bars: notebooks run headless through papermill (no ipywidgets)

from latco import data, envs
from latco.model import RSSM
from latco.planners.base import Plan, Planner, reseed
from latco.planners.evaluate import rollout_return
from latco.storage import EvaluationLog


@dataclass
class PlanRecord:
    """One re-planning: when, how long it took, and what the model expected against what happened."""

    step: int
    """Environment step at which the plan was made."""
    plan: Plan
    seconds: float
    """Wall time of ``planner.plan``."""
    executed: int
    """Planned actions executed before the next re-plan (T_cache, or fewer at the episode's end)."""
    predicted_reward: float
    """Sum of model rewards of the executed actions, rolled out through μ from z_t (Table 3)."""
    achieved_reward: float
    """Sum of the environment's rewards for the same steps."""


@dataclass
class MPCResult:
    episode: data.Episode
    plans: list[PlanRecord] = field(default_factory=list)


@torch.no_grad()
def infer_feature(model: RSSM, images: list[np.ndarray], actions: list[np.ndarray]) -> torch.Tensor:
    """z_t: the filtered feature of the last image given all images and actions so far (F,)."""
    im = torch.as_tensor(np.stack(images)[None], device=model.device)
    act = np.stack(actions)[None] if actions else np.zeros((1, 0, model.action_size), np.float32)
    return model.observe(im, torch.as_tensor(act, device=model.device))["feature"][0, -1]


class MPCPolicy:
    """Algorithm 1's acting (lines 4-9) as a policy for ``latco.data.rollout``: every ``t_cache``
    steps infer z_t from the images so far and plan ``horizon`` steps; in between, return the next
    planned action (clipped to [-1, 1], plus Gaussian ``explore_noise`` when collecting).

    ``plans`` holds, per re-planning, the step, the plan, its wall time and the start feature z_t;
    ``records`` turns them into Table 3's ``PlanRecord`` once the episode's rewards are known.
    """

    def __init__(self, model: RSSM, planner: Planner, horizon: int, t_cache: int,
                 explore_noise: float = 0.0) -> None:
        if t_cache > horizon:
            raise ValueError(f"t_cache ({t_cache}) cannot exceed the planning horizon ({horizon})")
        self.model, self.planner = model, planner
        self.horizon, self.t_cache, self.explore_noise = horizon, t_cache, explore_noise
        self.reset(0)

    def reset(self, seed: int) -> None:
        """A new episode: plans and exploration noise depend on ``seed`` alone (resume = uninterrupted)."""
        self._rng = np.random.default_rng(seed)
        reseed(self.planner, seed)
        if hasattr(self.planner, "reset"):
            self.planner.reset()
        self._images: list[np.ndarray] = []
        self._actions: list[np.ndarray] = []
        self._todo: list[np.ndarray] = []
        self.plans: list[tuple[int, Plan, float, torch.Tensor]] = []

    def __call__(self, obs: np.ndarray, info: dict) -> np.ndarray:
        self._images.append(obs)
        if not self._todo:
            z = infer_feature(self.model, self._images, self._actions)  # line 4
            tick = time.perf_counter()
            plan = self.planner.plan(self.model, z, self.horizon)  # lines 5-8
            seconds = time.perf_counter() - tick
            self.plans.append((len(self._actions), plan, seconds, z))
            self._todo = list(plan.actions[: self.t_cache].clamp(-1.0, 1.0).cpu().numpy())
        action = self._todo.pop(0)  # line 9
        if self.explore_noise > 0:
            action = np.clip(action + self.explore_noise * self._rng.standard_normal(action.shape), -1, 1)
        action = action.astype(np.float32)
        self._actions.append(action)
        return action

    def records(self, rewards: np.ndarray) -> list[PlanRecord]:
        """Each plan's ``PlanRecord``: the model's return of the planned actions that were executed
        (rolled out from z_t, before exploration noise) against the rewards they earned."""
        out = []
        for step, plan, seconds, z in self.plans:
            executed = min(self.t_cache, len(rewards) - step)
            todo = plan.actions[:executed].clamp(-1.0, 1.0)
            with torch.no_grad():
                predicted = float(rollout_return(self.model, z, todo.to(self.model.device, self.model.dtype)))
            achieved = float(np.sum(rewards[step:step + executed], dtype=np.float64))
            out.append(PlanRecord(step, plan, seconds, executed, predicted, achieved))
        return out


def run_episode(
    env: Any,
    model: RSSM,
    planner: Planner,
    seed: int,
    horizon: int | None = None,
    t_cache: int | None = None,
    t_tot: int | None = None,
    explore_noise: float = 0.0,
) -> MPCResult:
    """One MPC episode from ``env.reset(seed=seed)``. H, T_cache, T_tot default to the task's.

    ``explore_noise`` adds Gaussian noise of that std to every executed action (online
    training, paper: 0.3), seeded by ``seed``.
    """
    spec = env.unwrapped.task
    policy = MPCPolicy(model, planner, horizon or spec.horizon, t_cache or spec.t_cache, explore_noise)
    episode = data.rollout(env, policy, seed, max_steps=t_tot or spec.t_tot)
    return MPCResult(episode, policy.records(episode.rewards))


def final_distance(episode: data.Episode) -> float:
    """Distance to the goal at the end (puck for Push, agent/hand otherwise), from the true state."""
    key = "puck" if "puck" in episode.state else "agent"
    return float(np.linalg.norm(episode.state[key][-1] - episode.state["goal"][-1]))


ROW_COLUMNS = [
    "episode", "seed", "success", "return", "final_distance", "predicted_reward", "achieved_reward",
    "plan_seconds", "plans", "episode_file", "plans_file",
]
"""Columns of ``evaluate``'s table, one row per episode."""


def episode_row(index: int, seed: int, result: MPCResult) -> dict:
    """The table row of one evaluated episode (``ROW_COLUMNS``; the file columns left empty)."""
    ep = result.episode
    return {
        "episode": index,
        "seed": seed,
        "success": bool(ep.success.any()),
        "return": float(ep.rewards.sum()),
        "final_distance": final_distance(ep),
        "predicted_reward": sum(r.predicted_reward for r in result.plans),
        "achieved_reward": sum(r.achieved_reward for r in result.plans),
        "plan_seconds": float(np.mean([r.seconds for r in result.plans])),
        "plans": len(result.plans),
        "episode_file": "",
        "plans_file": "",
    }


def describe_planner(planner: Planner) -> dict:
    """The planner's class and, for the registered planners, every option of its config."""
    config = getattr(planner, "config", None)
    options = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else None
    return {"class": type(planner).__name__, "options": options}


def evaluate(
    model: RSSM,
    planner: Planner,
    task: str,
    episodes: int,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    progress: bool = True,
    t_cache: int | None = None,
) -> pd.DataFrame:
    """Run ``episodes`` MPC episodes of ``task`` (episode i from seed ``seed + i``); one row each.
    ``t_cache``: re-plan every ``t_cache`` steps (None: the task's, as in the paper).

    Columns: ``ROW_COLUMNS``. ``success`` counts an episode as solved if any step succeeded
    (the authors' criterion); ``final_distance`` comes from the true state (reporting only);
    ``predicted_reward``/``achieved_reward`` sum over the episode's plans (Table 3). With
    ``out_dir``, every episode and its plans are saved as they finish and the table at the end
    (``latco.storage``); a re-run skips finished episodes (resume after a crash), and a folder that
    holds an evaluation of another task, seed or planner setting is an error, not a resume.
    """
    image_size = image_size or model.cfg.image_size
    log = EvaluationLog(out_dir) if out_dir is not None else None
    if log is not None:
        config = getattr(planner, "config", None)
        defaults = {f"planner.options.{f.name}": f.default for f in dataclasses.fields(config)
                    if f.default is not dataclasses.MISSING} if dataclasses.is_dataclass(config) else {}
        log.claim({"task": task, "seed": seed, "image_size": image_size,
                   "planner": describe_planner(planner), **({"t_cache": t_cache} if t_cache else {})},
                  defaults)
    rows: dict[int, dict] = log.finished_rows() if log is not None else {}
    todo = [i for i in range(episodes) if i not in rows]
    if todo:
        env = envs.make_env(task, seed=seed, image_size=image_size)
        try:
            bar = tqdm(todo, desc=f"evaluate {task}", unit="ep", disable=not progress)
            for i in bar:
                result = run_episode(env, model, planner, seed + i, t_cache=t_cache)
                row = episode_row(i, seed + i, result)
                if log is not None:
                    row = log.save(row, result.episode, [r.step for r in result.plans],
                                   [r.plan for r in result.plans])
                rows[i] = row
                bar.set_postfix(success=f"{np.mean([r['success'] for r in rows.values()]):.2f}")
        finally:
            env.close()
    table = pd.DataFrame([rows[i] for i in range(episodes)], columns=ROW_COLUMNS)
    if log is not None:
        log.finish(table)
    return table
