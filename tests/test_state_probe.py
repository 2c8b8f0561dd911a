"""diagnostics.state_probe against closed-form cases: a latent that holds the position, one that does not."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.linalg import lstsq

from latco.paper import diagnostics


class LinearLatentModel:
    """A stand-in world model whose feature is (position, noise); ``predict_mean`` moves the position
    by the action (exact dynamics) or keeps it (``frozen``: imagination loses the position)."""

    device, dtype, feature_size = torch.device("cpu"), torch.float32, 4

    def __init__(self, frozen: bool = False) -> None:
        self.frozen = frozen

    def observe(self, images, actions):
        # the "image" carries the position in its first pixels: filtering recovers it exactly
        pos = images[..., 0, 0, :2].to(torch.float32) / 10.0
        noise = images[..., 0, 1, :2].to(torch.float32) / 255.0
        return {"feature": torch.cat([pos, noise], -1)}

    def imagine(self, z0, actions):
        zs = [z0]
        for t in range(actions.shape[-2]):
            step = torch.zeros_like(z0)
            if not self.frozen:
                step[..., :2] = actions[..., t, :]
            zs.append(zs[-1] + step)
        return torch.stack(zs, -2)


def episode(rng: np.random.Generator, steps: int = 40) -> dict:
    actions = rng.choice([-0.3, 0.0, 0.3], size=(steps, 2))
    pos = np.cumsum(np.vstack([rng.integers(120, 130, 2) / 10.0, actions]), 0)
    images = np.zeros((steps + 1, 2, 2, 3), dtype=np.uint8)
    images[:, 0, 0, :2] = np.round(pos * 10)
    images[:, 0, 1, :2] = rng.integers(0, 256, (steps + 1, 2))
    pos = images[:, 0, 0, :2] / 10.0  # the position the image encodes
    return {"images": images, "actions": actions.astype(np.float32), "state": {"agent": pos}}


def test_probe_reads_a_position_the_latent_holds_and_not_one_it_lost() -> None:
    rng = np.random.default_rng(0)
    train, heldout = [episode(rng) for _ in range(20)], [episode(rng) for _ in range(5)]
    exact = diagnostics.state_probe(LinearLatentModel(), train, heldout, "agent", horizons=(10, 30))
    assert exact["filtered"] > 0.99 and exact["imagined_30"] > 0.99
    assert exact["windows"] == 5 * 2  # starts 0 and 10 of 40 actions per episode
    lost = diagnostics.state_probe(LinearLatentModel(frozen=True), train, heldout, "agent", horizons=(10, 30))
    assert lost["filtered"] > 0.99  # the filter sees it; imagination does not move
    assert lost["imagined_30"] < exact["imagined_30"] - 0.3


def test_probe_r2_matches_an_augmented_least_squares_ridge() -> None:
    rng = np.random.default_rng(1)
    train, heldout = [episode(rng) for _ in range(10)], [episode(rng) for _ in range(3)]
    model = LinearLatentModel()
    out = diagnostics.state_probe(model, train, heldout, "agent", horizons=(10,), ridge=1e-3)
    def feats(eps):
        return np.concatenate([model.observe(torch.as_tensor(e["images"]), None)["feature"].numpy()
                                            for e in eps]).astype(np.float64)
    x, xh = feats(train), feats(heldout)
    mean, std = x.mean(0), x.std(0) + 1e-6
    y = np.concatenate([e["state"]["agent"] for e in train])
    # ridge as least squares on rows [X, 1] stacked over sqrt(lam n) I (penalty on every weight)
    xs = np.hstack([(x - mean) / std, np.ones((len(x), 1))])
    lam_n = 1e-3 * len(x)
    a = np.vstack([xs, np.sqrt(lam_n) * np.eye(xs.shape[1])])
    b = np.vstack([y, np.zeros((xs.shape[1], y.shape[1]))])
    weights = lstsq(a, b)[0]
    yh = np.concatenate([e["state"]["agent"] for e in heldout])
    pred = np.hstack([(xh - mean) / std, np.ones((len(xh), 1))]) @ weights
    sst = ((yh - yh.mean(0)) ** 2).sum()
    expected = 1 - ((yh - pred) ** 2).sum() / sst
    assert out["filtered"] == pytest.approx(expected, abs=1e-9)


def test_probe_names_missing_positions() -> None:
    rng = np.random.default_rng(2)
    with pytest.raises(KeyError, match="not 'puck'"):
        diagnostics.state_probe(LinearLatentModel(), [episode(rng)], [episode(rng)], "puck")


class RewardedLinearModel(LinearLatentModel):
    """``LinearLatentModel`` with a reward head: 1 where the position's x exceeds ``THRESHOLD``."""

    THRESHOLD = 12.55  # between the grid's values (multiples of 0.1): no ties with float rounding

    def reward(self, features):
        return (features[..., 0] > self.THRESHOLD).to(torch.float32)


def rewarded_episode(rng: np.random.Generator, steps: int = 40) -> dict:
    out = episode(rng, steps)
    pos = out["state"]["agent"]
    out["rewards"] = (pos[1:, 0] > RewardedLinearModel.THRESHOLD).astype(np.float32)
    out["state"]["goal"] = np.tile([13.0, 12.5], (steps + 1, 1))
    return out


def test_imagination_errors_against_the_positions_and_rewards_written_out() -> None:
    """Exact dynamics: no drift and no reward gap, and the true motion and distance to the goal are
    what the episode's positions say; frozen dynamics: the imagined position stays put and the
    reward gap is the true reward minus the start's reward held for the whole window."""
    rng = np.random.default_rng(3)
    train, eps = [rewarded_episode(rng) for _ in range(20)], [rewarded_episode(rng) for _ in range(4)]
    stride, horizon = 10, 30
    windows = [(e, s) for e in eps for s in range(0, 40 - horizon + 1, stride)]
    agent = [(e["state"]["agent"], e["state"]["goal"][s], s) for e, s in windows]
    moved = np.mean([np.linalg.norm(pos[s + horizon] - pos[s]) for pos, _, s in agent])
    to_goal = np.mean([np.linalg.norm(pos[s + 1 : s + horizon + 1] - goal, axis=-1).mean()
                       for pos, goal, s in agent])
    exact_model = RewardedLinearModel()
    predict = diagnostics.position_probe(exact_model, train, "agent")
    exact = diagnostics.imagination_errors(exact_model, eps, predict, "agent", stride, (10, horizon),
                                           rewarded=True)
    assert exact["windows"] == len(windows) == 8
    assert exact["moved"] == pytest.approx(moved, abs=1e-9)
    assert exact["to goal (true)"] == pytest.approx(to_goal, abs=1e-9)
    assert exact["drift_30"] < 0.05 and exact["reward gap"] == pytest.approx(0.0, abs=1e-6)
    assert exact["imagined moved"] == pytest.approx(moved, abs=0.05)
    frozen_model = RewardedLinearModel(frozen=True)
    frozen_probe = diagnostics.position_probe(frozen_model, train, "agent")
    frozen = diagnostics.imagination_errors(frozen_model, eps, frozen_probe, "agent", stride, (10, horizon),
                                            rewarded=True)
    assert frozen["imagined moved"] < 0.05 < moved
    held = np.mean([e["rewards"][s : s + horizon].sum() - horizon * float(e["state"]["agent"][s, 0] > 12.55)
                    for e, s in windows])
    assert frozen["reward gap"] == pytest.approx(held, abs=1e-6)
