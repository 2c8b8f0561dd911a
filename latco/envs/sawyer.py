"""Sawyer Reach and Push: Meta-World v3 (`reach-v3`, `push-v3`) with the paper's settings.

As the authors set them up (github zchuning/latco, `envs/sparse_metaworld.py`):

- the goal is fixed at Meta-World's default (Reach (-0.1, 0.8, 0.2), Push (0.1, 0.8)),
- Reach: the hand starts uniformly anywhere in Meta-World's hand box
  x in [-0.5, 0.5], y in [0.4, 1.0], z in [0.05, 0.5];
- Push: the puck starts uniformly in x in [-0.2, 0.4], y in [0.6, 0.9], the hand above it;
- reward is sparse, 1 exactly when Meta-World's `success` holds after the action
  (Reach: hand within 0.05 m of the goal; Push: puck within 0.05 m);
- action repeat 1 (their `config.yaml`), Meta-World's 5 physics substeps per action.

Where we differ, and why (measured with Meta-World's scripted expert, noise 0):

- a start within 0.15 m (horizontally) of the goal is redrawn, Meta-World's own rule for
  object and goal: no episode starts solved, and Meta-World's reset would otherwise loop
  forever on such a frozen start;
- Push: pucks farther than 0.83 m from the robot's base are redrawn: in MuJoCo 3 /
  Meta-World v3 the hand cannot get down to the table there (the far corners of the
  authors' box), and every failure of the expert over the full box was such a puck;
- Push: the hand starts 0.10 m above the table, not the authors' 0.05 m: at 0.05 m the
  fingertips start on the table astride the puck and the expert got stuck (9/30
  successes, against 30/30 at 0.10 m).

We build the env class directly, mark its task as set, and choose each start ourselves
through Meta-World's frozen "random vector" (object + goal) and `hand_init_pos`.
Its full 39-d observation vector goes to `info['metaworld_obs']` for the scripted oracle
only; the agent's observation is the image.

Rendering (our own camera): the goal is drawn large and green, the success region
itself (a 0.05 m ball for Reach, a 0.05 m disc on the table for Push), and the puck is
yellow (the arm is red) and drawn at twice its radius: at 32 px the real 0.02 m puck covers
3-5 pixels, too few for a small model's decoder to bother drawing it (it drew none, and its
reward head was flat over puck positions). These change only colours and drawn sizes, never
physics: the drawn disc is a scene-only geom (`latco.envs.render.add_geom`).
"""

from __future__ import annotations

import warnings
from typing import Any

import mujoco  # latco.envs (imported first, as our package) has set MUJOCO_GL
import numpy as np

from latco.envs.base import LatcoEnv
from latco.envs.render import Renderer, add_geom
from latco.envs.tasks import task_spec

MIN_START_DISTANCE = 0.15
"""Starts closer than this (m, horizontally) to the goal are redrawn."""
PUCK_LOW, PUCK_HIGH = np.array([-0.2, 0.6]), np.array([0.4, 0.9])
"""Push: puck start range (x, y), the authors' values."""
PUCK_MAX_RADIUS = 0.83
"""Push: pucks farther than this (m) from the robot's base (0, 0) are redrawn: the hand
cannot get down to the table there (measured: > 1 cm short at y > 0.82 when x = 0)."""
PUCK_Z, HAND_Z_ABOVE_PUCK = 0.02, 0.1
"""Push: puck height on the table and the hand's start height above it."""
SUCCESS_RADIUS = 0.05
"""Meta-World's success distance (Reach: hand to goal; Push: puck to goal)."""

CAMERAS = {
    # Both look from the far side of the table toward the robot. Reach keeps the gripper in view
    # at all 8 corners of the hand start box (1 x 0.6 x 0.45 m) and no more: at 32 px the goal's
    # 0.05 m success ball covers 9 pixels (distance 1.6, elevation -35: 4 pixels, the whole table
    # and its legs in view). Push zooms onto the table area the puck can reach.
    "reach": dict(lookat=(0.0, 0.7, 0.27), distance=1.25, azimuth=270.0, elevation=-30.0),
    "push": dict(lookat=(0.1, 0.72, 0.0), distance=0.85, azimuth=270.0, elevation=-40.0),
}
"""Free-camera pose per task (MuJoCo `MjvCamera` fields; vertical field of view 45 deg)."""

GOAL_RGBA = (0.0, 0.8, 0.0, 0.8)
"""Goal drawing: green (the arm is red, the fingers cyan)."""
PUCK_RGBA = (1.0, 0.9, 0.0, 1.0)
"""Push puck drawing: yellow."""
PUCK_DRAW_RADIUS = 0.04
"""Push: the puck is drawn as a disc of this radius (m) around the real one (radius 0.02 m)."""


def _metaworld_class(task: str) -> type:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # gymnasium/glfw deprecation chatter on import
        if task == "reach":
            from metaworld.envs.sawyer_reach_v3 import SawyerReachEnvV3

            return SawyerReachEnvV3
        from metaworld.envs.sawyer_push_v3 import SawyerPushEnvV3

        return SawyerPushEnvV3


