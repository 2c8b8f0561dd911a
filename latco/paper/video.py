"""Short looping videos (GIF) where motion matters: a plan as it is optimized, planned vs executed.

GIFs need nothing beyond Pillow (no ffmpeg), play inline in notebooks and on GitHub, and are
small at these image sizes. Frames are (N, H, W, 3) uint8 arrays, as ``figures.decode`` returns.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

LABEL_HEIGHT = 12
"""Pixels of the label bar above each panel (Pillow's built-in bitmap font is 11 px high)."""


def _check_frames(frames: np.ndarray, name: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 frames of shape (N, H, W, 3); got {frames.dtype} "
                         f"{frames.shape} (decode features with latco.paper.figures.decode first)")
    if len(frames) == 0:
        raise ValueError(f"{name} has no frames")
    return frames


def panels(videos: Sequence[np.ndarray], labels: Sequence[str], scale: int | None = None) -> np.ndarray:
    """One video of several side by side: frame t shows frame t of each input (the last frame
    held once a shorter input ends), each upscaled ``scale`` times (default: to about 96 px) under
    its label."""
    if len(videos) != len(labels) or not videos:
        raise ValueError(f"need one label per video; got {len(videos)} videos, {len(labels)} labels")
    videos = [_check_frames(v, f"videos[{i}]") for i, v in enumerate(videos)]
    shapes = {v.shape[1:] for v in videos}
    if len(shapes) != 1:
        raise ValueError(f"all videos need the same frame size; got {sorted(shapes)}")
    h, w, _ = videos[0].shape[1:]
    scale = scale or max(1, 96 // h)
    ph, pw, gap = h * scale, w * scale, 2
    length = max(len(v) for v in videos)
    out = np.full((length, LABEL_HEIGHT + ph, len(videos) * (pw + gap) - gap, 3), 255, np.uint8)
    for i, v in enumerate(videos):
        big = v.repeat(scale, axis=1).repeat(scale, axis=2)
        x = i * (pw + gap)
        out[:, LABEL_HEIGHT:, x:x + pw] = big[np.minimum(np.arange(length), len(v) - 1)]
    for t in range(length):  # labels: Pillow draws text; one bar per frame
        image = Image.fromarray(out[t])
        draw = ImageDraw.Draw(image)
        for i, label in enumerate(labels):
            draw.text((i * (pw + gap) + 1, 0), label, fill=(0, 0, 0))
        out[t] = np.asarray(image)
    return out


def plan_over_optimization(decoded: np.ndarray, iterations: Sequence[int],
                           scale: int | None = None) -> np.ndarray:
    """Fig. 1/6 as a video: ``decoded`` (K, T, H, W, 3) is the plan decoded after each of K
    recorded iterations; frame t shows plan step t at every iteration side by side, so one sees
    how the planned motion changes while the optimizer runs."""
    decoded = np.asarray(decoded)
    if decoded.ndim != 5 or len(decoded) != len(iterations):
        raise ValueError(f"decoded must be (K, T, H, W, 3) with K = len(iterations) = {len(iterations)}; "
                         f"got shape {decoded.shape}")
    return panels(list(decoded), [f"iter {int(k)}" for k in iterations], scale)


def save_gif(frames: np.ndarray, path: str | Path, fps: float = 5.0) -> Path:
    """Write ``frames`` as a looping GIF, atomically (a temporary file renamed), and return it."""
    frames = _check_frames(frames, "frames")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    # one palette for the whole clip, no dithering: dithered noise defeats GIF's compression
    # (measured: 3-5x larger files) and flickers from frame to frame
    sample = frames[:: max(1, len(frames) // 16)].reshape(-1, frames.shape[2], 3)
    palette = Image.fromarray(sample).quantize(colors=255, method=Image.Quantize.MEDIANCUT)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(tmp, format="GIF", save_all=True, append_images=images[1:],
                   duration=int(round(1000 / fps)), loop=0, optimize=False)
    os.replace(tmp, path)
    return path
