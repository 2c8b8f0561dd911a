"""How good is a trained world model? Open-loop predictions and reward-head quality on held-out episodes.

Targets on the quick profile: Obstacle's 30-step open-loop predicted reward correlates ≥ 0.9 with
the true reward; on Reach and Push the reward head separates success from non-success frames
with ROC-AUC ≥ 0.9.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from scipy.stats import rankdata
from torch import Tensor

from latco.model import RSSM


def _get(episode: Any, key: str) -> np.ndarray:
    return np.asarray(episode[key] if isinstance(episode, Mapping) else getattr(episode, key))


def _state(episode: Any, key: str) -> np.ndarray:
    """The true position ``key`` per image of ``episode`` (``Episode.state``), as float64."""
    state = episode["state"] if isinstance(episode, Mapping) else episode.state
    if key not in state:
        raise KeyError(f"episodes of this task record the positions {sorted(state)}, not {key!r}")
    return np.asarray(state[key], dtype=np.float64)


@torch.no_grad()
def open_loop(
    model: RSSM,
    episode: Any,
    context: int = 1,
    horizon: int | None = None,
    actions: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Filter the first ``context`` images, then predict ``horizon`` steps with the true actions.

    Returns ``true_images``/``pred_images`` (horizon, S, S, 3) uint8 and ``true_rewards``/
    ``pred_rewards`` (horizon,) for the steps after the context, the prediction following the
    prior mean (as the planners do). ``actions`` (horizon, action_size), if given, replaces the
    episode's actions after the context: what would the model predict under other actions?
    """
    images = torch.as_tensor(_get(episode, "images"), device=model.device)
    true_actions = torch.as_tensor(_get(episode, "actions"), device=model.device, dtype=model.dtype)
    rewards = _get(episode, "rewards")
    T = len(true_actions)
    horizon = T - context + 1 if horizon is None else horizon
    if context < 1 or context - 1 + horizon > T:
        raise ValueError(f"context {context} + horizon {horizon} does not fit an episode of {T} actions")
    feats = model.observe(images[None, :context], true_actions[None, : context - 1])["feature"][0]
    if actions is None:
        future = true_actions[context - 1 : context - 1 + horizon]
    else:
        future = torch.as_tensor(np.asarray(actions), device=model.device, dtype=model.dtype)
        expected = (horizon, true_actions.shape[1])
        if future.shape != expected:
            raise ValueError(f"actions must have shape {expected}; got {tuple(future.shape)}")
    pred = model.imagine(feats[-1], future)[1:]
    return {
        "true_images": images[context : context + horizon].cpu().numpy(),
        "pred_images": model.decode_images(pred).cpu().numpy(),
        "true_rewards": rewards[context - 1 : context - 1 + horizon],
        "pred_rewards": model.reward(pred).cpu().numpy(),
    }


