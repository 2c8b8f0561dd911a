"""The agent: model-predictive control with any planner (paper Algorithm 1, lines 3–9), and its evaluation.

    for each environment step t = 1 … T_tot with step T_cache:
        infer the latent state z_t from the images so far          (filtering, line 4)
        plan H steps from z_t                                        (lines 5–8, any planner)
        execute the first T_cache planned actions in the environment (line 9)

``evaluate`` runs this for a number of episodes and returns one row per episode; the same
seed gives the same start states for every planner.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm  # text bars: notebooks run headless through papermill (no ipywidgets)

from latco import data, envs
from latco.model import RSSM
from latco.planners.base import Plan, Planner, reseed
from latco.planners.evaluate import rollout_return


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


@torch.no_grad()
def predicted_return(model: RSSM, z: torch.Tensor, actions: torch.Tensor) -> float:
    """Sum of r(z_{t+1}) along the mean rollout of ``actions`` (T, A) from z (F,)."""
    return float(rollout_return(model, z, actions.to(model.device, model.dtype)))


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
    horizon, t_cache, t_tot = horizon or spec.horizon, t_cache or spec.t_cache, t_tot or spec.t_tot
    if t_cache > horizon:
        raise ValueError(f"t_cache ({t_cache}) cannot exceed the planning horizon ({horizon})")
    rng = np.random.default_rng(seed)
    reseed(planner, seed)  # an episode's plans depend on its seed alone (resume = uninterrupted)
    if hasattr(planner, "reset"):
        planner.reset()
    obs, info = env.reset(seed=seed)
    images, states, actions, rewards, success = [obs], [info["state"]], [], [], []
    records: list[PlanRecord] = []
    done = False
    while len(actions) < t_tot and not done:
        z = infer_feature(model, images, actions)  # line 4
        tick = time.perf_counter()
        plan = planner.plan(model, z, horizon)  # lines 5-8
        seconds = time.perf_counter() - tick
        todo = plan.actions[: min(t_cache, t_tot - len(actions))].clamp(-1.0, 1.0)
        start, achieved = len(actions), 0.0
        for action in todo.cpu().numpy():  # line 9
            if explore_noise > 0:
                action = np.clip(action + explore_noise * rng.standard_normal(action.shape), -1, 1)
            obs, reward, terminated, truncated, info = env.step(action.astype(np.float32))
            images.append(obs)
            states.append(info["state"])
            actions.append(action.astype(np.float32))
            rewards.append(reward)
            success.append(info["success"])
            achieved += reward
            done = terminated or truncated
            if done:
                break
        executed = len(actions) - start
        predicted = predicted_return(model, z, todo[:executed])
        records.append(PlanRecord(start, plan, seconds, executed, predicted, achieved))
    state = {key: np.stack([s[key] for s in states]) for key in states[0]}
    episode = data.Episode(np.stack(images), np.stack(actions), rewards, success, state, spec.name, seed)
    return MPCResult(episode, records)


def final_distance(episode: data.Episode) -> float:
    """Distance to the goal at the end (puck for Push, agent/hand otherwise), from the true state."""
    key = "puck" if "puck" in episode.state else "agent"
    return float(np.linalg.norm(episode.state[key][-1] - episode.state["goal"][-1]))


ROW_COLUMNS = [
    "episode", "seed", "success", "return", "final_distance", "predicted_reward", "achieved_reward",
    "plan_seconds", "plans", "episode_file", "plans_file",
]
"""Columns of ``evaluate``'s table, one row per episode."""


def _save_plans(path: Path, result: MPCResult) -> None:
    """The plans of an episode (features, actions, traces) as one compressed .npz, atomically."""
    arrays: dict[str, np.ndarray] = {"steps": np.array([r.step for r in result.plans])}
    for i, record in enumerate(result.plans):
        arrays[f"{i}_features"] = record.plan.features.cpu().numpy()
        arrays[f"{i}_actions"] = record.plan.actions.cpu().numpy()
        for key, value in record.plan.trace.items():
            arrays[f"{i}_trace_{key}"] = np.asarray(value)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def _read_rows(log: Path) -> dict[int, dict]:
    """Finished rows of ``rows.jsonl``; a last line cut short by a crash is removed (it reruns)."""
    if not log.exists():
        return {}
    text = log.read_text()
    complete, _, partial = text.rpartition("\n")
    if partial:
        tmp = log.with_suffix(".tmp")
        tmp.write_text(complete + "\n" if complete else "")
        os.replace(tmp, log)
    rows = [json.loads(line) for line in complete.splitlines() if line.strip()]
    return {row["episode"]: row for row in rows}


def evaluate(
    model: RSSM,
    planner: Planner,
    task: str,
    episodes: int,
    seed: int = 0,
    out_dir: str | os.PathLike | None = None,
    image_size: int | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run ``episodes`` MPC episodes of ``task`` (episode i from seed ``seed + i``); one row each.

    Columns: ``ROW_COLUMNS``. ``success`` counts an episode as solved if any step succeeded
    (the authors' criterion); ``final_distance`` comes from the true state (reporting only);
    ``predicted_reward``/``achieved_reward`` sum over the episode's plans (Table 3). With
    ``out_dir``, every episode and its plans are saved, rows are appended to ``rows.jsonl``,
    and a re-run skips finished episodes (resume after a crash).
    """
    image_size = image_size or model.cfg.image_size
    out = Path(out_dir) if out_dir is not None else None
    rows: dict[int, dict] = {}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        rows = _read_rows(out / "rows.jsonl")
    todo = [i for i in range(episodes) if i not in rows]
    if todo:
        env = envs.make_env(task, seed=seed, image_size=image_size)
        try:
            bar = tqdm(todo, desc=f"evaluate {task}", unit="ep", disable=not progress)
            for i in bar:
                result = run_episode(env, model, planner, seed + i)
                ep = result.episode
                row = {
                    "episode": i,
                    "seed": seed + i,
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
                if out is not None:
                    row["episode_file"] = str(data.save_episode(data.episode_path(out / "episodes", i), ep))
                    plans_path = out / "plans" / f"plans_{i:06d}.npz"
                    plans_path.parent.mkdir(exist_ok=True)
                    _save_plans(plans_path, result)
                    row["plans_file"] = str(plans_path)
                    with (out / "rows.jsonl").open("a") as f:
                        f.write(json.dumps(row) + "\n")
                rows[i] = row
                bar.set_postfix(success=f"{np.mean([r['success'] for r in rows.values()]):.2f}")
        finally:
            env.close()
    return pd.DataFrame([rows[i] for i in range(episodes)], columns=ROW_COLUMNS)
