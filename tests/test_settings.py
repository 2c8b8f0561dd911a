"""latco.paper.settings: overrides by dotted path take effect or are refused by name, results record the
settings they were made with, and a producer asked for other settings never returns the old result."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from dataclasses import replace

import pandas as pd
import pytest

from latco.paper import offline, online, paths, recipe, results, settings
from latco.paper.paths import ROOT
from latco.paper.profiles import get_profile


# ------------------------------------------------------------------------------------ overrides
def test_overrides_by_dotted_path_change_exactly_those_settings():
    quick = get_profile("quick")
    changed = quick.with_overrides({"planners.latco.iterations": "100", "task_train_steps.obstacle": 9000,
                                    "train.lr": "1e-3", "task_online.reach.episodes": 12,
                                    "online_seeds": "0,1", "task_online_planners.push": "latco,cem,gd",
                                    "planners.icem.samples": 256, "task_data.push.noise": 0.2})
    assert changed.planners["latco"] == {"n_plans": 4, "iterations": 100}  # the profile's n_plans kept
    assert changed.planners["icem"] == {"samples": 256}  # a planner the profile runs at paper settings
    assert changed.train_for("obstacle").steps == 9000 and changed.train_for("push").steps == 8000
    assert changed.train.lr == 0.001 and changed.online_seeds == (0, 1)
    assert changed.online_for("reach").episodes == 12 and changed.online_for("push").episodes == 5
    assert changed.task_online_planners == {"reach": ("latco", "cem"), "push": ("latco", "cem", "gd")}
    assert changed.data_for("push").noise == 0.2 and changed.data_for("reach").noise == 0.3
    # everything else as it was
    untouched = replace(changed, planners=quick.planners, task_train_steps=quick.task_train_steps,
                        train=quick.train, task_online=quick.task_online, online_seeds=quick.online_seeds,
                        task_data=quick.task_data, task_online_planners=quick.task_online_planners,
                        overrides={})
    assert untouched == quick
    assert changed.overrides["planners.latco.iterations"] == 100  # typed, and remembered
    # nested dicts (snakemake --config planners='{latco: {iterations: 7}}') are the same overrides
    nested = quick.with_overrides({"planners": {"latco": {"iterations": "7"}}})
    assert nested.planners["latco"]["iterations"] == 7


def test_more_models_or_a_closed_loop_row_for_one_task_are_overrides():
    """``task_models.<task>`` and ``closed_loop.<task>`` add evaluations without touching the others'
    settings (their digests do not depend on how many models or rows there are)."""
    quick = get_profile("quick")
    more = quick.with_overrides({"task_models.obstacle": "5", "closed_loop.reach": 10})
    assert more.model_seeds("obstacle") == (0, 1, 2, 3, 4) and more.model_seeds("push") == (0,)
    added = set(more.offline_runs()) - set(quick.offline_runs())
    assert added == {("obstacle", p, s, None) for p in quick.offline_planners for s in (3, 4)} | {
        ("reach", p, 0, 10) for p in quick.closed_loop_planner_names()}
    assert settings.offline_settings(more, "obstacle", "latco", 1) == \
        settings.offline_settings(quick, "obstacle", "latco", 1)


@pytest.mark.parametrize("override, message", [
    ({"planners.latco.iteration": 1}, "options of planner 'latco': iterations, damping"),
    ({"planners.latco.iterations": 2.5}, "expected a whole number"),
    ({"planners.cem.samples": "100x"}, "expected a whole number"),
    ({"planners.lat.iterations": 1}, "with a planner from: cem, gd"),
    ({"train.stepz": 1}, "valid fields of TrainConfig: steps, batch"),
    ({"bogus": 1}, "valid settings: world_model.image_size"),
    ({"task_train_steps.pusher": 1}, "name a task after task_train_steps (obstacle, reach, push)"),
    ({"task_models.obstacle": 1.5}, "expected a whole number"),
    ({"closed_loop": 10}, "name a task after closed_loop"),
    ({"task_models.obstacle": 0}, "expected a positive whole number"),
    ({"planners.latco.constraints": "box"}, "choose one of 'project', 'tanh', 'paper'"),
    ({"planners.latco.iterations": -1}, "invalid LatCo option"),
    ({"gpu": "maybe"}, "expected true or false"),
    ({"name": "quick2"}, "unknown setting 'name'"),
    ({"world_model.action_size": 3}, "set per task"),
    ({"task_world_model.push.kl_balanse": 0.8}, "a field of WorldModelConfig (depth, stoch"),
    ({"task_world_model.pusher.kl_balance": 0.8}, "task_world_model.<task>.<field> with a task (obstacle"),
    ({"task_world_model.push.image_size": 64}, "image_size, action_size cannot differ per task"),
    ({"task_world_model.push.depth": 2.5}, "expected a whole number"),
])
def test_an_unknown_setting_or_a_wrong_value_is_named(override, message):
    with pytest.raises(settings.SettingsError) as error:
        get_profile("quick").with_overrides(override)
    assert message in str(error.value)


def test_a_world_model_setting_of_one_task_changes_that_task_s_models_only():
    """``task_world_model.<task>.<field>`` reaches every model of that task (offline, online, their
    evaluations), leaves the other tasks' digests as they were, and a ``world_model`` override still
    reaches the task's other fields."""
    smoke = get_profile("smoke")
    push = smoke.with_overrides({"task_world_model.push.kl_balance": 0.8, "world_model.depth": 3})
    assert push.world_model_for("push").kl_balance == 0.8 and push.world_model_for("push").depth == 3
    assert push.world_model_for("push").action_size == 4 and push.world_model_for("obstacle").action_size == 2
    assert push.world_model_for("reach").kl_balance is None
    only = smoke.with_overrides({"task_world_model.push.kl_balance": 0.8})
    for task in ("obstacle", "reach"):
        assert settings.model_settings(only, task) == settings.model_settings(smoke, task)
        assert settings.online_settings(only, task, "latco") == settings.online_settings(smoke, task, "latco")
    assert settings.model_settings(only, "push")["world_model"]["kl_balance"] == 0.8
    assert settings.offline_settings(only, "push", "cem") != settings.offline_settings(smoke, "push", "cem")
    assert settings.online_settings(only, "push", "cem") != settings.online_settings(smoke, "push", "cem")
    with pytest.raises(ValueError, match="cannot differ per task"):
        replace(smoke, task_world_model={"push": {"image_size": 64}})


