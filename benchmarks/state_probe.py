"""Can the gripper (Reach) and the puck (Push) be read off the latents the planners imagine?

    python benchmarks/state_probe.py [--results results/quick] [--tasks reach push] [--horizon 30]

A linear probe (ridge regression, features standardized) is fitted from the filtered (posterior)
features of the training episodes to the true positions (``Episode.state``: ``agent`` is the hand,
``puck`` the puck), then scored by R² (1 − SSE / SST, pooled over x, y, z, SST around the held-out
mean) on held-out episodes: on their filtered features ("filtered", what the model can see), and
on features imagined open loop for ``horizon`` steps under the true actions from the filtered
feature at the window's start, at the window's last step ("imagined"): what a planner's plan
would show. R² near 1: the position is in the imagined latents; near 0 or below: it is not.
Needs a finished offline model and data of each task (``make paper`` or the Snakefile).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from latco import data, paths, results


@torch.no_grad()
def filtered(model, episode) -> np.ndarray:
    """Filtered features of every image of ``episode``: (T + 1, F)."""
    images = torch.as_tensor(episode.images[None], device=model.device)
    actions = torch.as_tensor(episode.actions[None], device=model.device, dtype=model.dtype)
    return model.observe(images, actions)["feature"][0].cpu().numpy()


def fit_probe(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3):
    """Ridge regression on standardized features; returns a function features -> prediction."""
    mean, std = x.mean(0), x.std(0) + 1e-6
    xs = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    weights = np.linalg.solve(xs.T @ xs + ridge * len(x) * np.eye(xs.shape[1]), xs.T @ y)
    return lambda f: np.hstack([(f - mean) / std, np.ones((len(f), 1))]) @ weights


def r2(true: np.ndarray, pred: np.ndarray) -> float:
    return float(1 - ((true - pred) ** 2).sum() / ((true - true.mean(0)) ** 2).sum())


@torch.no_grad()
def probe(model, train: list, heldout: list, key: str, horizon: int, stride: int = 10) -> dict:
    x = np.concatenate([filtered(model, e) for e in train])
    y = np.concatenate([e.state[key] for e in train])
    predict = fit_probe(x, y)
    true_f, pred_f, true_i, pred_i = [], [], [], []
    for episode in heldout:
        feats = filtered(model, episode)
        true_f.append(episode.state[key])
        pred_f.append(predict(feats))
        actions = torch.as_tensor(episode.actions, device=model.device, dtype=model.dtype)
        for start in range(0, len(episode.actions) - horizon + 1, stride):
            z0 = torch.as_tensor(feats[start], device=model.device, dtype=model.dtype)
            imagined = model.imagine(z0, actions[start:start + horizon])[-1].cpu().numpy()
            true_i.append(episode.state[key][start + horizon])
            pred_i.append(predict(imagined[None])[0])
    return {"filtered R²": r2(np.concatenate(true_f), np.concatenate(pred_f)),
            f"imagined R² (step {horizon})": r2(np.array(true_i), np.array(pred_i)), "windows": len(true_i)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=paths.results_dir("quick"))
    parser.add_argument("--tasks", nargs="+", default=["reach", "push"])
    parser.add_argument("--horizon", type=int, default=30)
    parser.add_argument("--train-episodes", type=int, default=100, help="training episodes the probe sees")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    for task in args.tasks:
        model = results.model(args.results, task)
        train = data.load_episodes(paths.data_dir(args.results, task) / "train")[: args.train_episodes]
        heldout = results.heldout_episodes(args.results, task)
        keys = {"reach": ("agent",), "push": ("agent", "puck")}.get(task, ("agent",))
        for key in keys:
            what = {"agent": "hand", "puck": "puck"}[key]
            rows.append({"task": task, "position": what,
                         **probe(model, train, heldout, key, args.horizon)})
    print(pd.DataFrame(rows).round(3).to_markdown(index=False))


if __name__ == "__main__":
    main()