class SawyerEnv(LatcoEnv):
    """Sawyer Reach or Push (`task`) as a gymnasium env (no TimeLimit: `make_env` adds it)."""

    def __init__(
        self, task: str, image_size: int = 64, seed: int | None = None, render: bool = True
    ) -> None:
        if task not in ("reach", "push"):
            raise ValueError(f"SawyerEnv task must be 'reach' or 'push', got {task!r}")
        super().__init__(task_spec(task), image_size, seed, render)
        env = _metaworld_class(task)()
        env._set_task_called = True  # we set start and goal ourselves, below
        env._freeze_rand_vec = True
        env._partially_observable = False  # the oracle needs the goal in its vector
        env.__dict__.pop("sawyer_observation_space", None)  # cached for the old setting
        env.max_path_length = np.iinfo(np.int64).max  # our TimeLimit ends episodes
        self.metaworld_env = env
        self.model, self.data = env.model, env.data
        self.goal = env.goal.copy()
        self._metaworld_obs = np.zeros(39)
        self._goal_site = self.model.site("goal").id
        if render:
            self._style_for_rendering()
            camera = mujoco.MjvCamera()
            camera.type = mujoco.mjtCamera.mjCAMERA_FREE
            pose = CAMERAS[task]
            camera.lookat[:] = pose["lookat"]
            camera.distance = pose["distance"]
            camera.azimuth = pose["azimuth"]
            camera.elevation = pose["elevation"]
            self.model.vis.global_.fovy = 45.0
            decorate = self._draw_puck if task == "push" else None
            self._renderer = Renderer(self.model, self.image_size, camera, decorate)

    def _style_for_rendering(self) -> None:
        """Goal drawn as its success region in green; puck yellow. Drawing only, no physics."""
        model, goal = self.model, self._goal_site
        model.site_rgba[goal] = GOAL_RGBA
        if self.task.name == "reach":
            model.site_size[goal, 0] = SUCCESS_RADIUS
        else:
            model.site_type[goal] = mujoco.mjtGeom.mjGEOM_CYLINDER
            model.site_size[goal, :2] = (SUCCESS_RADIUS, 0.001)
            model.site_rgba[goal, 3] = 1.0
            puck = self._puck_geom = model.geom("objGeom").id
            model.geom_matid[puck] = -1
            model.geom_rgba[puck] = PUCK_RGBA

    def _draw_puck(self, scene: mujoco.MjvScene, data: mujoco.MjData) -> None:
        """The puck's disc, as tall as the puck and `PUCK_DRAW_RADIUS` wide (drawing only)."""
        puck = self._puck_geom
        size = (PUCK_DRAW_RADIUS, self.model.geom_size[puck, 1], 0.0)
        add_geom(scene, mujoco.mjtGeom.mjGEOM_CYLINDER, size, data.geom_xpos[puck], PUCK_RGBA)

    def _reset_sim(self, rng: np.random.Generator) -> None:
        env = self.metaworld_env
        if self.task.name == "reach":
            hand = self._draw_far_from_goal(rng, env.hand_low, env.hand_high, np.inf)
            puck = np.array(env.init_config["obj_init_pos"], dtype=np.float64)
        else:
            xy = self._draw_far_from_goal(rng, PUCK_LOW, PUCK_HIGH, PUCK_MAX_RADIUS)
            puck = np.array([xy[0], xy[1], PUCK_Z])
            hand = np.array([xy[0], xy[1], HAND_Z_ABOVE_PUCK])
        env.hand_init_pos = hand
        env._last_rand_vec = np.concatenate([puck, self.goal])
        self._metaworld_obs, _ = env.reset()
        self._place_goal_drawing()

    def _draw_far_from_goal(
        self, rng: np.random.Generator, low: np.ndarray, high: np.ndarray, max_radius: float
    ) -> np.ndarray:
        """Uniform in [low, high], redrawn while near the goal or out of the arm's reach."""
        while True:
            sample = rng.uniform(low, high)
            near_goal = np.linalg.norm(sample[:2] - self.goal[:2]) < MIN_START_DISTANCE
            if not near_goal and np.linalg.norm(sample[:2]) <= max_radius:
                return sample

    def _place_goal_drawing(self) -> None:
        if self._renderer is not None and self.task.name == "push":
            # the disc lies on the table (Meta-World puts the site at puck height)
            self.model.site_pos[self._goal_site, 2] = 0.001
            mujoco.mj_kinematics(self.model, self.data)

    def _substep(self, action: np.ndarray) -> tuple[float, bool]:
        self._metaworld_obs, _, _, _, info = self.metaworld_env.step(action.astype(np.float32))
        success = bool(info["success"])
        return float(success), success

    def _state(self) -> dict[str, np.ndarray]:
        env = self.metaworld_env
        state = {"agent": env.tcp_center.copy(), "goal": env._target_pos.copy()}
        if self.task.name == "push":
            state["puck"] = env._get_pos_objects().copy()
        return state

    def _extra_info(self) -> dict[str, Any]:
        return {"metaworld_obs": self._metaworld_obs.copy()}

    def place_puck(self, xy: np.ndarray) -> np.ndarray:
        """Put the puck at table position ``xy`` (m), at rest, hand unchanged; returns the new frame.

        For probing a model with observations it never collected (Fig. 8's reward heat map).
        """
        if self.task.name != "push":
            raise ValueError("place_puck needs the push task")
        self.metaworld_env._set_obj_xyz(np.array([xy[0], xy[1], PUCK_Z], dtype=np.float64))
        mujoco.mj_forward(self.model, self.data)
        return self._observe()

    def success_now(self) -> bool:
        """Meta-World's own success rule evaluated on the current state (e.g. after ``place_puck``)."""
        env = self.metaworld_env
        _, info = env.evaluate_state(env._get_obs(), np.zeros(self.task.action_size, np.float32))
        return bool(info["success"])

    def close(self) -> None:
        super().close()
        self.metaworld_env.close()
