"""Choose MuJoCo's headless OpenGL backend before `mujoco` is imported.

MuJoCo reads `MUJOCO_GL` once, when it is imported; left unset it falls back to GLFW,
which needs a display and fails on a headless machine. Importing this module picks a
backend: a value the user set is kept, else EGL when an EGL device can be initialised,
else OSMesa when its library loads. Every module of `latco.envs` that imports mujoco
imports this one first.

`python -m latco.envs.gl` renders one frame and prints the backend (exit 0), or prints
the `apt-get install` line that fixes the machine (exit 1). The Makefile runs it before
the tests.
"""

from __future__ import annotations

import ctypes
import os
import sys
import warnings

# `python -m latco.envs.gl` imports the package, and so this module, before running it as
# a script; runpy then warns that it is already imported. Harmless: importing it only sets
# MUJOCO_GL, idempotently.
warnings.filterwarnings("ignore", r"'latco\.envs\.gl' found in sys\.modules", RuntimeWarning)

BACKENDS = ("egl", "osmesa")
"""Headless backends, in order of preference (both give pixel-identical frames)."""

APT_PACKAGES = {"egl": "libegl1 libegl-mesa0 libgl1-mesa-dri", "osmesa": "libosmesa6"}
"""Debian packages that provide each backend."""

_EGL_PLATFORM_DEVICE_EXT = 0x313F


class GLBackendError(RuntimeError):
    """No headless OpenGL backend works on this machine."""


def install_hint(backend: str | None = None) -> str:
    """The shell line(s) that install a working backend on Debian/Ubuntu (`backend`'s, if given)."""
    if backend in APT_PACKAGES:
        return f"sudo apt-get update && sudo apt-get install -y {APT_PACKAGES[backend]}"
    return (
        f"sudo apt-get update && sudo apt-get install -y {APT_PACKAGES['egl']}   (EGL)\n"
        f"or: sudo apt-get install -y {APT_PACKAGES['osmesa']}   (OSMesa, software only)"
    )


def _egl_works() -> bool:
    """Whether an EGL device display can be initialised, the way MuJoCo's EGL context does it.

    Loading libEGL alone is not enough: without a vendor driver (libegl-mesa0) the
    library loads but no display initialises.
    """
    try:
        egl = ctypes.CDLL("libEGL.so.1")
    except OSError:
        return False
    egl.eglGetProcAddress.restype = ctypes.c_void_p
    egl.eglGetProcAddress.argtypes = [ctypes.c_char_p]
    egl.eglInitialize.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    egl.eglInitialize.restype = ctypes.c_uint
    egl.eglTerminate.argtypes = [ctypes.c_void_p]
    query_address = egl.eglGetProcAddress(b"eglQueryDevicesEXT")
    display_address = egl.eglGetProcAddress(b"eglGetPlatformDisplayEXT")
    if not query_address or not display_address:
        return False
    query_devices = ctypes.CFUNCTYPE(
        ctypes.c_uint, ctypes.c_int, ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_int)
    )(query_address)
    get_display = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p)(
        display_address
    )
    devices = (ctypes.c_void_p * 16)()
    count = ctypes.c_int(0)
    if not query_devices(16, devices, ctypes.byref(count)):
        return False
    for device in devices[: count.value]:
        display = get_display(_EGL_PLATFORM_DEVICE_EXT, device, None)
        if display and egl.eglInitialize(display, None, None):
            egl.eglTerminate(display)
            return True
    return False


def _osmesa_works() -> bool:
    """Whether the OSMesa library loads."""
    for name in ("libOSMesa.so.8", "libOSMesa.so.6", "libOSMesa.so"):
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


_PROBES = {"egl": _egl_works, "osmesa": _osmesa_works}


def choose_backend(environ: dict[str, str] | None = None) -> str | None:
    """Set `MUJOCO_GL` in `environ` (default `os.environ`) and return it.

    A value already set is kept (the user knows their machine); else the first backend
    of `BACKENDS` that works. Returns None when none works: `require_backend` then says
    what to install. Must run before `import mujoco` to have any effect.
    """
    environ = os.environ if environ is None else environ
    if environ.get("MUJOCO_GL"):
        return environ["MUJOCO_GL"]
    for backend in BACKENDS:
        if _PROBES[backend]():
            environ["MUJOCO_GL"] = backend
            return backend
    return None


BACKEND = choose_backend()
"""The backend chosen when latco.envs was first imported (None: no headless backend works)."""


def require_backend() -> str:
    """Return the backend, or raise `GLBackendError` saying what to install or change."""
    if BACKEND is None:
        raise GLBackendError(
            "no headless OpenGL backend for MuJoCo works on this machine (tried EGL, then "
            "OSMesa). Install one:\n" + install_hint()
        )
    return BACKEND


def context_error(error: Exception, context_module: str) -> GLBackendError:
    """Explain a failure to create an OpenGL context, with what to do about it.

    `context_module` is the module of the `mujoco.GLContext` that was used: mujoco picks
    it from MUJOCO_GL once, at import, so `mujoco.glfw` here means mujoco was imported
    before this module chose a headless backend.
    """
    if BACKEND is not None and context_module != f"mujoco.{BACKEND}":
        advice = (
            f"mujoco was imported before latco.envs chose MUJOCO_GL={BACKEND} (it uses "
            f"{context_module}): import latco.envs.gl before mujoco or metaworld, or set "
            f"MUJOCO_GL={BACKEND} in the environment before starting Python"
        )
    else:
        advice = f"MUJOCO_GL={BACKEND} failed; install its libraries:\n" + install_hint(BACKEND)
    return GLBackendError(f"could not create an OpenGL context for MuJoCo ({error!r}); {advice}")


def check() -> int:
    """Render one small frame; print the backend (0) or what to install (1)."""
    try:
        backend = require_backend()
        import mujoco  # noqa: F401  (imported here, after MUJOCO_GL is set)

        from latco.envs.render import Renderer

        model = mujoco.MjModel.from_xml_string(
            '<mujoco><worldbody><light pos="0 0 1"/>'
            '<geom type="box" size=".1 .1 .1" rgba="1 0 0 1"/></worldbody></mujoco>'
        )
        camera = mujoco.MjvCamera()
        camera.lookat[:] = 0
        camera.distance = 1.0
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        renderer = Renderer(model, 16, camera)
        frame = renderer.render(data)
        renderer.close()
        if frame.max() == frame.min():
            raise GLBackendError("the test frame came back blank")
    except Exception as error:  # noqa: BLE001 - any failure here means "rendering does not work"
        print(f"MuJoCo headless rendering does not work: {error}")
        print("Install a backend:\n" + install_hint(BACKEND))
        return 1
    print(f"MuJoCo headless rendering works: MUJOCO_GL={backend}")
    return 0


if __name__ == "__main__":
    sys.exit(check())
