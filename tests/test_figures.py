"""Figure and table helpers: provenance, atomic saving, the figure functions, puck placement."""

import numpy as np
import pandas as pd
import torch

from latco import envs
from latco.data import Episode
from latco.model import RSSM, WorldModelConfig
from latco.paper import figures, plotting


def test_provenance_names_profile_commit_and_date():
    fields = plotting.provenance_fields("quick")
    assert fields["profile"] == "quick" and len(fields["commit"]) >= 4 and fields["date"][:2] == "20"
    assert plotting.provenance("quick") == f"profile quick · commit {fields['commit']} · {fields['date']}"


def test_save_figure_writes_png_and_pdf_and_table_csv_and_markdown(tmp_path):
    fig = figures.multipliers({"lam": np.array([1.0, 10.0]), "nu": np.array([1.0, 2.0])})
    plotting.stamp(fig, "smoke")
    assert "profile smoke" in " ".join(t.get_text() for t in fig.texts)
    plotting.save_figure(fig, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 0 and (tmp_path / "f.pdf").stat().st_size > 0
    csv, md = plotting.save_table(pd.DataFrame({"a": [1, 2]}), tmp_path / "t", "smoke")
    assert list(pd.read_csv(csv).columns) == ["a", "profile", "commit", "date"]
    assert md.read_text().rstrip().endswith(f"_{plotting.provenance('smoke')}_")
    assert not list(tmp_path.glob(".*tmp*"))  # no temporary files left


def tiny_model():
    torch.manual_seed(0)
    return RSSM(WorldModelConfig(action_size=2, image_size=32, depth=4, stoch=4, deter=8, hidden=16,
                                 reward_hidden=16)).eval()


def test_figure_functions_draw_one_panel_per_item():
    model = tiny_model()
    F = model.feature_size
    fig = figures.plan_optimization(model, np.zeros((3, 11, F), np.float32), np.array([0, 5, 10]), [0, 5, 10])
    assert len(fig.axes) == 9
    trace = {"dynamics_violation": np.array([1.0, 0.1]), "predicted_reward": np.array([-2.0, -1.0])}
    assert len(figures.optimization_curves(trace).axes) == 2
    ep = Episode(images=np.zeros((11, 32, 32, 3), np.uint8), actions=np.zeros((10, 2), np.float32),
                 rewards=np.zeros(10, np.float32), success=np.zeros(10, bool), state={},
                 task="obstacle", seed=0)
    assert len(figures.trajectories({"a": ep, "b": ep}, columns=4).axes) == 8
    fig = figures.planned_vs_executed(model, {"latco": (np.zeros((11, F), np.float32), ep)}, [0, 5, 10])
    assert len(fig.axes) == 6
    xs, ys = np.linspace(0, 1, 3), np.linspace(0, 1, 4)
    fig = figures.reward_heatmap(xs, ys, np.zeros((4, 3)), np.ones((4, 3)), np.array([0.5, 0.5]))
    assert len([ax for ax in fig.axes if ax.get_images()]) == 2


def test_place_puck_moves_the_puck_in_the_simulator_and_the_image():
    env = envs.make_env("push", seed=0, image_size=32).unwrapped
    try:
        env.reset(seed=0)
        first = env.place_puck(np.array([-0.1, 0.6]))
        assert np.allclose(env._state()["puck"][:2], [-0.1, 0.6], atol=1e-6)
        second = env.place_puck(np.array([0.3, 0.85]))
        assert np.allclose(env._state()["puck"][:2], [0.3, 0.85], atol=1e-6)
        assert np.abs(first.astype(int) - second.astype(int)).sum() > 0
    finally:
        env.close()


def test_online_curves_plot_the_mean_success_over_seeds_per_planner():
    def evals(success):
        return pd.DataFrame({"episodes_collected": [0, 10, 20], "success": success})
    runs = {("obstacle", "latco", 0): evals([0.0, 0.5, 1.0]),
            ("obstacle", "latco", 1): evals([0.0, 0.1, 0.6]),
            ("obstacle", "cem", 0): evals([0.0, 1.0, 0.9]), ("reach", "gd", 0): evals([0.0, 0.0, 0.2])}
    fig = figures.online_curves(runs)
    assert [ax.get_title() for ax in fig.axes] == ["obstacle", "reach"]
    drawn = fig.axes[0].get_lines()
    lines = {line.get_label(): line for line in drawn if not line.get_label().startswith("_")}
    faint = [line for line in drawn if line.get_label().startswith("_")]
    assert len(faint) == 3 and all(line.get_alpha() < 0.5 for line in faint)  # one per seed's run
    np.testing.assert_allclose(sorted(tuple(line.get_ydata()) for line in faint),
                               sorted([(0.0, 0.5, 1.0), (0.0, 0.1, 0.6), (0.0, 1.0, 0.9)]))
    assert set(lines) == {"latco (2 seeds)", "cem (1 seed)"}
    np.testing.assert_allclose(lines["latco (2 seeds)"].get_ydata(), [0.0, 0.3, 0.8])
    np.testing.assert_allclose(lines["cem (1 seed)"].get_xdata(), [0, 10, 20])
