"""The Obstacle corner probe and the data it motivates: CornerDash outcomes in the true simulator, the
oracle's pass heights, and ``diagnostics.corner_probe`` on stand-in models whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from latco import data, envs
from latco.envs.obstacle import GOAL, WALL, obstacle_reward
from latco.envs.oracle import obstacle_waypoint
from latco.paper import diagnostics


@pytest.fixture(scope="module")
def dashes() -> list[data.Episode]:
    env = envs.make_env("obstacle", seed=0, render=False)
    try:
        return [data.rollout(env, envs.CornerDash(), 7_000_000 + i) for i in range(40)]
    finally:
        env.close()


def test_corner_dashes_end_both_ways_decided_at_the_corner(dashes) -> None:
    blocked = np.array([e.state["agent"][-1, 0] < WALL[0] for e in dashes])
    assert 0.2 < blocked.mean() < 0.8  # about half each way
    peaks = np.array([np.abs(e.state["agent"][:6, 1]).max() for e in dashes])
    # blocked dashes met the wall's end (|y| short of 0.45 + the disc's 0.1), passing ones cleared it
    assert peaks[blocked].max() < 0.55 <= peaks[~blocked].min() + 0.05
    assert all(e.actions[-1, 1] == 0 and e.actions[0, 0] == 1 for e in dashes)


def test_oracle_pass_range_draws_a_height_per_episode_and_keeps_the_default() -> None:
    plain, ranged = envs.oracle("obstacle"), envs.oracle("obstacle", pass_range=(0.35, 0.75))
    heights = []
    for seed in range(20):
        plain.reset(seed)
        ranged.reset(seed)
        assert plain.pass_y == 0.75
        heights.append(ranged.pass_y)
    assert min(heights) >= 0.35 and max(heights) <= 0.75 and np.std(heights) > 0.05
    ranged.reset(3)
    again = ranged.pass_y
    ranged.reset(3)
    assert ranged.pass_y == again  # the same episode seed, the same height
    # the default turns across at |y| > 0.5 toward (0.6, 0.75), as before the option existed
    np.testing.assert_array_equal(obstacle_waypoint(np.array([0.0, 0.51]), GOAL), [0.6, 0.75])
    np.testing.assert_array_equal(obstacle_waypoint(np.array([0.0, 0.49]), GOAL), [0.0, 0.75])
    np.testing.assert_array_equal(obstacle_waypoint(np.array([0.0, 0.2]), GOAL, pass_y=0.4), [0.6, 0.4])
    with pytest.raises(ValueError, match="has no wall"):
        envs.oracle("reach", pass_range=(0.3, 0.6))
    with pytest.raises(ValueError, match="low <= high"):
        envs.oracle("obstacle", pass_range=(0.8, 0.3))


def _with_position_images(episode: data.Episode) -> dict:
    """The episode with 1x2-pixel 'images' that hold the agent's position to 0.01 (the stand-ins read it)."""
    pos = episode.state["agent"]
    images = np.zeros((len(pos), 1, 2, 3), np.uint8)
    images[:, 0, 0, :2] = np.round((pos + 1) * 100)
    seen = images[:, 0, 0, :2] / 100.0 - 1  # the rewards of these positions: a model of them can be exact
    return {"images": images, "actions": episode.actions, "state": {"agent": seen},
            "rewards": np.array([obstacle_reward(p) for p in seen[1:]])}


class StandIn:
    """A world model whose feature is the agent's position: ``free`` imagines the agent following its
    target as if there were no wall; ``replay`` looks the true path up (a perfect model)."""

    device, dtype = torch.device("cpu"), torch.float32

    def __init__(self, kind: str, episodes: list[dict]) -> None:
        self.kind, self.episodes = kind, episodes

    def observe(self, images, actions):
        return {"feature": images[..., 0, 0, :2].to(torch.float32) / 100.0 - 1}

    def imagine(self, z0, actions):
        if self.kind == "replay":  # each row's true path, found by its actions and start
            def path(z, a):
                return next(e["state"]["agent"] for e in self.episodes
                            if np.array_equal(e["actions"], a) and np.allclose(e["state"]["agent"][0], z))

            paths = [path(z.numpy(), a.numpy()) for z, a in zip(z0, actions, strict=True)]
            return torch.as_tensor(np.stack(paths), dtype=torch.float32)
        zs = [z0]
        for t in range(actions.shape[1]):
            zs.append(zs[-1] + 0.5 * (actions[:, t] - zs[-1]))
        return torch.stack(zs, 1)

    def reward(self, z):
        return torch.as_tensor([obstacle_reward(p) for p in z.reshape(-1, 2).numpy()]).reshape(z.shape[:-1])


def test_corner_probe_scores_a_perfect_and_a_wall_blind_model(dashes) -> None:
    episodes = [_with_position_images(e) for e in dashes]
    blocked = np.mean([e["state"]["agent"][-1, 0] < WALL[0] for e in episodes])
    perfect = diagnostics.corner_probe(StandIn("replay", episodes), episodes, episodes)
    assert perfect["blocked"] == pytest.approx(blocked)
    assert perfect["false_pass"] == 0 and perfect["false_block"] == 0
    assert perfect["corner_error_px"] < 0.01 and abs(perfect["reward_gap"]) < 1e-3
    blind = diagnostics.corner_probe(StandIn("free", episodes), episodes, episodes)
    assert blind["false_pass"] == 1.0  # every blocked dash imagined past the wall
    assert blind["false_block"] == 0.0
    assert blind["corner_error_px"] > 1.0 and blind["reward_gap"] < -1.0
