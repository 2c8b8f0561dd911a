"""latco.envs against independent facts: the paper's task table, the reward formula, the
camera geometry, physics (a wall blocks a straight line), seeding, scripted experts."""

from __future__ import annotations

import gc
import os
import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import latco.envs as envs
from latco.envs import gl
from latco.envs.obstacle import GOAL, WALL, world_to_pixel

SAWYER = ["reach", "push"]


@pytest.fixture(scope="module")
def env_of():
    """One rendering env per task (64 px), made once: Meta-World envs take ~1 s to build."""
    made = {}

    def get(task):
        if task not in made:
            made[task] = envs.make_env(task, seed=0, image_size=64)
        return made[task]

    yield get
    for env in made.values():
        env.close()


def test_task_specs_are_the_papers():
    """Paper §6.1: H / T_cache / T_tot / runs = 30/30/30/100, 30/30/150/20, 40/20/120/20."""
    got = {
        name: (s.horizon, s.t_cache, s.t_tot, s.eval_episodes, s.action_size, s.sparse)
        for name, s in envs.TASKS.items()
    }
    assert got == {
        "obstacle": (30, 30, 30, 100, 2, False),
        "reach": (30, 30, 150, 20, 4, True),
        "push": (40, 20, 120, 20, 4, True),
    }
    assert all(envs.task_spec(t).action_repeat == 1 for t in envs.TASKS)


@pytest.mark.parametrize("call", [envs.task_spec, envs.make_env, envs.oracle])
def test_unknown_task_names_the_valid_ones(call):
    with pytest.raises(ValueError, match="unknown task 'pusj'; choose one of: obstacle, reach, push"):
        call("pusj")


def test_gymnasium_ids_are_registered():
    for spec in envs.TASKS.values():
        assert gymnasium.spec(spec.env_id).max_episode_steps == spec.t_tot
    env = gymnasium.make("latco/Obstacle-v0", image_size=32)
    obs, _ = env.reset(seed=0)
    assert obs.shape == (32, 32, 3) and obs.dtype == np.uint8
    env.close()


@pytest.mark.parametrize("task", list(envs.TASKS))
def test_observation_is_an_image_and_info_has_the_true_state(env_of, task):
    env = env_of(task)
    obs, info = env.reset(seed=1)
    assert obs.shape == (64, 64, 3) and obs.dtype == np.uint8
    assert env.observation_space.contains(obs)
    assert obs.std() > 10, "frame looks blank"
    dims = 2 if task == "obstacle" else 3
    expected = {"agent", "goal"} | ({"puck"} if task == "push" else set())
    assert set(info["state"]) == expected
    assert all(v.shape == (dims,) and v.dtype == np.float64 for v in info["state"].values())
    assert info["success"] is False
    obs, reward, terminated, truncated, info = env.step(np.zeros(env.action_space.shape))
    assert isinstance(reward, float) and not terminated and not truncated
    assert isinstance(info["success"], bool)


@pytest.mark.parametrize("task", list(envs.TASKS))
def test_same_seed_gives_identical_images(env_of, task):
    """Two separate envs, same seed, same actions: pixel-identical; another seed differs."""
    actions = np.random.default_rng(0).uniform(-1, 1, (8, envs.task_spec(task).action_size))
    other = envs.make_env(task, seed=0, image_size=64)
    try:
        runs = []
        for env in (env_of(task), other):
            frames = [env.reset(seed=7)[0]]
            frames += [env.step(a)[0] for a in actions]
            runs.append(np.stack(frames))
        np.testing.assert_array_equal(runs[0], runs[1])
        assert not np.array_equal(other.reset(seed=8)[0], runs[0][0])
    finally:
        other.close()


def test_start_states_follow_the_spec():
    """Obstacle: x in [-0.6, -0.4], y in [-0.1, 0.1]. Push: puck in x [-0.2, 0.4],
    y [0.6, 0.9], >= 0.15 m from the goal, <= 0.83 m from the robot base. Reach: the
    hand start varies over a large box. Goals never move."""
    starts = {}
    for task in envs.TASKS:
        env = envs.make_env(task, seed=0, render=False)
        states = [env.reset(seed=s)[1]["state"] for s in range(20)]
        assert all(np.allclose(st["goal"], states[0]["goal"], atol=1e-4) for st in states)
        starts[task] = np.stack([st["puck" if task == "push" else "agent"] for st in states])
        env.close()
    ob = starts["obstacle"]
    assert ob[:, 0].min() >= -0.6 and ob[:, 0].max() <= -0.4 and np.abs(ob[:, 1]).max() <= 0.1
    puck = starts["push"][:, :2]
    assert puck[:, 0].min() >= -0.2 - 1e-3 and puck[:, 0].max() <= 0.4 + 1e-3
    assert puck[:, 1].min() >= 0.6 - 1e-3 and puck[:, 1].max() <= 0.9 + 1e-3
    assert np.linalg.norm(puck - [0.1, 0.8], axis=1).min() >= 0.15 - 1e-3
    assert np.linalg.norm(puck, axis=1).max() <= 0.83 + 1e-3
    assert starts["reach"].std(axis=0).min() > 0.1


