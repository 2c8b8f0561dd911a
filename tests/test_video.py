"""GIF videos: what is written reads back with Pillow as the same frames, in order."""

import numpy as np
import pytest
from PIL import Image

from latco.paper import video


def solid(colors, size=8):
    """Frames of one color each, (N, size, size, 3) uint8."""
    return np.array([np.full((size, size, 3), c, np.uint8) for c in colors])


def test_gif_reads_back_frame_by_frame(tmp_path):
    colors = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0)]
    path = video.save_gif(solid(colors), tmp_path / "v.gif", fps=4)
    with Image.open(path) as gif:
        assert gif.n_frames == 4 and gif.size == (8, 8) and gif.info["duration"] == 250
        for i, c in enumerate(colors):
            gif.seek(i)
            assert np.abs(np.asarray(gif.convert("RGB"))[4, 4].astype(int) - c).max() <= 8
    assert not list(tmp_path.glob(".*tmp"))


def test_panels_place_each_video_upscaled_under_its_label_and_hold_the_last_frame():
    a = solid([(255, 0, 0), (0, 255, 0), (0, 0, 255)], size=4)
    b = solid([(10, 20, 30)], size=4)
    out = video.panels([a, b], ["a", "b"], scale=2)
    assert out.shape == (3, video.LABEL_HEIGHT + 8, 8 + 2 + 8, 3)
    body = out[:, video.LABEL_HEIGHT:]
    np.testing.assert_array_equal(body[:, :, :8], a.repeat(2, 1).repeat(2, 2))
    np.testing.assert_array_equal(body[:, :, 10:], np.broadcast_to(b.repeat(2, 1).repeat(2, 2), (3, 8, 8, 3)))
    assert (out[0, :video.LABEL_HEIGHT] < 255).any()  # a label was drawn


def test_plan_over_optimization_shows_every_iteration_per_plan_step():
    decoded = np.zeros((3, 5, 4, 4, 3), np.uint8)
    decoded[1] = 200  # the second iteration's plan is bright
    out = video.plan_over_optimization(decoded, [0, 10, 20], scale=1)
    assert out.shape[0] == 5 and out.shape[2] == 3 * 4 + 2 * 2
    assert (out[:, video.LABEL_HEIGHT:, 6:10] == 200).all() and (out[:, video.LABEL_HEIGHT:, :4] == 0).all()


def test_bad_frames_name_the_problem(tmp_path):
    with pytest.raises(ValueError, match="uint8 frames of shape"):
        video.save_gif(np.zeros((2, 4, 4, 3), np.float32), tmp_path / "v.gif")
    with pytest.raises(ValueError, match="same frame size"):
        video.panels([solid([(0, 0, 0)], 4), solid([(0, 0, 0)], 6)], ["a", "b"])
    with pytest.raises(ValueError, match="K = len"):
        video.plan_over_optimization(np.zeros((2, 5, 4, 4, 3), np.uint8), [0])
