"""latco.data: exact round trips, crash safety, deterministic resume, errors that name files."""

from __future__ import annotations

import os

import numpy as np
import pytest

import latco.data as data
import latco.envs as envs


def _episode(steps: int = 5, size: int = 8, seed: int = 3) -> data.Episode:
    rng = np.random.default_rng(seed)
    return data.Episode(
        images=rng.integers(0, 256, (steps + 1, size, size, 3), dtype=np.uint8),
        actions=rng.uniform(-1, 1, (steps, 4)).astype(np.float32),
        rewards=rng.uniform(size=steps).astype(np.float32),
        success=rng.uniform(size=steps) > 0.5,
        state={"agent": rng.normal(size=(steps + 1, 3)), "puck": rng.normal(size=(steps + 1, 3))},
        task="push",
        seed=seed,
    )


def _assert_same(a: data.Episode, b: data.Episode) -> None:
    for name in ("images", "actions", "rewards", "success"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)
    assert a.state.keys() == b.state.keys()
    for key in a.state:
        np.testing.assert_array_equal(a.state[key], b.state[key])
    assert (a.task, a.seed) == (b.task, b.seed)


def test_save_and_load_round_trip_exactly(tmp_path):
    episode = _episode()
    path = data.save_episode(tmp_path / "ep_000000.npz", episode)
    _assert_same(data.load_episode(path), episode)
    assert list(tmp_path.iterdir()) == [path]


def test_a_crash_while_writing_leaves_the_old_file_and_no_temp(tmp_path, monkeypatch):
    path = data.save_episode(tmp_path / "ep_000000.npz", _episode(seed=1))
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise KeyboardInterrupt  # e.g. the user stops the run mid-write

    monkeypatch.setattr(np, "savez_compressed", crash)
    with pytest.raises(KeyboardInterrupt):
        data.save_episode(path, _episode(seed=2))
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]


def test_inconsistent_episodes_are_refused():
    with pytest.raises(ValueError, match="images for"):
        data.Episode(np.zeros((3, 8, 8, 3), np.uint8), np.zeros((3, 2)), np.zeros(3), np.zeros(3))
    with pytest.raises(ValueError, match="uint8"):
        data.Episode(np.zeros((4, 8, 8, 3)), np.zeros((3, 2)), np.zeros(3), np.zeros(3))


def test_load_episodes_names_the_unreadable_file(tmp_path):
    data.save_episode(data.episode_path(tmp_path, 0), _episode())
    bad = data.episode_path(tmp_path, 1)
    bad.write_bytes(b"not an npz file")
    with pytest.raises(ValueError, match=r"ep_000001\.npz.*collect\(\) again"):
        data.load_episodes(tmp_path)


def test_load_episodes_of_an_empty_directory_says_how_to_make_them(tmp_path):
    with pytest.raises(FileNotFoundError, match="collect"):
        data.load_episodes(tmp_path)


def test_collect_resumes_and_remakes_the_same_episodes(tmp_path):
    policy = envs.oracle("obstacle", noise=0.3)
    paths = data.collect("obstacle", policy, episodes=3, out_dir=tmp_path, seed=10, image_size=32)
    first = data.load_episodes(tmp_path)
    assert [p.name for p in paths] == ["ep_000000.npz", "ep_000001.npz", "ep_000002.npz"]
    assert [e.seed for e in first] == [10, 11, 12]
    assert all(len(e) == 30 and e.images.shape == (31, 32, 32, 3) for e in first)
    assert all(e.task == "obstacle" and set(e.state) == {"agent", "goal"} for e in first)
    start = envs.make_env("obstacle", render=False).reset(seed=10)[1]["state"]["agent"]
    np.testing.assert_array_equal(first[0].state["agent"][0], start)

    # a crash after episode 0: episode 1 is missing and a temp file is left behind
    paths[1].unlink()
    (tmp_path / "ep_000001.abc.npz.tmp").write_bytes(b"half")
    mtime_0 = paths[0].stat().st_mtime_ns
    data.collect("obstacle", policy, episodes=4, out_dir=tmp_path, seed=10, image_size=32)
    again = data.load_episodes(tmp_path)
    assert len(again) == 4 and paths[0].stat().st_mtime_ns == mtime_0  # kept, not rewritten
    _assert_same(again[1], first[1])  # remade identically although the policy's rng moved on
    assert not list(tmp_path.glob("*.tmp"))