def test_make_env_seed_seeds_the_first_reset():
    a, b = envs.make_env("obstacle", seed=3), envs.make_env("obstacle", seed=0)
    np.testing.assert_array_equal(a.reset()[0], b.reset(seed=3)[0])
    a.close(), b.close()


@pytest.mark.parametrize("image_size", [64, 32])
def test_obstacle_agent_is_drawn_where_it_is(image_size):
    """The blue agent's pixel centroid is the orthographic projection of its position."""
    env = envs.make_env("obstacle", seed=0, image_size=image_size)
    obs, info = env.reset(seed=0)
    for target in [(-0.8, 0.8), (0.0, -0.7), (0.7, 0.6)]:
        for _ in range(10):
            obs, _, _, _, info = env.step(np.array(target))
        blue = (obs[..., 2] > 150) & (obs[..., 0] < 100) & (obs[..., 1] < 150)
        rows, cols = np.nonzero(blue)
        assert len(rows) >= 4, "agent not visible"
        expected = world_to_pixel(info["state"]["agent"], image_size)
        np.testing.assert_allclose([rows.mean(), cols.mean()], expected, atol=1.0)
    env.close()


@pytest.mark.parametrize("task", SAWYER)
def test_sawyer_hand_visibly_moves(env_of, task):
    env = env_of(task)
    first, info = env.reset(seed=2)
    start = info["state"]["agent"]
    for _ in range(15):
        obs, _, _, _, info = env.step(np.array([0.0, -1.0, 1.0, 0.0]))  # toward the robot, up
    assert np.linalg.norm(info["state"]["agent"] - start) > 0.1
    changed = np.abs(obs.astype(int) - first.astype(int)).sum(-1) > 30
    assert changed.sum() > 20, "the image barely changed although the hand moved > 10 cm"


def _yellow(obs):
    return (obs[..., 0] > 180) & (obs[..., 1] > 150) & (obs[..., 2] < 80)


def test_push_puck_is_drawn_large_enough_and_where_it_is(monkeypatch):
    """At 32 px the puck's disc (drawn at twice the real radius) covers ~10 pixels, about twice
    what the real puck covers, and its pixels follow the puck along the table's x axis."""
    from latco.envs import sawyer

    def yellow_counts_and_columns(radius):
        monkeypatch.setattr(sawyer, "PUCK_DRAW_RADIUS", radius)
        env = envs.make_env("push", seed=0, image_size=32)
        env.reset(seed=0)
        counts, columns = [], []
        for x in (-0.15, 0.05, 0.25):  # away from the hand, which starts above the original puck
            yellow = _yellow(env.unwrapped.place_puck(np.array([x, 0.65])))
            counts.append(yellow.sum())
            columns.append(np.nonzero(yellow)[1].mean() if yellow.any() else np.nan)
        env.close()
        return np.array(counts), np.array(columns)

    drawn, columns = yellow_counts_and_columns(sawyer.PUCK_DRAW_RADIUS)
    real, _ = yellow_counts_and_columns(0.02)
    assert drawn.min() >= 6, drawn
    assert drawn.sum() >= 1.8 * real.sum(), (drawn, real)  # measured: 29 against 13
    assert np.all(np.abs(np.diff(columns)) >= 3), columns  # 0.2 m apart along x: >= 3 px apart


def test_obstacle_reward_and_success_follow_the_definition():
    """reward = -10 mean((pos - goal)^2); success iff |pos - goal| < 0.3 (authors' code)."""
    env = envs.make_env("obstacle", seed=0, render=False)
    policy = envs.oracle("obstacle", noise=0.3, seed=0)
    obs, info = env.reset(seed=0)
    successes = []
    for _ in range(30):
        obs, reward, _, _, info = env.step(policy(obs, info))
        pos = info["state"]["agent"]
        assert reward == pytest.approx(-10 * np.mean((pos - GOAL) ** 2))
        assert info["success"] == (np.linalg.norm(pos - GOAL) < 0.3)
        successes.append(info["success"])
    assert any(successes) and not all(successes)