def test_assignments_parse_as_the_command_line_gives_them():
    assert settings.parse_assignments("planners.latco.iterations=100 task_train_steps.obstacle=9000") == {
        "planners.latco.iterations": 100, "task_train_steps.obstacle": 9000}
    assert settings.parse_assignments(["train.lr=1e-3", "planners.latco.shift=null"]) == {
        "train.lr": "1e-3", "planners.latco.shift": None}
    with pytest.raises(settings.SettingsError, match="path=value"):
        settings.parse_assignments(["planners.latco.iterations"])
    # a list value keeps its commas and spaces; commas outside brackets separate assignments
    assert settings.parse_assignments("task_data.obstacle.oracle_pass=[0.35, 0.75],train.steps=5") == {
        "task_data.obstacle.oracle_pass": [0.35, 0.75], "train.steps": 5}
    assert get_profile("quick").with_overrides({"task_data.obstacle.oracle_pass": [0.4, 0.8]}).data_for(
        "obstacle").oracle_pass == (0.4, 0.8)
    with pytest.raises(settings.SettingsError, match="not valid YAML"):
        settings.parse_assignments("task_data.obstacle.oracle_pass=[0.35")


def test_a_setting_changes_the_digest_of_exactly_the_results_that_depend_on_it():
    smoke = get_profile("smoke")
    latco = smoke.with_overrides({"planners.latco.iterations": 7})
    for task in ("obstacle", "reach"):
        assert settings.digest(settings.offline_settings(latco, task, "latco")) != \
            settings.digest(settings.offline_settings(smoke, task, "latco"))
        assert settings.digest(settings.online_settings(latco, task, "latco")) != \
            settings.digest(settings.online_settings(smoke, task, "latco"))
        for planner in ("cem", "gd"):
            assert settings.digest(settings.offline_settings(latco, task, planner)) == \
                settings.digest(settings.offline_settings(smoke, task, planner))
        assert settings.model_settings(latco, task) == settings.model_settings(smoke, task)
    longer = smoke.with_overrides({"task_train_steps.obstacle": 12})
    assert settings.model_settings(longer, "obstacle") != settings.model_settings(smoke, "obstacle")
    assert settings.model_settings(longer, "push") == settings.model_settings(smoke, "push")
    # a re-trained model re-makes every evaluation on it
    assert settings.offline_settings(longer, "obstacle", "cem") != \
        settings.offline_settings(smoke, "obstacle", "cem")


