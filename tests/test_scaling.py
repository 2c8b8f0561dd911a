"""latco.paper.scaling: one resumable run on the smoke profile, the data recipe, and the figure."""

from __future__ import annotations

import pandas as pd

from latco.paper import scaling
from latco.paper.profiles import get_profile


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


def test_longer_training_continues_the_shorter_run_exactly(tmp_path):
    """A --train-steps curve trains its longest run only: the 20-step run starts from the 10-step
    run's checkpoint and must end with the parameters of a separate uninterrupted 20-step run."""
    import torch

    from latco.train import CHECKPOINT, load_checkpoint

    smoke = get_profile("smoke")
    assert smoke.train.steps == 10
    chained, fresh = tmp_path / "chained", tmp_path / "fresh"
    scaling.scaling_run("obstacle", smoke, 150, chained, planners=("gd",), starts=1)
    long = scaling.scaling_run("obstacle", smoke, 150, chained, planners=("gd",), starts=1, train_steps=20)
    assert list(long["train_steps"]) == [20]
    metrics = pd.read_csv(chained / "obstacle" / "steps000150_balance0_train00020" / "model" / "metrics.csv")
    short = pd.read_csv(chained / "obstacle" / "steps000150_balance0" / "model" / "metrics.csv")
    assert list(metrics["step"]) == [5, 10, 15, 20]
    # the first 10 steps were not retrained: their rows, wall-clock speed included, were copied
    pd.testing.assert_frame_equal(metrics.iloc[:2], short)
    scaling.scaling_run("obstacle", smoke, 150, fresh, planners=("gd",), starts=1, train_steps=20)
    a = load_checkpoint(chained / "obstacle" / "steps000150_balance0_train00020" / "model" / CHECKPOINT)
    b = load_checkpoint(fresh / "obstacle" / "steps000150_balance0_train00020" / "model" / CHECKPOINT)
    assert a["step"] == b["step"] == 20
    for name, value in a["model"].items():
        torch.testing.assert_close(value, b["model"][name], rtol=0, atol=0, msg=name)
    table = scaling.collect_summaries(chained)
    assert sorted(table["train_steps"]) == [10, 20]
    fig = scaling.scaling_figure(table, x="train_steps")
    assert fig.axes[1].get_xlabel() == "world-model gradient steps"
