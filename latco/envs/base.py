"""What every latco env shares: image observations, action checks, action repeat, seeding.

Subclasses say how to reset and advance their simulator and what the true state is;
this class turns that into the gymnasium interface of the contract:
observation = uint8 image `(size, size, 3)` only; `info` = `success` (bool) and `state`
(dict of float arrays: `agent`, `goal`, and `puck` for push), for evaluation and figures.
"""

from __future__ import annotations

from typing import Any

import gymnasium
import numpy as np

from latco.envs.tasks import TaskSpec


def check_action(action: Any, size: int, task: str) -> np.ndarray:
    """`action` as a float64 array clipped to [-1, 1]; ValueError if its shape is wrong or NaN."""
    array = np.asarray(action, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(
            f"{task}: action must have shape ({size},), got shape {array.shape}; "
            "pass one action per step (not a batch or a sequence)"
        )
    if not np.all(np.isfinite(array)):
        raise ValueError(
            f"{task}: action contains NaN or inf: {array}; a planner must replace "
            "non-finite actions (e.g. by zeros) before stepping"
        )
    return np.clip(array, -1.0, 1.0)


class LatcoEnv(gymnasium.Env):
    """Base class: image observations, checked and clipped actions, action repeat.

    Subclasses implement `_reset_sim(rng)`, `_substep(action) -> (reward, success)` and
    `_state() -> dict`, and set `self._renderer` (a `latco.envs.render.Renderer` drawing
    `self.data`) unless `render=False`. With `render=False` no OpenGL
    context is made and observations are black images: only for oracle rollouts in
    tests and success-rate checks, never for agents.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, spec: TaskSpec, image_size: int, seed: int | None, render: bool) -> None:
        if not isinstance(image_size, int | np.integer) or image_size < 8:
            raise ValueError(f"image_size must be an integer >= 8, got {image_size!r}")
        self.task = spec
        self.image_size = int(image_size)
        self.render_mode = "rgb_array"
        self._render = render
        self.observation_space = gymnasium.spaces.Box(
            0, 255, (self.image_size, self.image_size, 3), dtype=np.uint8
        )
        self.action_space = gymnasium.spaces.Box(-1.0, 1.0, (spec.action_size,), dtype=np.float32)
        self._np_random, _ = gymnasium.utils.seeding.np_random(seed)
        self._frame = np.zeros((self.image_size, self.image_size, 3), dtype=np.uint8)
        self._success = False
        self._renderer: Any = None

    # --- what subclasses provide -------------------------------------------------------
    def _reset_sim(self, rng: np.random.Generator) -> None:
        raise NotImplementedError

    def _substep(self, action: np.ndarray) -> tuple[float, bool]:
        raise NotImplementedError

    def _state(self) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def _render_frame(self) -> np.ndarray:
        return self._renderer.render(self.data)

    def close(self) -> None:
        """Release the OpenGL context (one per env; see `latco.envs.render`)."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    def _extra_info(self) -> dict[str, Any]:
        return {}

    # --- gymnasium interface -----------------------------------------------------------
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Start an episode; `seed` reseeds the start-state sampler (same seed, same start)."""
        super().reset(seed=seed)
        self._reset_sim(self.np_random)
        self._success = False
        return self._observe(), self._info()

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        """Apply `action` for `action_repeat` substeps. Never terminates (TimeLimit truncates)."""
        action = check_action(action, self.task.action_size, self.task.name)
        total = 0.0
        for _ in range(self.task.action_repeat):
            reward, self._success = self._substep(action)
            total += reward
        # sparse: 1 exactly when the last substep succeeded; dense: summed over substeps
        reward = float(self._success) if self.task.sparse else total
        return self._observe(), reward, False, False, self._info()

    def render(self) -> np.ndarray:
        """The last observation (rgb_array)."""
        return self._frame.copy()

    # --- helpers -----------------------------------------------------------------------
    def _observe(self) -> np.ndarray:
        if self._render:
            frame = self._render_frame()
            if frame.min() == frame.max():
                raise RuntimeError(
                    f"{self.task.name}: rendered a blank frame; an OpenGL context was lost "
                    "(was an env closed from another thread?). Make a new env."
                )
            self._frame = frame
        return self._frame.copy()

    def _info(self) -> dict[str, Any]:
        state = {key: np.array(value, dtype=np.float64) for key, value in self._state().items()}
        return {"success": bool(self._success), "state": state, **self._extra_info()}
