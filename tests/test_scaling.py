"""latco.scaling: one resumable run on the smoke profile, the data recipe, and the figure."""

from __future__ import annotations

import pandas as pd

from latco import scaling
from latco.config import get_profile


def test_scaling_run_shares_data_across_sizes_and_resumes(tmp_path):
    smoke = get_profile("smoke")
    recipe = scaling.data_recipe(smoke, "obstacle", 300)
    assert (recipe.episodes, recipe.random_episodes, recipe.greedy_episodes) == (6, 2, 2)
    small = scaling.scaling_run("obstacle", smoke, 150, tmp_path, planners=("gd",), starts=1)
    large = scaling.scaling_run("obstacle", smoke, 300, tmp_path, planners=("gd",), starts=1)
    assert list(small["steps"]) == [150] and list(large["steps"]) == [300]
    assert len(list((tmp_path / "obstacle" / "data" / "train").glob("ep_*.npz"))) == 6  # one collection
    again = scaling.scaling_run("obstacle", smoke, 150, tmp_path, planners=("gd",), starts=1)
    pd.testing.assert_frame_equal(again, small)  # resumed from disk, nothing re-planned
    table = scaling.collect_summaries(tmp_path)
    assert set(table["steps"]) == {150, 300} and (table["reward_scale"] == 1.0).all()
    fig = scaling.scaling_figure(table)
    assert len(fig.axes) == 2
