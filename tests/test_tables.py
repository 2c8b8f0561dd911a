"""Tables 1-3 against hand-computed means and standard errors."""

import numpy as np
import pandas as pd

from latco.paper.tables import fmt, mean_se, offline_table, online_table, predicted_vs_achieved


def test_mean_se_by_hand():
    m, se, n = mean_se([1.0, 0.0, 0.0, 1.0])
    assert (m, n) == (0.5, 4) and np.isclose(se, np.sqrt(1 / 3) / 2)  # sd = sqrt(1/3), /sqrt(4)
    assert np.isnan(mean_se([2.0])[1]) and fmt([2.0]) == "2.00 ± n/a"
    assert mean_se([np.nan, 1.0, 3.0])[:2] == (2.0, np.sqrt(2) / np.sqrt(2))


def rows(success, distance, predicted, achieved):
    return pd.DataFrame({"success": success, "final_distance": distance, "return": achieved,
                         "predicted_reward": predicted, "achieved_reward": achieved,
                         "plan_seconds": [2.0] * len(success)})


def test_offline_and_predicted_tables():
    r = {("obstacle", "latco"): rows([True, False], [0.1, 0.3], [-10.0, -20.0], [-12.0, -30.0])}
    t2 = offline_table(r)
    assert t2.loc[0, "success"] == "0.50 ± 0.50"  # sd 0.7071 / sqrt 2
    assert t2.loc[0, "final distance"] == "0.20 ± 0.10"
    t3 = predicted_vs_achieved(r)
    assert t3.loc[0, "predicted"] == "-15.0 ± 5.0" and t3.loc[0, "achieved − predicted"] == "-6.0 ± 4.0"


def test_online_table_takes_first_and_last_evaluation_per_seed():
    def run(s0, s1):
        return pd.DataFrame({"episodes_collected": [10, 0], "success": [s1, s0], "return": [-1.0, -5.0],
                             "final_distance": [0.1, 0.5], "eval_episodes": [10, 10]})

    t1 = online_table({("obstacle", "latco", 0): run(0.0, 0.6), ("obstacle", "latco", 1): run(0.2, 0.8)})
    assert t1.loc[0, "runs"] == 2 and t1.loc[0, "episodes collected"] == 10
    assert t1.loc[0, "success (first eval)"] == "0.10 ± 0.10"
    assert t1.loc[0, "success (last eval)"] == "0.70 ± 0.10"
    # two runs: resampled means are 0.6, 0.7 or 0.8, so the 95 % interval spans both runs
    assert t1.loc[0, "success 95 % CI (runs)"] == "[0.60, 0.80]"
    assert t1.loc[0, "success per run"] == "0.60, 0.80"
    one = online_table({("reach", "gd", 0): run(0.0, 0.3)})
    assert one.loc[0, "runs"] == 1 and one.loc[0, "success 95 % CI (runs)"] == "n/a"
    assert one.loc[0, "success (last eval)"] == "0.30 ± n/a"
    assert "protocol" not in one
    labelled = online_table({("reach", "gd", 0): run(0.0, 0.3), ("obstacle", "gd", 0): run(0.0, 0.3)},
                            {"reach": "offline → online", "obstacle": "from scratch"})
    assert dict(zip(labelled["task"], labelled["protocol"], strict=True)) == {
        "reach": "offline → online", "obstacle": "from scratch"}


def test_obstacle_passages_counts_each_way_round_the_wall(tmp_path):

    import pytest

    from latco import storage
    from latco.data import Episode, save_episode
    from latco.paper import paths
    from latco.paper.analyses import obstacle_passages

    ys = np.linspace(0, 1, 6)[:, None]
    ways = {  # agent paths (x, y): pressed against the wall at y = -0.3; over the top; under it
        "blocked": np.hstack([-0.5 + 0.6 * ys, -0.3 * ys]),
        "above": np.hstack([-0.5 + 1.3 * ys, 0.7 * np.sin(np.pi * ys)]),
        "below": np.hstack([-0.5 + 1.3 * ys, -0.7 * np.sin(np.pi * ys)]),
    }
    folder = paths.offline_dir(tmp_path, "obstacle", "latco")
    rows = []
    for i, (way, agent) in enumerate([*ways.items(), ("above", ways["above"])]):
        ep = Episode(images=np.zeros((6, 8, 8, 3), np.uint8), actions=np.zeros((5, 2)),
                     rewards=np.zeros(5), success=np.array([False] * 4 + [way != "blocked"]),
                     state={"agent": agent}, task="obstacle")
        path = save_episode(folder / "episodes" / f"ep_{i:06d}.npz", ep)
        rows.append({"episode": i, "success": way != "blocked", "episode_file": f"elsewhere/{path.name}"})
    storage.write_table(folder / storage.FINISHED, pd.DataFrame(rows))
    table = obstacle_passages(tmp_path, ["latco"]).iloc[0]
    assert (table["episodes"], table["success"]) == (4, 0.75)
    counts = (table["above"], table["below"], table["blocked"])
    assert counts == ("2 (2 solved)", "1 (1 solved)", "1 (0 solved)")
    assert table["lowest y (blocked)"] == pytest.approx(-0.3)
    with pytest.raises(FileNotFoundError, match="rule `offline`"):
        obstacle_passages(tmp_path, ["cem"])