@pytest.mark.parametrize("mode", ["target the goal", "small steps toward the goal"])
def test_obstacle_straight_line_is_blocked_by_the_wall(mode):
    env = envs.make_env("obstacle", seed=0, render=False)
    for seed in range(10):
        obs, info = env.reset(seed=seed)
        for _ in range(30):
            pos = info["state"]["agent"]
            if mode == "target the goal":
                action = GOAL
            else:
                action = pos + 0.1 * (GOAL - pos) / np.linalg.norm(GOAL - pos)
            obs, _, _, truncated, info = env.step(action)
            assert not info["success"]
            assert info["state"]["agent"][0] < WALL[0]
        assert truncated


@pytest.mark.parametrize("task", SAWYER)
def test_sparse_reward_is_one_exactly_on_success(task):
    env = envs.make_env(task, seed=0, render=False)
    policy = envs.oracle(task)
    obs, info = env.reset(seed=0)
    rewards, successes = [], []
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs, info))
        rewards.append(reward)
        successes.append(info["success"])
        done = terminated or truncated
    assert rewards == [1.0 if s else 0.0 for s in successes]
    assert 0 < sum(successes) < len(successes)


def test_rendering_does_not_change_the_physics(env_of):
    """Success rates are measured with render=False; they must hold for rendering envs."""
    runs = []
    for env in (env_of("push"), envs.make_env("push", seed=0, render=False)):
        policy = envs.oracle("push", noise=0.3, seed=1)
        obs, info = env.reset(seed=3)
        states = []
        for _ in range(40):
            obs, _, _, _, info = env.step(policy(obs, info))
            states.append(np.concatenate([info["state"]["agent"], info["state"]["puck"]]))
        runs.append(np.stack(states))
    np.testing.assert_array_equal(runs[0], runs[1])


@pytest.mark.parametrize("task", list(envs.TASKS))
def test_oracle_succeeds_nine_times_in_ten(task):
    assert envs.oracle_success(task, episodes=10, noise=0.0, seed=0).sum() >= 9


def test_oracle_noise_is_seeded_and_clipped():
    env = envs.make_env("obstacle", seed=0, render=False)
    obs, info = env.reset(seed=0)
    a, b = envs.oracle("obstacle", 5.0, seed=1), envs.oracle("obstacle", 5.0, seed=1)
    actions = np.stack([a(obs, info) for _ in range(20)])
    np.testing.assert_array_equal(actions, np.stack([b(obs, info) for _ in range(20)]))
    assert np.abs(actions).max() <= 1.0 and len(np.unique(actions)) > 2


@pytest.mark.parametrize("action", [np.zeros(3), np.zeros((1, 2)), [0.0]])
def test_wrong_action_shape_is_a_clear_error(action):
    env = envs.make_env("obstacle", seed=0, render=False)
    env.reset()
    with pytest.raises(ValueError, match=r"shape \(2,\), got shape"):
        env.step(action)


def test_sawyer_wrong_action_shape_is_a_clear_error(env_of):
    env = env_of("reach")
    env.reset()
    with pytest.raises(ValueError, match=r"must have shape \(4,\), got shape \(2,\)"):
        env.step(np.zeros(2))


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_action_is_an_error(bad):
    env = envs.make_env("obstacle", seed=0, render=False)
    env.reset()
    with pytest.raises(ValueError, match="NaN or inf"):
        env.step(np.array([0.0, bad]))


def test_actions_are_clipped_to_the_box():
    env = envs.make_env("obstacle", seed=0, render=False)
    env.reset(seed=0)
    big = env.step(np.array([5.0, -7.0]))[4]["state"]["agent"]
    env.reset(seed=0)
    unit = env.step(np.array([1.0, -1.0]))[4]["state"]["agent"]
    np.testing.assert_array_equal(big, unit)


def test_episode_is_truncated_after_t_tot_steps():
    env = envs.make_env("obstacle", seed=0, render=False)
    env.reset()
    flags = [env.step(np.zeros(2))[3] for _ in range(30)]
    assert flags == [False] * 29 + [True]


def test_closing_one_env_does_not_blank_another():
    """NOTES: a freed GL context used to unbind the live one, and frames went black."""
    keep = envs.make_env("obstacle", seed=0, image_size=32)
    before = keep.reset(seed=0)[0]
    for _ in range(3):
        other = envs.make_env("obstacle", seed=1, image_size=32)
        other.reset()
        other.close()
        del other
        gc.collect()
        np.testing.assert_array_equal(keep.reset(seed=0)[0], before)
    keep.close()


