"""Obstacle: a 2-D point mass must reach a goal on the other side of a wall (paper §6.1).

The geometry is the authors' (their released code): arena [-1, 1]^2, position actuators (the action is
the target position, kp 100), physics step 0.01 s, 5 physics steps per action, a wall box
x in [0.2, 0.3], y in [-0.45, 0.45], start x in [-0.6, -0.4], y in [-0.1, 0.1], goal
(0.8, 0), reward -10 * mean((pos - goal)^2), success within 0.3 of the goal. Greedy descent
on the reward drives the agent into the wall: it has to go around.

Our choices: the agent is a disc of radius 0.1, drawn and colliding at the same size (the
authors drew a 0.1 marker around a 0.05 collision sphere; one size means pictures never
show the agent inside the wall) with the authors' mass. The top-down camera is
orthographic over [-1.1, 1.1]^2, so a pixel is a fixed patch of the arena at any image
size; the pale green disc is the success region, the dark green dot the goal.
"""

from __future__ import annotations

import mujoco  # latco.envs (imported first, as our package) has set MUJOCO_GL
import numpy as np

from latco.envs.base import LatcoEnv
from latco.envs.render import Renderer
from latco.envs.tasks import task_spec

GOAL = np.array([0.8, 0.0])
"""Goal position (fixed)."""
WALL = (0.2, 0.3, -0.45, 0.45)
"""Wall box: x_min, x_max, y_min, y_max."""
START_LOW, START_HIGH = np.array([-0.6, -0.1]), np.array([-0.4, 0.1])
"""Start positions are uniform in this box."""
SUCCESS_RADIUS = 0.3
"""Success: within this distance of the goal."""
AGENT_RADIUS = 0.1
"""Radius of the agent disc (collision and drawing)."""
FRAME_SKIP = 5
"""Physics steps (of 0.01 s) per action."""
VIEW_HALF_WIDTH = 1.1
"""The camera shows [-1.1, 1.1]^2 (the arena plus a border)."""

_XML = f"""
<mujoco model="latco_obstacle">
  <option timestep="0.01" gravity="0 0 0" integrator="Euler" iterations="100"/>
  <visual>
    <headlight ambient="0.55 0.55 0.55" diffuse="0.45 0.45 0.45" specular="0 0 0"/>
    <quality offsamples="0"/>
  </visual>
  <default>
    <geom contype="0" conaffinity="0"/>
  </default>
  <worldbody>
    <camera name="top" pos="0 0 1" orthographic="true" fovy="{2 * VIEW_HALF_WIDTH}"/>
    <geom name="border" type="plane" size="2 2 0.1" pos="0 0 -0.3" rgba="0.55 0.55 0.55 1"/>
    <geom name="arena" type="plane" size="1 1 0.1" pos="0 0 -0.2" rgba="0.93 0.93 0.93 1"/>
    <site name="success_region" type="cylinder" size="{SUCCESS_RADIUS} 0.01"
          pos="{GOAL[0]} {GOAL[1]} -0.15" rgba="0.7 0.9 0.7 1"/>
    <site name="goal" type="cylinder" size="0.07 0.01" pos="{GOAL[0]} {GOAL[1]} -0.12"
          rgba="0.05 0.55 0.05 1"/>
    <geom name="wall" type="box" contype="1" conaffinity="1" condim="1"
          pos="{(WALL[0] + WALL[1]) / 2} {(WALL[2] + WALL[3]) / 2} 0"
          size="{(WALL[1] - WALL[0]) / 2} {(WALL[3] - WALL[2]) / 2} 0.1" rgba="0.15 0.15 0.15 1"/>
    <body name="agent">
      <joint name="x" type="slide" axis="1 0 0" range="-1 1" limited="true"
             damping="10" armature="0.004"/>
      <joint name="y" type="slide" axis="0 1 0" range="-1 1" limited="true"
             damping="10" armature="0.004"/>
      <geom name="agent" type="sphere" size="{AGENT_RADIUS}" mass="0.5236" contype="1"
            conaffinity="1" condim="1" rgba="0.1 0.3 0.95 1"/>
    </body>
  </worldbody>
  <actuator>
    <position name="x" joint="x" kp="100" ctrlrange="-1 1"/>
    <position name="y" joint="y" kp="100" ctrlrange="-1 1"/>
  </actuator>
</mujoco>
"""


def obstacle_reward(pos: np.ndarray) -> float:
    """The authors' reward: -10 * mean((pos - goal)^2)."""
    return float(-10.0 * np.mean((np.asarray(pos) - GOAL) ** 2))


def wall_passage(positions: np.ndarray) -> str:
    """How an episode's agent positions (T, 2) met the wall: ``"above"``, ``"below"`` or ``"blocked"``.

    ``"blocked"``: the agent's centre ends left of the wall (an agent pressed against the wall's
    left face stops one radius short of it); otherwise the side of the wall it went around, read
    off its mean y over the steps its centre was within one agent radius of the wall's x extent
    (or, if it crossed that band between two steps, off the first step beyond it).
    """
    positions = np.asarray(positions, float)
    if positions.ndim != 2 or positions.shape[1] != 2 or len(positions) == 0:
        raise ValueError(f"positions must have shape (T, 2); got {positions.shape}")
    x_min, x_max = WALL[0] - AGENT_RADIUS, WALL[1] + AGENT_RADIUS
    if positions[-1, 0] < WALL[0]:
        return "blocked"
    band = positions[(positions[:, 0] >= x_min) & (positions[:, 0] <= x_max)]
    y = band[:, 1].mean() if len(band) else positions[np.argmax(positions[:, 0] > x_max), 1]
    return "above" if y > 0 else "below"


def world_to_pixel(xy: np.ndarray, image_size: int) -> np.ndarray:
    """(row, col) pixel coordinates of arena points `xy` (..., 2) in an Obstacle image."""
    xy = np.asarray(xy, dtype=np.float64)
    scale = image_size / (2 * VIEW_HALF_WIDTH)
    col = (xy[..., 0] + VIEW_HALF_WIDTH) * scale - 0.5
    row = (VIEW_HALF_WIDTH - xy[..., 1]) * scale - 0.5
    return np.stack([row, col], axis=-1)


class ObstacleEnv(LatcoEnv):
    """The Obstacle task as a gymnasium env (no TimeLimit: `make_env` adds it)."""

    def __init__(self, image_size: int = 64, seed: int | None = None, render: bool = True) -> None:
        super().__init__(task_spec("obstacle"), image_size, seed, render)
        self.model = mujoco.MjModel.from_xml_string(_XML)
        self.data = mujoco.MjData(self.model)
        if render:
            camera = mujoco.MjvCamera()
            camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
            camera.fixedcamid = self.model.camera("top").id
            self._renderer = Renderer(self.model, self.image_size, camera)

    def _reset_sim(self, rng: np.random.Generator) -> None:
        mujoco.mj_resetData(self.model, self.data)
        start = rng.uniform(START_LOW, START_HIGH)
        self.data.qpos[:] = start
        self.data.ctrl[:] = start  # hold still until the first action
        mujoco.mj_forward(self.model, self.data)

    def _substep(self, action: np.ndarray) -> tuple[float, bool]:
        self.data.ctrl[:] = action
        mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        pos = self.data.qpos[:2]
        return obstacle_reward(pos), bool(np.linalg.norm(pos - GOAL) < SUCCESS_RADIUS)

    def _state(self) -> dict[str, np.ndarray]:
        return {"agent": self.data.qpos[:2].copy(), "goal": GOAL.copy()}
