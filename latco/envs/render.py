"""A small offscreen MuJoCo renderer that owns its OpenGL context for the life of an env.

Black frames were seen once an env was closed while another lived (Meta-World's
gymnasium renderer). Here every frame first makes its own context current, and closing
frees the render context inside its own context before freeing that context, so envs can
be made and closed in any order (tests/test_envs.py checks it). Renderers still open at
exit are closed before MuJoCo's exit hook tears EGL down, so no EGLError is printed.

Speed (measured): multisampling off (`offsamples = 0`, set before the context exists) and
no shadows or reflections bring a 64 px Meta-World frame from ~150 ms to ~10 ms on CPU.
"""

from __future__ import annotations

import atexit
import weakref
from collections.abc import Callable

import mujoco  # latco.envs (imported first, as our package) has set MUJOCO_GL
import numpy as np

from latco.envs import gl

_LIVE: weakref.WeakSet[Renderer] = weakref.WeakSet()
_atexit_registered = False


def _close_all() -> None:
    """Close live renderers at exit, before MuJoCo's own exit hook terminates the EGL display
    (atexit runs last-registered first); otherwise every context prints an EGLError."""
    for renderer in list(_LIVE):
        renderer.close()


def add_geom(
    scene: mujoco.MjvScene, kind: int, size: np.ndarray, pos: np.ndarray, rgba: np.ndarray
) -> None:
    """Append one axis-aligned drawing-only geom (a `mujoco.mjtGeom`) to `scene`."""
    if scene.ngeom >= scene.maxgeom:
        raise RuntimeError(f"the scene holds at most {scene.maxgeom} geoms; no room to draw one more")
    mujoco.mjv_initGeom(
        scene.geoms[scene.ngeom],
        kind,
        np.asarray(size, np.float64),
        np.asarray(pos, np.float64),
        np.eye(3).ravel(),
        np.asarray(rgba, np.float32),
    )
    scene.ngeom += 1


class Renderer:
    """Render square RGB frames of one MuJoCo model from one camera.

    `camera` is a `mujoco.MjvCamera` (free or fixed); the env may move it between frames.
    `decorate(scene, data)`, if given, adds drawing-only geoms to each frame's scene (e.g. with
    `add_geom`) after MuJoCo has filled it: they are drawn, depth-tested, and never simulated.
    """

    def __init__(
        self,
        model: mujoco.MjModel,
        size: int,
        camera: mujoco.MjvCamera,
        decorate: Callable[[mujoco.MjvScene, mujoco.MjData], None] | None = None,
    ) -> None:
        gl.require_backend()
        self.model = model
        self.size = size
        self.camera = camera
        self.decorate = decorate
        model.vis.quality.offsamples = 0
        model.vis.global_.offwidth = max(model.vis.global_.offwidth, size)
        model.vis.global_.offheight = max(model.vis.global_.offheight, size)
        self._gl = None
        try:
            self._gl = mujoco.GLContext(size, size)
            self._gl.make_current()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_50)
        except Exception as error:
            if self._gl is not None:
                self._gl.free()
                self._gl = None
            raise gl.context_error(error, mujoco.GLContext.__module__) from error
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        global _atexit_registered
        if not _atexit_registered:  # after the first context: MuJoCo registered its hook then
            atexit.register(_close_all)
            _atexit_registered = True
        _LIVE.add(self)
        self._scene = mujoco.MjvScene(model, maxgeom=2000)
        self._scene.flags[mujoco.mjtRndFlag.mjRND_SHADOW] = 0
        self._scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._rect = mujoco.MjrRect(0, 0, size, size)
        self._pixels = np.empty((size, size, 3), dtype=np.uint8)

    def render(self, data: mujoco.MjData) -> np.ndarray:
        """The current frame, `(size, size, 3)` uint8, top row first (a new array)."""
        if self._gl is None:
            raise RuntimeError("this renderer was closed; make a new env to render again")
        self._gl.make_current()
        mujoco.mjv_updateScene(
            self.model,
            data,
            self._option,
            self._perturb,
            self.camera,
            mujoco.mjtCatBit.mjCAT_ALL,
            self._scene,
        )
        if self.decorate is not None:
            self.decorate(self._scene, data)
        mujoco.mjr_render(self._rect, self._scene, self._context)
        mujoco.mjr_readPixels(self._pixels, None, self._rect, self._context)
        return self._pixels[::-1].copy()  # OpenGL's first row is the bottom one

    def close(self) -> None:
        """Free the render context inside our own OpenGL context, then the context."""
        context, self._gl = self._gl, None
        if context is None:
            return
        try:
            context.make_current()
            self._context.free()
        finally:
            context.free()

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown may have torn GL down already
            pass