def test_collect_refuses_to_mix_tasks_or_sizes(tmp_path):
    data.save_episode(data.episode_path(tmp_path, 0), _episode())
    with pytest.raises(ValueError, match="already holds 'push' episodes at 8 px"):
        data.collect("obstacle", envs.oracle("obstacle"), 2, tmp_path, image_size=32)


def test_rollout_records_what_the_env_returned():
    env = envs.make_env("obstacle", seed=0, image_size=32)
    episode = data.rollout(env, envs.oracle("obstacle"), seed=4)
    assert episode.succeeded and len(episode) == 30
    np.testing.assert_array_equal(episode.images[0], env.reset(seed=4)[0])
    expected = -10 * np.mean((episode.state["agent"][1:] - episode.state["goal"][1:]) ** 2, axis=1)
    np.testing.assert_allclose(episode.rewards, expected, rtol=1e-6)


def test_parallel_collection_makes_the_serial_episodes(tmp_path):
    policy = envs.oracle("obstacle", noise=0.3)
    data.collect("obstacle", policy, 6, tmp_path / "serial", seed=7, image_size=32)
    data.collect("obstacle", policy, 6, tmp_path / "parallel", seed=7, image_size=32, workers=2)
    serial, parallel = data.load_episodes(tmp_path / "serial"), data.load_episodes(tmp_path / "parallel")
    assert len(parallel) == 6
    for a, b in zip(serial, parallel, strict=True):
        _assert_same(a, b)
    with pytest.raises(ValueError, match="workers"):
        data.collect("obstacle", policy, 6, tmp_path / "x", workers=0)


_KILLABLE = """
import sys, time
import latco.data as data, latco.envs as envs
from latco.data import rollout as _rollout

def slow(env, policy, seed):  # slow enough to be killed mid-collection
    time.sleep(0.15)
    return _rollout(env, policy, seed)

data.rollout = slow  # spawned workers import this module again: patch at import
if __name__ == "__main__":
    data.collect("obstacle", envs.oracle("obstacle", noise=0.3), 40, sys.argv[1], seed=3,
                 image_size=32, workers=2)
"""


def test_a_killed_parallel_collection_resumes_without_loss_or_duplicates(tmp_path):
    import signal
    import subprocess
    import sys
    import time

    script = tmp_path / "killable.py"
    script.write_text(_KILLABLE)
    out = tmp_path / "episodes"
    proc = subprocess.Popen([sys.executable, str(script), str(out)], start_new_session=True,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list(out.glob("ep_*.npz"))) < 5 and time.time() < deadline:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the whole group: the main process and its workers
    proc.wait()
    survived = sorted(out.glob("ep_*.npz"))
    assert 5 <= len(survived) < 40
    before = {p.name: p.stat().st_mtime_ns for p in survived}
    data.collect("obstacle", envs.oracle("obstacle", noise=0.3), 40, out, seed=3, image_size=32,
                 workers=2)
    episodes = data.load_episodes(out)
    assert [e.seed for e in episodes] == list(range(3, 43))  # every episode once, in order
    assert all(out.joinpath(n).stat().st_mtime_ns == t for n, t in before.items())  # kept
    assert not list(out.glob("*.tmp"))
    reference = data.collect("obstacle", envs.oracle("obstacle", noise=0.3), 40, tmp_path / "ref",
                             seed=3, image_size=32)
    for a, path in zip(episodes, reference, strict=True):
        _assert_same(a, data.load_episode(path))