def test_produce_refuses_an_unknown_setting_before_making_anything(tmp_path):
    out = subprocess.run([sys.executable, "-m", "latco.paper.produce", "--results", str(tmp_path),
                          "--set", "planners.latco.iteratons=3"], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode != 0 and "unknown setting 'planners.latco.iteratons'" in out.stderr
    assert not list(tmp_path.iterdir())


def test_a_notebook_refuses_a_parameter_it_does_not_declare(tmp_path):
    from latco.paper.workflow import run_notebook

    with pytest.raises(ValueError, match="unknown parameter.*'iterations'.*parameters: task, plan") as error:
        run_notebook(ROOT / "notebooks/03_offline_planning.ipynb", tmp_path / "out.ipynb", {"iterations": 20})
    assert "overrides" in str(error.value)
    assert not (tmp_path / "out.ipynb").exists()


# ------------------------------------------------------------------------------- records and remakes
@pytest.fixture(scope="module")
def made(tmp_path_factory):
    """The smoke profile's Obstacle data, model, one offline evaluation and one online run."""
    root = tmp_path_factory.mktemp("made")
    prof = get_profile("smoke")
    offline.offline_run("obstacle", "gd", prof, root)
    online.online_training("obstacle", "gd", prof, paths.online_dir(root, "obstacle", "gd", 0))
    return root, prof


def test_every_result_records_the_settings_it_was_made_with(made):
    root, prof = made
    expected = {
        paths.data_dir(root, "obstacle"): settings.data_settings(prof, "obstacle", 0),
        paths.model_dir(root, "obstacle"): settings.model_settings(prof, "obstacle", 0),
        paths.offline_dir(root, "obstacle", "gd"): settings.offline_settings(prof, "obstacle", "gd"),
        paths.online_dir(root, "obstacle", "gd", 0): settings.online_settings(prof, "obstacle", "gd"),
    }
    for folder, wanted in expected.items():
        record = results.record(folder)
        assert record["settings"] == json.loads(json.dumps(settings.jsonable(wanted))), folder
        assert record["profile"] == "smoke" and record["overrides"] == {}
        assert len(record["commit"].split("-")[0]) == 40 or record["commit"] == "unknown"
    # what a reader sees: the planner's options as run, the training steps
    offline_record = results.record(paths.offline_dir(root, "obstacle", "gd"))
    assert offline_record["settings"]["options"]["iterations"] == 10
    marker = json.loads(results.model_done(root, "obstacle").read_text())
    assert marker["steps"] == 10 and marker["record"]["settings"]["train"]["steps"] == 10
    assert json.loads(results.data_done(root, "obstacle").read_text())["record"]["profile"] == "smoke"


def test_other_planner_settings_remake_the_evaluation_never_return_the_old_one(made, tmp_path):
    root, prof = made
    copy = tmp_path / "r"
    shutil.copytree(root, copy)
    before = results.offline(copy, "obstacle", "gd").table
    changed = prof.with_overrides({"planners.gd.iterations": 3})
    with pytest.warns(UserWarning, match=r"options.iterations: 10 -> 3.*re-making it"):
        table = offline.offline_run("obstacle", "gd", changed, copy)
    folder = paths.offline_dir(copy, "obstacle", "gd")
    assert results.record(folder)["settings"]["options"]["iterations"] == 3
    assert results.record(folder)["overrides"] == {"planners.gd.iterations": 3}
    assert (folder.parent / "gd.replaced" / "table.csv").exists()  # the old result is kept aside
    plans = results.offline(copy, "obstacle", "gd").plans(0)
    assert len(plans[0].trace["predicted_reward"]) == 3  # planned with the new budget, not read back
    assert len(table) == len(before)
    # the same settings again: the result is returned as it is
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        again = offline.offline_run("obstacle", "gd", changed, copy)
    pd.testing.assert_frame_equal(again, table)


def test_an_online_run_with_other_settings_is_made_anew(made, tmp_path):
    root, prof = made
    run = paths.online_dir(tmp_path, "obstacle", "gd", 0)
    shutil.copytree(paths.online_dir(root, "obstacle", "gd", 0), run)
    changed = prof.with_overrides({"online.episodes": 1})
    with pytest.warns(UserWarning, match=r"online.episodes: 2 -> 1"):
        table = online.online_training("obstacle", "gd", changed, run)
    assert list(table["episodes_collected"]) == [0, 1]
    assert len(list((run / "episodes").glob("*.npz"))) == 2 + 1  # seed episodes + 1, none of the old run's


def test_data_and_models_made_with_other_settings_are_kept_and_named(made, tmp_path):
    root, prof = made
    copy = tmp_path / "r"
    shutil.copytree(root, copy)
    data_dir = paths.data_dir(copy, "obstacle")
    with pytest.raises(settings.SettingsMismatch, match=r"data.noise: 0.3 -> 0.1.*delete .*data/obstacle"):
        recipe.oracle_data("obstacle", prof.with_overrides({"data.noise": 0.1}), data_dir)
    # other episode counts are the same recipe: a prefix of the same episodes
    fewer = recipe.oracle_data("obstacle", prof.with_overrides({"data.episodes": 1}), data_dir)
    assert len(fewer["train"]) == 1 + 1 + 1
    # dash episodes are another count of the same recipe: added to the training data, seeded apart
    dashes = recipe.oracle_data("obstacle", prof.with_overrides({"data.dash_episodes": 2}), data_dir)
    assert len(dashes["train"]) == len(fewer["train"]) + 2 + 2
    assert [e.seed for e in dashes["train"][-2:]] == [recipe.DASH_SEED_OFFSET, recipe.DASH_SEED_OFFSET + 1]
    assert all(e.actions[0, 0] > 0 for e in dashes["train"][-2:])  # a dash heads for the wall
    with pytest.raises(settings.SettingsMismatch, match=r"world_model.deter: 8 -> 12"):
        offline.offline_model("obstacle", prof.with_overrides({"world_model.deter": 12}), copy)
    with pytest.raises(settings.SettingsMismatch, match="has trained 10 steps and 6 were asked for"):
        offline.offline_model("obstacle", prof.with_overrides({"train.steps": 6}), copy)
    assert json.loads(results.model_done(copy, "obstacle").read_text())["steps"] == 10  # untouched
    # more steps: training continues from the checkpoint, and the marker says how many it has
    offline.offline_model("obstacle", prof.with_overrides({"train.steps": 12}), copy)
    assert json.loads(results.model_done(copy, "obstacle").read_text())["steps"] == 12
    assert results.record(paths.model_dir(copy, "obstacle"))["settings"]["train"]["steps"] == 12


def test_readers_name_a_task_or_planner_that_cannot_exist(tmp_path):
    with pytest.raises(ValueError, match="unknown task 'pusher'; choose one of: obstacle, reach, push"):
        results.model(tmp_path, "pusher")
    with pytest.raises(ValueError, match="unknown planner 'CEM'"):
        results.offline(tmp_path, "push", "CEM")


def test_an_evaluation_folder_refuses_another_planner_setting(tmp_path):
    """The library's ``evaluate`` on its own: a folder holding another planner's rows is an error."""
    import torch

    from latco.agent import evaluate
    from latco.model import RSSM, WorldModelConfig
    from latco.planners import make_planner

    torch.manual_seed(0)
    model = RSSM(WorldModelConfig(action_size=2, image_size=32, depth=4, stoch=4, deter=8, hidden=16,
                                  reward_hidden=16)).eval()
    evaluate(model, make_planner("gd", iterations=2), "obstacle", 1, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"other settings \(planner.options.iterations: 2 -> 3\)"):
        evaluate(model, make_planner("gd", iterations=3), "obstacle", 1, out_dir=tmp_path, progress=False)
    # a folder claimed before an option existed: the option at its default still matches (resumes),
    # at another value it does not
    import json

    claimed = tmp_path / "evaluation.json"
    record = json.loads(claimed.read_text())
    del record["planner"]["options"]["lr"]  # as if GD had no lr option when the folder was made
    claimed.write_text(json.dumps(record))
    evaluate(model, make_planner("gd", iterations=2), "obstacle", 1, out_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match=r"planner.options.lr: '<absent>' -> 0.5"):
        evaluate(model, make_planner("gd", iterations=2, lr=0.5), "obstacle", 1, out_dir=tmp_path,
                 progress=False)


@pytest.mark.parametrize("given", [
    "{planners.latco.iterations: 20}", "planners.latco.iterations=20",
    {"planners.latco.iterations": 20}, {"planners": {"latco": {"iterations": 20}}}])
def test_a_notebook_takes_overrides_as_papermill_passes_them(given):
    prof, _, _ = results.locate("smoke", overrides=given)
    assert prof.planners["latco"]["iterations"] == 20 and prof.overrides == {"planners.latco.iterations": 20}


def test_a_setting_added_to_the_code_later_keeps_results_made_before_it(made, tmp_path):
    """A record without a newer option (here: one written before ``train.decode_fraction`` and LatCo's
    ``reward_reference`` existed) is the same result when the option is at its default; not otherwise."""
    root, prof = made
    copy = tmp_path / "r"
    shutil.copytree(root, copy)
    model_dir = paths.model_dir(copy, "obstacle")
    record = results.record(model_dir)
    del record["settings"]["train"]["decode_fraction"]
    settings.write_record(model_dir, record)
    offline.offline_model("obstacle", prof, copy)  # no error, nothing retrained
    assert results.record(model_dir)["settings"]["train"]["decode_fraction"] == 1.0  # recorded now
    settings.write_record(model_dir, record)
    with pytest.raises(settings.SettingsMismatch, match="decode_fraction: '<absent>' -> 0.5"):
        offline.offline_model("obstacle", prof.with_overrides({"train.decode_fraction": 0.5}), copy)
    assert settings.new_at_default("options.reward_reference", "<absent>", "zero", {"planner": "latco"})
    assert not settings.new_at_default("options.reward_reference", "<absent>", "best", {"planner": "latco"})
    assert not settings.new_at_default("options.iterations", 10, 200, {"planner": "latco"})


def test_a_marker_that_says_the_same_keeps_its_time(tmp_path):
    """Re-claiming finished data (another model seed's job, a study) rewrites no marker whose counts
    are unchanged, so Snakemake does not see the data as newer than what was built on it."""
    marker = tmp_path / "episodes.json"
    results.write_marker(marker, {"train": 3, "heldout": 1, "record": {"commit": "a"}})
    os.utime(marker, (1_000_000, 1_000_000))
    results.write_marker(marker, {"train": 3, "heldout": 1, "record": {"commit": "b"}})
    assert marker.stat().st_mtime == 1_000_000
    results.write_marker(marker, {"train": 4, "heldout": 1, "record": {"commit": "b"}})
    assert marker.stat().st_mtime > 1_000_000 and json.loads(marker.read_text())["train"] == 4


def test_result_digest_keeps_a_result_made_before_an_option_existed(tmp_path):
    """The Snakefile's params: a result recorded without an option added since (at its default) keeps
    its old digest, so it is not re-made; a real change gives the new settings' digest."""
    quick = get_profile("quick")
    wanted = settings.model_settings(quick, "push")
    old = json.loads(json.dumps(settings.jsonable(wanted)))
    del old["data"]["data"]["decoy_episodes"]  # as a record written before decoys existed
    (tmp_path / "settings.json").write_text(json.dumps({"settings": old}))
    assert settings.result_digest(tmp_path, wanted) == settings.digest(old) != settings.digest(wanted)
    longer = settings.model_settings(quick.with_overrides({"task_train_steps.push": 9000}), "push")
    assert settings.result_digest(tmp_path, longer) == settings.digest(longer)
    assert settings.result_digest(tmp_path / "none", wanted) == settings.digest(wanted)