def test_bootstrap_interval_agrees_with_scipy():
    from scipy.stats import bootstrap

    from latco.paper.tables import bootstrap_ci, fmt_ci

    rng = np.random.default_rng(4)
    for n, p in ((20, 0.15), (50, 0.6), (100, 0.95)):
        successes = (rng.random(n) < p).astype(float)
        ref = bootstrap((successes,), np.mean, confidence_level=0.95, n_resamples=20_000,
                        method="percentile", random_state=1).confidence_interval
        low, high = bootstrap_ci(successes, resamples=20_000)
        assert abs(low - ref.low) <= 1.5 / n and abs(high - ref.high) <= 1.5 / n  # within ~1 episode
        assert 0 <= low <= successes.mean() <= high <= 1
    assert bootstrap_ci(np.ones(20)) == (1.0, 1.0)  # all succeed: no spread, unlike mean ± s.e.
    assert fmt_ci([]) == "n/a" and fmt_ci([0.0, 1.0, 1.0, 1.0]).startswith("[")


def test_markdown_tables_round_and_star_extrapolated_cells():
    from latco.paper.plotting import markdown_table

    table = pd.DataFrame({"planner": ["latco", "cem"], "seconds": [1.871834, 101.72931],
                          "seconds extrapolated": [False, True], "runs": [3, 3]})
    text = markdown_table(table)
    lines = text.splitlines()
    assert "extrapolated" not in lines[0] and "True" not in text and "False" not in text
    assert "| 1.87 " in text and "| 102* " in text and "| 3 " in text
    assert lines[-1].startswith("\\* extrapolated")
    assert markdown_table(table.drop(columns=["seconds extrapolated"])).count("*") == 0


def test_offline_table_pools_models_and_adds_closed_loop_rows():
    def model(seed, success):
        n = len(success)
        return rows(success, [0.1] * n, [-1.0] * n, [-2.0] * n).assign(model_seed=seed)

    pooled = pd.concat([model(0, [True, True]), model(1, [True, False]), model(2, [False, False])])
    closed = {("obstacle", "latco", 10): model(0, [True, True])}
    t2 = offline_table({("obstacle", "latco"): pooled}, closed)
    paper, loop = t2.iloc[0], t2.iloc[1]
    assert (paper["models"], paper["episodes"]) == (3, 6)
    assert paper["success"] == "0.50 ± 0.29"  # over the models' 1.0, 0.5, 0.0: sd 0.5 / sqrt 3
    assert paper["success per model"] == "1.00, 0.50, 0.00"
    assert paper["execution"] == "as the paper"
    assert loop["execution"] == "re-plan every 10 steps (beyond the paper)" and loop["models"] == 1
    assert loop["success"] == "1.00 ± 0.00"  # one model: over episodes
    t3 = predicted_vs_achieved({("obstacle", "latco"): pooled}, closed)
    assert list(t3["episodes"]) == [6, 2] and t3.loc[0, "achieved − predicted"] == "-1.0 ± 0.0"


def test_readme_headline_keeps_a_commit_that_looks_like_a_number(tmp_path):
    from latco.paper.tables import readme_headline

    offline = pd.DataFrame({"task": ["obstacle"] * 2, "planner": ["latco", "cem"],
                            "execution": ["as the paper"] * 2, "models": [1, 1], "episodes": [20, 20],
                            "success": ["0.50 ± 0.11", "0.40 ± 0.11"],
                            "success 95 % CI": ["[0.30, 0.70]", "[0.20, 0.60]"],
                            "profile": ["quick"] * 2, "commit": ["49e7792"] * 2, "date": ["2026-12-05"] * 2})
    online = pd.DataFrame({"task": ["obstacle"], "planner": ["latco"], "protocol": ["from scratch"],
                           "runs": [1], "success (last eval)": ["0.90 ± n/a"]})
    offline.to_csv(tmp_path / "table2_offline.csv", index=False)
    online.to_csv(tmp_path / "table1_online.csv", index=False)
    text = readme_headline(tmp_path)
    assert "commit 49e7792, 2026-12-05" in text, text.splitlines()[-2]
    assert "| 0.90 | – |" in text
