"""MPC (Algorithm 1) and evaluation, with a tiny random model and a stub planner."""

import numpy as np
import pytest
import torch

from latco import envs
from latco.agent import ROW_COLUMNS, evaluate, run_episode
from latco.model import RSSM, WorldModelConfig
from latco.planners.base import Plan

TINY = WorldModelConfig(action_size=2, image_size=32, depth=4, stoch=4, deter=8, hidden=16, reward_hidden=16)


class StubPlanner:
    """Plans a fixed action toward +x; records what it was called with."""

    def __init__(self) -> None:
        self.calls: list[tuple[tuple[int, ...], int]] = []

    def plan(self, model, z0, horizon):
        self.calls.append((tuple(z0.shape), horizon))
        actions = torch.full((horizon, model.action_size), 0.5)
        return Plan(actions=actions, features=torch.zeros(horizon + 1, model.feature_size), trace={})


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return RSSM(TINY).eval()


def test_mpc_executes_t_tot_steps_and_replans_every_t_cache(model):
    env = envs.make_env("obstacle", seed=0, image_size=32)
    planner = StubPlanner()
    result = run_episode(env, model, planner, seed=3, horizon=12, t_cache=7, t_tot=30)
    env.close()
    assert len(result.episode) == 30 and len(result.episode.images) == 31
    assert [r.step for r in result.plans] == [0, 7, 14, 21, 28]
    assert [r.executed for r in result.plans] == [7, 7, 7, 7, 2]
    assert planner.calls == [((model.feature_size,), 12)] * 5
    np.testing.assert_allclose(result.episode.actions, 0.5)  # no exploration noise by default
    achieved = sum(r.achieved_reward for r in result.plans)
    assert achieved == pytest.approx(result.episode.rewards.sum())
    with pytest.raises(ValueError, match="t_cache"):
        run_episode(envs.make_env("obstacle", image_size=32), model, planner, seed=0, horizon=5, t_cache=7)


def test_exploration_noise_is_seeded_and_clipped(model):
    env = envs.make_env("obstacle", seed=0, image_size=32)
    a = run_episode(env, model, StubPlanner(), seed=1, explore_noise=0.3).episode.actions
    b = run_episode(env, model, StubPlanner(), seed=1, explore_noise=0.3).episode.actions
    env.close()
    np.testing.assert_array_equal(a, b)
    assert a.std() > 0.1 and np.abs(a).max() <= 1.0


def test_evaluate_rows_and_identical_start_states(model, tmp_path):
    kw = dict(seed=5, progress=False)
    first = evaluate(model, StubPlanner(), "obstacle", episodes=2, out_dir=tmp_path / "a", **kw)
    assert list(first.columns) == ROW_COLUMNS and len(first) == 2
    assert first["plans"].tolist() == [1, 1]  # Obstacle: T_cache = T_tot = 30
    assert first["seed"].tolist() == [5, 6]
    from latco.data import load_episode

    ep_a = load_episode(first["episode_file"][0])

    class OtherPlanner(StubPlanner):
        def plan(self, model, z0, horizon):
            p = super().plan(model, z0, horizon)
            return Plan(-p.actions, p.features, {})

    second = evaluate(model, OtherPlanner(), "obstacle", episodes=1, out_dir=tmp_path / "b", **kw)
    ep_b = load_episode(second["episode_file"][0])
    np.testing.assert_array_equal(ep_a.images[0], ep_b.images[0])  # same start for every planner
    assert not np.array_equal(ep_a.images[-1], ep_b.images[-1])
    dist = np.linalg.norm(ep_a.state["agent"][-1] - ep_a.state["goal"][-1])
    assert first["final_distance"][0] == pytest.approx(dist)


def test_evaluate_resumes_without_redoing_episodes(model, tmp_path):
    planner = StubPlanner()
    evaluate(model, planner, "obstacle", episodes=2, seed=0, out_dir=tmp_path, progress=False)
    with (tmp_path / "rows.jsonl").open("a") as f:
        f.write('{"episode": 2, "seed"')  # a crash in the middle of writing episode 2's row
    table = evaluate(model, planner, "obstacle", episodes=3, seed=0, out_dir=tmp_path, progress=False)
    assert len(planner.calls) == 3  # episodes 0 and 1 were not planned again
    assert table["episode"].tolist() == [0, 1, 2]
    again = evaluate(model, planner, "obstacle", episodes=3, seed=0, out_dir=tmp_path, progress=False)
    assert len(planner.calls) == 3  # the rewritten log holds all three rows
    assert again.equals(table)


def test_random_policy_holds_each_action():
    from latco.envs.oracle import RandomPolicy

    policy = RandomPolicy(3, hold=4)
    policy.reset(0)
    actions = np.stack([policy(None, {}) for _ in range(12)])
    assert (actions[:4] == actions[0]).all() and (actions[4:8] == actions[4]).all()
    assert not np.allclose(actions[0], actions[4]) and np.abs(actions).max() <= 1
    policy.reset(0)
    np.testing.assert_array_equal(np.stack([policy(None, {}) for _ in range(12)]), actions)


@pytest.mark.parametrize("name", ["cem", "latco"])
def test_an_episode_plans_the_same_whatever_the_planner_did_before(model, name):
    """A seeded planner is restarted per episode: evaluating episode 2 after episode 1 (one
    uninterrupted evaluation) or on its own (a resumed one) gives the same plans; a different
    episode seed gives different ones."""
    from latco.planners import make_planner

    options = {"cem": {"iterations": 2, "samples": 20, "elites": 4}, "latco": {"iterations": 3}}[name]
    env = envs.make_env("obstacle", seed=0, image_size=32)

    def first_plan(planner, seed):
        result = run_episode(env, model, planner, seed=seed, horizon=6, t_cache=3, t_tot=3)
        return result.plans[0].plan.actions

    uninterrupted = make_planner(name, **options)
    first_plan(uninterrupted, 10)
    after_another = first_plan(uninterrupted, 11)
    alone = first_plan(make_planner(name, **options), 11)
    other_seed = first_plan(make_planner(name, **options), 12)
    env.close()
    torch.testing.assert_close(after_another, alone, rtol=0, atol=0)
    assert not torch.equal(alone, other_seed)
