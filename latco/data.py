"""Episodes: roll them out, store them one compressed `.npz` per episode, load them back.

A file is written to a temporary name in the same directory and renamed into place, so
a crash never leaves a half-written episode under an episode name; `collect` skips
episodes already on disk, so an interrupted collection resumes where it stopped.
Episode i of a collection is `ep_{i:06d}.npz`, made with seed `seed + i` (env reset and
policy noise), so it is the same whether made in one run, after a resume, or by any of
several worker processes (`collect(..., workers=2)`: one env per process, since Sawyer
collection is bound by rendering on one core).
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from latco.envs import Policy, make_env, task_spec

_REQUIRED = ("images", "actions", "rewards", "success", "task", "seed")


@dataclass
class Episode:
    """One episode of T agent steps.

    `images[t]` is the observation the t-th action was chosen from; `images[T]` the last.
    `state` holds the true positions (`agent`, `goal`, `puck` for push), one per image,
    for evaluation and figures only.
    """

    images: np.ndarray
    """(T+1, S, S, 3) uint8."""
    actions: np.ndarray
    """(T, A) float32, as the policy gave them (the env clips to [-1, 1])."""
    rewards: np.ndarray
    """(T,) float32."""
    success: np.ndarray
    """(T,) bool: `info['success']` after each action."""
    state: dict[str, np.ndarray] = field(default_factory=dict)
    """name -> (T+1, D) float64."""
    task: str = ""
    """Task name."""
    seed: int = -1
    """Seed the episode was reset with (-1: unknown)."""

    def __post_init__(self) -> None:
        self.images = np.asarray(self.images)
        self.actions = np.asarray(self.actions, dtype=np.float32)
        self.rewards = np.asarray(self.rewards, dtype=np.float32)
        self.success = np.asarray(self.success, dtype=bool)
        self.state = {k: np.asarray(v, dtype=np.float64) for k, v in self.state.items()}
        steps = len(self.actions)
        problems = []
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            problems.append(
                f"images must be (T+1, S, S, 3) uint8, got {self.images.shape} {self.images.dtype}"
            )
        if len(self.images) != steps + 1:
            problems.append(f"{len(self.images)} images for {steps} actions (need T+1 for T)")
        if self.actions.ndim != 2:
            problems.append(f"actions must be (T, A), got {self.actions.shape}")
        if self.rewards.shape != (steps,) or self.success.shape != (steps,):
            problems.append(
                f"rewards {self.rewards.shape} and success {self.success.shape} must be ({steps},)"
            )
        for name, value in self.state.items():
            if len(value) != steps + 1:
                problems.append(f"state[{name!r}] has {len(value)} rows, need {steps + 1}")
        if problems:
            raise ValueError("inconsistent episode: " + "; ".join(problems))

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def succeeded(self) -> bool:
        """Whether any step succeeded (the paper's per-episode success)."""
        return bool(self.success.any())


def rollout(env: Any, policy: Policy, seed: int, max_steps: int | None = None) -> Episode:
    """Run `policy` in `env` from `reset(seed=seed)` until the episode ends (or `max_steps`).

    If the policy has `reset(seed)` it is called first (e.g. to reseed action noise). The one
    environment loop of the package: data collection, MPC (`latco.agent.MPCPolicy`) and the
    oracles' success rates all run through it.
    """
    if hasattr(policy, "reset"):
        policy.reset(seed)
    obs, info = env.reset(seed=seed)
    images, states = [obs], [info["state"]]
    actions, rewards, success = [], [], []
    done = False
    while not done and (max_steps is None or len(actions) < max_steps):
        action = np.asarray(policy(obs, info), dtype=np.float32)
        obs, reward, terminated, truncated, info = env.step(action)
        images.append(obs)
        states.append(info["state"])
        actions.append(action)
        rewards.append(reward)
        success.append(info["success"])
        done = terminated or truncated
    state = {key: np.stack([s[key] for s in states]) for key in states[0]}
    task = getattr(getattr(env.unwrapped, "task", None), "name", "")
    return Episode(np.stack(images), np.stack(actions), rewards, success, state, task, seed)


def save_episode(path: str | os.PathLike, episode: Episode) -> Path:
    """Write `episode` to `path` (.npz, compressed) atomically: temp file, fsync, rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {
        "images": episode.images,
        "actions": episode.actions,
        "rewards": episode.rewards,
        "success": episode.success,
        "task": np.array(episode.task),
        "seed": np.array(episode.seed),
        **{f"state_{name}": value for name, value in episode.state.items()},
    }
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.stem + ".", suffix=".npz.tmp")
    try:
        with os.fdopen(fd, "wb") as file:
            np.savez_compressed(file, **arrays)
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_episode(path: str | os.PathLike) -> Episode:
    """Read one episode file; ValueError naming the file if it is unreadable or incomplete."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [key for key in _REQUIRED if key not in npz.files]
            if missing:
                raise ValueError(f"missing arrays {missing}")
            state = {k.removeprefix("state_"): npz[k] for k in npz.files if k.startswith("state_")}
            return Episode(
                npz["images"],
                npz["actions"],
                npz["rewards"],
                npz["success"],
                state,
                str(npz["task"]),
                int(npz["seed"]),
            )
    except Exception as error:
        raise ValueError(
            f"cannot read episode file {path}: {error}. Delete it and run collect() again "
            "to regenerate it."
        ) from error


def episode_path(out_dir: str | os.PathLike, index: int) -> Path:
    """Where episode `index` of a collection lives: `out_dir/ep_{index:06d}.npz`."""
    return Path(out_dir) / f"ep_{index:06d}.npz"


def load_episodes(directory: str | os.PathLike) -> list[Episode]:
    """All episodes `ep_*.npz` in `directory`, in index order; errors name the bad file."""
    directory = Path(directory)
    paths = sorted(directory.glob("ep_*.npz"))
    if not paths:
        raise FileNotFoundError(
            f"no episode files (ep_*.npz) in {directory}; make them with latco.data.collect()"
        )
    return [load_episode(path) for path in paths]


def collect(
    task: str,
    policy: Policy,
    episodes: int,
    out_dir: str | os.PathLike,
    seed: int = 0,
    image_size: int = 64,
    workers: int = 1,
) -> list[Path]:
    """Roll out `policy` for `episodes` episodes of `task` into `out_dir`; return their paths.

    Episodes already on disk are kept (resume); episode i uses seed `seed + i`. One collection
    per directory at a time: leftover temporary files of an interrupted run are removed.
    `workers` > 1 rolls episodes out in that many processes, each with its own env and a copy of
    `policy` (which must be picklable and reseeded by `reset(seed)`); the files are the same as
    with one worker.
    """
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    spec = task_spec(task)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for stale in out_dir.glob("ep_*.npz.tmp"):
        stale.unlink()
    paths = [episode_path(out_dir, i) for i in range(episodes)]
    todo = [i for i, path in enumerate(paths) if not path.exists()]
    done = [path for path in paths if path.exists()]
    if done:
        _check_same_collection(done[0], spec.name, image_size)
    if not todo:
        return paths
    workers = min(workers, len(todo))
    with tqdm(total=episodes, initial=len(done), desc=f"collect {task}", unit="ep") as bar:
        if workers == 1:
            _collect_serial(spec.name, policy, todo, paths, seed, image_size, bar.update)
        else:
            _collect_parallel(spec.name, policy, todo, paths, seed, image_size, workers, bar.update)
    return paths


def _collect_serial(
    task: str, policy: Policy, todo: list[int], paths: list[Path], seed: int, image_size: int,
    progress: Any = None,
) -> None:
    """Episodes `todo` (indices into `paths`) in this process, one env, saved as they finish."""
    env = make_env(task, seed=seed, image_size=image_size)
    try:
        for i in todo:
            save_episode(paths[i], rollout(env, policy, seed + i))
            if progress is not None:
                progress()
    finally:
        env.close()


def _collect_parallel(
    task: str, policy: Policy, todo: list[int], paths: list[Path], seed: int, image_size: int,
    workers: int, progress: Any,
) -> None:
    """Split `todo` into short consecutive chunks and roll them out in `workers` processes.

    Processes are spawned, not forked (a forked OpenGL or torch state is unsafe). Each chunk
    saves its episodes one by one, so a kill loses at most the episodes being rolled out.
    """
    chunk = max(1, min(8, len(todo) // (4 * workers)))  # short chunks: a live progress bar
    chunks = [todo[k : k + chunk] for k in range(0, len(todo), chunk)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        futures = {
            pool.submit(_collect_serial, task, policy, part, paths, seed, image_size): len(part)
            for part in chunks
        }
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                if (error := future.exception()) is not None:
                    for other in pending:
                        other.cancel()
                    raise error
                progress(futures[future])


def _check_same_collection(path: Path, task: str, image_size: int) -> None:
    """Refuse to resume into a directory that holds another task's or size's episodes."""
    with np.load(path, allow_pickle=False) as npz:
        found_task, found_size = str(npz["task"]), npz["images"].shape[1]
    if (found_task, found_size) != (task, image_size):
        raise ValueError(
            f"{path.parent} already holds {found_task!r} episodes at {found_size} px, not "
            f"{task!r} at {image_size} px; collect into another directory"
        )