@torch.no_grad()
def filtered_rewards(model: RSSM, episode: Any) -> np.ndarray:
    """Reward head on the filtered (posterior) features of images 1..T: (T,), aligned with rewards."""
    images = torch.as_tensor(_get(episode, "images"), device=model.device)
    actions = torch.as_tensor(_get(episode, "actions"), device=model.device, dtype=model.dtype)
    feats = model.observe(images[None], actions[None])["feature"][0, 1:]
    return model.reward(feats).cpu().numpy()


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(score of a positive > score of a negative), ties counting ½.

    Computed from ranks (Mann–Whitney U) in O(n log n).
    """
    scores, labels = np.asarray(scores, float).ravel(), np.asarray(labels, bool).ravel()
    n_pos, n_neg = labels.sum(), (~labels).sum()
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC-AUC needs both classes; got {n_pos} positives and {n_neg} negatives")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def reward_quality(model: RSSM, episodes: Sequence[Any], horizon: int = 30) -> dict[str, float]:
    """Pooled metrics over held-out episodes.

    ``open_loop_corr``: Pearson correlation of open-loop predicted vs true rewards over the first
    ``horizon`` steps of every episode (context = 1 image); ``success_auc``: ROC-AUC of the
    filtered reward prediction for success frames (only when both classes occur).
    """
    pred, true, filt, success = [], [], [], []
    for ep in episodes:
        T = len(_get(ep, "actions"))
        out = open_loop(model, ep, context=1, horizon=min(horizon, T))
        pred.append(out["pred_rewards"])
        true.append(out["true_rewards"])
        filt.append(filtered_rewards(model, ep))
        success.append(_get(ep, "success"))
    pred, true = np.concatenate(pred), np.concatenate(true)
    filt, success = np.concatenate(filt), np.concatenate(success).astype(bool)
    result = {"open_loop_corr": float(np.corrcoef(pred, true)[0, 1]) if true.std() > 0 else float("nan")}
    result["success_auc"] = roc_auc(filt, success) if 0 < success.sum() < len(success) else float("nan")
    return result


def action_sensitivity(model: RSSM, episodes: Sequence[Any], horizon: int = 30) -> dict[str, float]:
    """Does the model's open-loop prediction follow its actions? Pixel error against the true frames.

    Every episode is imagined from its first image twice: with its own actions and with the
    actions of the next episode in the list (cyclically). ``own_mae`` and ``other_mae`` are the
    mean absolute pixel errors (0-255) over the ``horizon`` predicted frames; ``ratio`` =
    other / own. A model that ignores its actions predicts the same frames either way (ratio 1);
    the more the prediction depends on the true actions, the larger the ratio.
    """
    if len(episodes) < 2:
        raise ValueError(f"action_sensitivity needs at least 2 episodes to swap actions; got {len(episodes)}")
    horizon = min([horizon] + [len(_get(e, "actions")) for e in episodes])
    own, other = [], []
    for i, ep in enumerate(episodes):
        swapped = _get(episodes[(i + 1) % len(episodes)], "actions")[:horizon]
        for actions, errors in ((None, own), (swapped, other)):
            out = open_loop(model, ep, context=1, horizon=horizon, actions=actions)
            errors.append(np.abs(out["pred_images"].astype(float) - out["true_images"].astype(float)).mean())
    own_mae, other_mae = float(np.mean(own)), float(np.mean(other))
    return {"own_mae": own_mae, "other_mae": other_mae, "ratio": other_mae / own_mae}


def most_moving_episode(episodes: Sequence[Any], horizon: int = 30) -> int:
    """Index of the episode whose true objects (``state``: agent, puck, ...) travel farthest.

    Path length summed over the state entries for the first ``horizon`` steps: the most
    demanding episode to show an open-loop prediction on (a still arm is easy to predict).
    """
    if not episodes:
        raise ValueError("most_moving_episode needs at least one episode")
    lengths = []
    for ep in episodes:
        state = ep["state"] if isinstance(ep, Mapping) else ep.state
        if not state:
            raise ValueError("episodes carry no true positions (`state`); cannot measure their motion")
        lengths.append(sum(np.linalg.norm(np.diff(np.asarray(v)[: horizon + 1], axis=0), axis=1).sum()
                           for v in state.values()))
    return int(np.argmax(lengths))


@torch.no_grad()
def imagined_reward_calibration(
    model: RSSM, episodes: Sequence[Any], horizon: int = 30, stride: int = 5, threshold: float = 0.5
) -> dict[str, float]:
    """Does the reward head tell success on *imagined* states, which is what planners exploit?

    For every held-out window of ``horizon`` steps (starts every ``stride`` steps) whose true
    steps include a success, filter the episode's images up to the window's start (as MPC infers
    z_t), imagine the window under the episode's own actions through the prior mean, and compare
    the reward head's predictions with the true success per step. A step is predicted a success
    when its reward exceeds ``threshold``. Returns ``windows``, ``precision`` and ``recall`` of
    the predicted successes, ``predicted_return`` and ``true_return`` (mean sum of predicted and
    of true rewards per window) and their difference ``gap`` = true − predicted (Table 3's sign);
    NaN where undefined. On sparse tasks the true reward is the success itself.
    """
    pred, true, rewards, windows = [], [], [], 0
    for ep in episodes:
        images = torch.as_tensor(_get(ep, "images"), device=model.device)
        actions = torch.as_tensor(_get(ep, "actions"), device=model.device, dtype=model.dtype)
        success, ep_rewards = _get(ep, "success").astype(bool), _get(ep, "rewards")
        starts = [s for s in range(0, len(actions) - horizon + 1, stride) if success[s : s + horizon].any()]
        if not starts:
            continue
        feats = model.observe(images[None], actions[None])["feature"][0]  # (T+1, F), feats[s] = z_s
        index = torch.as_tensor(starts, device=model.device)
        window_actions = torch.stack([actions[s : s + horizon] for s in starts])
        imagined = model.imagine(feats[index], window_actions)[:, 1:]
        pred.append(model.reward(imagined).cpu().numpy())
        true.append(np.stack([success[s : s + horizon] for s in starts]))
        rewards.append(np.stack([ep_rewards[s : s + horizon] for s in starts]))
        windows += len(starts)
    nan = float("nan")
    if not windows:
        return {"windows": 0, "precision": nan, "recall": nan, "predicted_return": nan,
                "true_return": nan, "gap": nan}
    pred, true, rewards = np.concatenate(pred), np.concatenate(true), np.concatenate(rewards)
    hit = pred > threshold
    predicted_return, true_return = float(pred.sum(1).mean()), float(rewards.sum(1).mean())
    return {
        "windows": windows,
        "precision": float((hit & true).sum() / hit.sum()) if hit.any() else nan,
        "recall": float((hit & true).sum() / true.sum()),
        "predicted_return": predicted_return,
        "true_return": true_return,
        "gap": true_return - predicted_return,
    }


PROBED_POSITIONS = {"obstacle": ("agent",), "reach": ("agent",), "push": ("agent", "puck")}
"""The positions the reward depends on, per task (``Episode.state`` keys): the point mass or the
gripper (``agent``), and Push's puck."""


def _fit_ridge(x: np.ndarray, y: np.ndarray, ridge: float) -> np.ndarray:
    """Weights of ridge regression on ``[standardized x, 1]`` (closed form)."""
    xs = np.hstack([x, np.ones((len(x), 1))])
    return np.linalg.solve(xs.T @ xs + ridge * len(x) * np.eye(xs.shape[1]), xs.T @ y)


def r2_score(true: np.ndarray, pred: np.ndarray) -> float:
    """1 − SSE / SST pooled over the columns (SST around the mean of ``true``): 1 is perfect,
    0 is no better than predicting the mean, below 0 worse."""
    return float(1 - ((true - pred) ** 2).sum() / ((true - true.mean(0)) ** 2).sum())


@torch.no_grad()
def _filtered_features(model: RSSM, episode: Any) -> Tensor:
    """The posterior features of every image of ``episode`` (T + 1, feature)."""
    images = torch.as_tensor(_get(episode, "images")[None], device=model.device)
    actions = torch.as_tensor(_get(episode, "actions")[None], device=model.device, dtype=model.dtype)
    return model.observe(images, actions)["feature"][0]


@torch.no_grad()
def position_probe(model: RSSM, train: Sequence[Any], key: str, ridge: float = 1e-3):
    """A linear read-out of the true position ``key`` from model features: ridge regression on
    standardized features, fitted from the filtered features of ``train`` to ``state[key]``.
    Returns ``predict(features (N, F) array) -> (N, 2)`` positions."""
    x = torch.cat([_filtered_features(model, e) for e in train]).cpu().numpy().astype(np.float64)
    y = np.concatenate([_state(e, key) for e in train])
    mean, std = x.mean(0), x.std(0) + 1e-6
    weights = _fit_ridge((x - mean) / std, y, ridge)

    def predict(f: np.ndarray) -> np.ndarray:
        return np.hstack([(np.asarray(f, np.float64) - mean) / std, np.ones((len(f), 1))]) @ weights

    return predict


@torch.no_grad()
def state_probe(
    model: RSSM,
    train: Sequence[Any],
    heldout: Sequence[Any],
    key: str,
    horizons: Sequence[int] = (10, 30),
    stride: int = 10,
    ridge: float = 1e-3,
) -> dict[str, float]:
    """Can the true position ``key`` (e.g. the gripper, ``agent``, or Push's ``puck``) be read off
    the latents the planners imagine?

    A linear probe (ridge regression on standardized features) is fitted from the filtered
    features of ``train`` to ``state[key]``, then scored by R² (``r2_score``) on ``heldout``: on
    their filtered features (``filtered``: what the model can see at all) and on features imagined
    open loop under the episode's own actions from the filtered feature at a window's start
    (every ``stride`` steps), at the window's step ``h`` for each of ``horizons`` (``imagined_h``:
    what a plan of that length shows). Near 1: the position is in the imagined latent; near 0 or
    below: the imagination has lost it, and a planner optimizes a reward about a ghost.
    """

    predict = position_probe(model, train, key, ridge)
    filtered_true, filtered_pred = [], []
    imagined_true: dict[int, list] = {h: [] for h in horizons}
    imagined_pred: dict[int, list] = {h: [] for h in horizons}
    longest = max(horizons)
    for episode in heldout:
        state = _state(episode, key)
        feats = _filtered_features(model, episode)
        filtered_true.append(state)
        filtered_pred.append(predict(feats.cpu().numpy()))
        actions = torch.as_tensor(_get(episode, "actions"), device=model.device, dtype=model.dtype)
        starts = list(range(0, len(actions) - longest + 1, stride))
        if not starts:
            continue
        window_actions = torch.stack([actions[s : s + longest] for s in starts])
        imagined = model.imagine(feats[torch.as_tensor(starts, device=model.device)], window_actions)
        for h in horizons:
            imagined_true[h].append(np.stack([state[s + h] for s in starts]))
            imagined_pred[h].append(predict(imagined[:, h].cpu().numpy()))
    out = {"filtered": r2_score(np.concatenate(filtered_true), np.concatenate(filtered_pred))}
    for h in horizons:
        out[f"imagined_{h}"] = (r2_score(np.concatenate(imagined_true[h]), np.concatenate(imagined_pred[h]))
                                if imagined_true[h] else float("nan"))
    out["windows"] = sum(len(t) for t in imagined_true[longest])
    return out


@torch.no_grad()
def imagination_errors(model: RSSM, episodes: Sequence[Any], predict: Callable[[np.ndarray], np.ndarray],
                       key: str, stride: int = 30, horizons: Sequence[int] = (10, 30),
                       rewarded: bool = False, far: float = 0.10) -> dict[str, float]:
    """Where the model puts position ``key`` when it imagines ``episodes``' own actions, window by window.

    Every ``stride`` steps (a plan's start when T_cache = ``stride``) the model imagines the next
    max(``horizons``) steps under the executed actions from the filtered feature there; ``predict``
    (``position_probe``) reads the position off imagined and filtered features. Means over windows:
    ``moved`` (true displacement over the window, m), ``imagined moved`` (the probe's reading of the
    imagined end against the filtered start), ``drift_h`` (imagined against filtered at step h: the
    imagination's error without the probe's own), ``reward gap`` (true − imagined reward summed over
    the window). With ``rewarded`` (the position that decides success), also ``to goal (true)`` and
    ``to goal (imagined)`` (mean distance to the goal over the window's steps) and ``rewarded far``
    (steps per window the reward head rates a success, > 0.5, while the imagined position is more
    than ``far`` from the goal, by default twice Meta-World's 5 cm success radius: the reward head
    fooled rather than the dynamics)."""
    longest = max(horizons)
    moved, imagined_moved, gaps = [], [], []
    true_dist, imagined_dist, rewarded_far = [], [], []
    drift: dict[int, list[float]] = {h: [] for h in horizons}
    for episode in episodes:
        state = _state(episode, key)
        feats = _filtered_features(model, episode)
        actions = torch.as_tensor(_get(episode, "actions"), device=model.device, dtype=model.dtype)
        starts = list(range(0, len(actions) - longest + 1, stride))
        if not starts:
            continue
        index = torch.as_tensor(starts, device=model.device)
        window_actions = torch.stack([actions[s : s + longest] for s in starts])
        imagined = model.imagine(feats[index], window_actions)  # (W, longest + 1, F)
        imagined_rewards = model.reward(imagined[:, 1:]).cpu().numpy()  # (W, longest)
        read_filtered = predict(feats.cpu().numpy())
        for w, s in enumerate(starts):
            read_imagined = predict(imagined[w].cpu().numpy())
            moved.append(float(np.linalg.norm(state[s + longest] - state[s])))
            imagined_moved.append(float(np.linalg.norm(read_imagined[longest] - read_filtered[s])))
            for h in horizons:
                drift[h].append(float(np.linalg.norm(read_imagined[h] - read_filtered[s + h])))
            if rewarded:
                g = _state(episode, "goal")[s]
                true_dist.append(float(np.linalg.norm(state[s + 1 : s + longest + 1] - g, axis=-1).mean()))
                dists = np.linalg.norm(read_imagined[1:] - g, axis=-1)
                imagined_dist.append(float(dists.mean()))
                rewarded_far.append(float(((imagined_rewards[w] > 0.5) & (dists > far)).sum()))
        true = _get(episode, "rewards").astype(np.float64)
        gaps += [float(true[s : s + longest].sum() - imagined_rewards[w].sum()) for w, s in enumerate(starts)]
    out = {"windows": len(moved), "moved": float(np.mean(moved)),
           "imagined moved": float(np.mean(imagined_moved))}
    out.update({f"drift_{h}": float(np.mean(drift[h])) for h in horizons})
    out["reward gap"] = float(np.mean(gaps))
    if rewarded:
        out["to goal (true)"] = float(np.mean(true_dist))
        out["to goal (imagined)"] = float(np.mean(imagined_dist))
        out["rewarded far"] = float(np.mean(rewarded_far))
    return out


REWARDED_POSITION = {"obstacle": "agent", "reach": "agent", "push": "puck"}
"""The position whose distance to the goal decides success, per task (``Episode.state`` key)."""


@dataclass(frozen=True)
class RewardGrid:
    """The Push reward head over puck positions on the table (Fig. 8), beside the true success."""

    xs: np.ndarray
    """(G,) puck x positions (m)."""
    ys: np.ndarray
    """(G,) puck y positions (m)."""
    predicted: np.ndarray
    """(G, G) reward head on the filtered feature of each image, rows over ``ys``."""
    true: np.ndarray
    """(G, G) 1 where Meta-World's success rule holds for that puck position, else 0."""
    goal: np.ndarray
    """(2,) the goal's table position."""


@torch.no_grad()
def reward_over_puck_positions(model: RSSM, grid: int = 9, seed: int = 0) -> RewardGrid:
    """Place the puck at ``grid`` x ``grid`` table positions (hand where episode ``seed`` starts),
    render each, and score it with the reward head (one batched encoding) and with the env's rule."""
    from latco import envs

    env = envs.make_env("push", seed=seed, image_size=model.cfg.image_size).unwrapped
    try:
        env.reset(seed=seed)
        xs, ys = np.linspace(-0.2, 0.4, grid), np.linspace(0.55, 0.9, grid)
        images, true = [], []
        for y in ys:
            for x in xs:
                images.append(env.place_puck(np.array([x, y])))
                true.append(float(env.success_now()))
        goal = env.goal[:2].copy()
    finally:
        env.close()
    features = model.initial_feature(torch.as_tensor(np.stack(images), device=model.device))
    predicted = model.reward(features).cpu().numpy().reshape(grid, grid)
    return RewardGrid(xs, ys, predicted, np.array(true).reshape(grid, grid), goal)


@torch.no_grad()
def corner_probe(model: RSSM, train: Sequence[Any], dashes: Sequence[Any], image_size: int = 32,
                 ridge: float = 1e-3) -> dict[str, float]:
    """Does the model know who gets past Obstacle's wall? Its open-loop error where plans fail.

    ``dashes``: true episodes of ``latco.envs.CornerDash`` (a dash at the wall's end, then a turn
    to the goal's height; about half are blocked). From each episode's first image the model
    imagines the whole episode under its actions (prior mean, as the planners do) and a position
    probe (``position_probe``, fitted on ``train``) reads the agent's position off the imagined
    latents. Returns:

    - ``blocked``: fraction of the dashes truly blocked (ending left of the wall);
    - ``false_pass``: of those, the fraction the model imagines past the wall: a plan the model
      believes and the world refuses, the failure an optimizer finds (LatCo's open-loop failures);
    - ``false_block``: of the truly passing dashes, the fraction imagined blocked;
    - ``corner_error_px``: mean distance, in pixels of a ``image_size`` image, between imagined and
      true position over the steps of the dash and the two after it (at the corner);
    - ``reward_gap``: mean of (true − imagined) reward sum over the blocked dashes.
    """
    from latco.envs.obstacle import VIEW_HALF_WIDTH, wall_passage

    predict = position_probe(model, train, "agent", ridge)
    px = image_size / (2 * VIEW_HALF_WIDTH)
    # every dash at once: the first images filtered, then imagined under the dashes' actions
    actions = np.stack([_get(e, "actions") for e in dashes])
    images = torch.as_tensor(np.stack([_get(e, "images")[:1] for e in dashes]), device=model.device)
    first = model.observe(images, torch.as_tensor(actions[:, :0], device=model.device,
                                                  dtype=model.dtype))["feature"]
    imagined = model.imagine(first[:, -1], torch.as_tensor(actions, device=model.device, dtype=model.dtype))
    predicted_rewards = model.reward(imagined[:, 1:]).sum(-1).cpu().numpy()
    blocked, imagined_blocked, corner, gaps = [], [], [], []
    for i, episode in enumerate(dashes):
        truth = _state(episode, "agent")
        positions = predict(imagined[i].cpu().numpy())
        blocked.append(wall_passage(truth) == "blocked")
        imagined_blocked.append(wall_passage(positions) == "blocked")
        dash = int(np.argmax(np.abs(actions[i, :, 1]) == 0)) or len(actions[i])
        steps = slice(1, dash + 3)
        corner.append(np.linalg.norm(positions[steps] - truth[steps], axis=-1).mean() * px)
        if blocked[-1]:
            gaps.append(float(_get(episode, "rewards").sum() - predicted_rewards[i]))
    blocked, imagined_blocked = np.array(blocked), np.array(imagined_blocked)
    return {"dashes": len(blocked), "blocked": float(blocked.mean()),
            "false_pass": float((~imagined_blocked[blocked]).mean()) if blocked.any() else float("nan"),
            "false_block": float(imagined_blocked[~blocked].mean()) if (~blocked).any() else float("nan"),
            "corner_error_px": float(np.mean(corner)),
            "reward_gap": float(np.mean(gaps)) if gaps else float("nan")}