def test_gl_keeps_a_backend_the_user_chose(monkeypatch):
    monkeypatch.setattr(gl, "_PROBES", {"egl": lambda: True, "osmesa": lambda: True})
    assert gl.choose_backend({"MUJOCO_GL": "osmesa"}) == "osmesa"
    environ = {}
    assert gl.choose_backend(environ) == "egl" and environ == {"MUJOCO_GL": "egl"}


def test_gl_falls_back_to_osmesa_then_says_what_to_install(monkeypatch):
    monkeypatch.setattr(gl, "_PROBES", {"egl": lambda: False, "osmesa": lambda: True})
    assert gl.choose_backend({}) == "osmesa"
    monkeypatch.setattr(gl, "_PROBES", {"egl": lambda: False, "osmesa": lambda: False})
    environ = {}
    assert gl.choose_backend(environ) is None and environ == {}
    monkeypatch.setattr(gl, "BACKEND", None)
    with pytest.raises(gl.GLBackendError, match=r"(?s)libegl1 libegl-mesa0 libgl1-mesa-dri.*libosmesa6"):
        gl.require_backend()


def test_gl_check_command_reports_the_backend():
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    result = subprocess.run(
        [sys.executable, "-m", "latco.envs.gl"], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "MUJOCO_GL=" in result.stdout
    assert result.stderr == ""


def test_greedy_policy_heads_for_the_goal_and_obstacle_blocks_it():
    from latco.data import rollout

    env = envs.make_env("obstacle", seed=0, render=False)
    ep = rollout(env, envs.greedy("obstacle", noise=0.1), seed=1)
    assert not ep.succeeded and ep.state["agent"][-1][0] < WALL[0]  # stuck left of the wall
    reach = envs.make_env("reach", seed=0, render=False)
    assert rollout(reach, envs.greedy("reach"), seed=1).succeeded  # nothing in the way


@pytest.mark.parametrize(
    "name, actions, success",
    [
        ("blocked", [[1.0, 0.0]] * 30, False),  # straight at the goal: pressed against the wall
        ("above", [[-0.3, 0.75]] * 8 + [[0.8, 0.75]] * 8 + [[0.8, 0.0]] * 14, True),
        ("below", [[-0.3, -0.75]] * 8 + [[0.8, -0.75]] * 8 + [[0.8, 0.0]] * 14, True),
    ],
)
def test_obstacle_wall_passage_names_the_way_the_agent_went(name, actions, success):
    from latco.envs.obstacle import wall_passage

    env = envs.make_env("obstacle", seed=0, image_size=32, render=False)
    _, info = env.reset(seed=0)
    positions = [info["state"]["agent"]]
    for a in actions:  # target positions: via a waypoint beside the wall's end, then the goal
        _, _, _, _, info = env.step(np.array(a, np.float32))
        positions.append(info["state"]["agent"])
    assert wall_passage(np.array(positions)) == name
    assert info["success"] == success
    with pytest.raises(ValueError, match="shape"):
        wall_passage(np.zeros((3, 3)))


def test_push_decoy_expert_comes_down_beside_the_puck_and_leaves_it():
    """``aim_offset``: the Push expert aims 5-10 cm beside the puck, comes down there, closes the
    gripper and takes the hand to the goal; the puck mostly stays where the true expert carries it
    (measured from the true puck and hand positions)."""
    from latco.data import rollout

    env = envs.make_env("push", seed=0, render=False)
    decoy = envs.oracle("push", aim_offset=(0.05, 0.1))
    moved = {}
    for name, policy in [("oracle", envs.oracle("push")), ("decoy", decoy)]:
        moved[name] = []
        for seed in range(4):
            policy.reset(seed)
            ep = rollout(env, policy, seed=seed)
            puck, hand, goal = ep.state["puck"], ep.state["agent"], ep.state["goal"][0]
            moved[name].append(np.linalg.norm(puck[-1, :2] - puck[0, :2]))
            if name == "decoy":  # low beside the puck at some step, and at the goal at the end
                beside = np.linalg.norm(hand[:, :2] - puck[:, :2], axis=1) > 0.03
                assert (beside & (hand[:, 2] < puck[:, 2] + 0.04)).any()
                assert np.linalg.norm(hand[-1, :2] - goal[:2]) < 0.03
    assert min(moved["oracle"]) > 0.1 and np.median(moved["decoy"]) < 0.02
    with pytest.raises(ValueError, match="has no puck"):
        envs.oracle("reach", aim_offset=(0.05, 0.1))
    with pytest.raises(ValueError, match="0 <= low <= high"):
        envs.oracle("push", aim_offset=(0.1, 0.05))
