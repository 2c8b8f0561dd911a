"""latco.paper.results: the readers return what the producers computed, and a missing result names
its maker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from latco import storage
from latco.paper import offline, online, paths, results
from latco.paper.profiles import get_profile


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory):
    """One offline (task, planner) and one online run of the smoke profile, as the producers make them."""
    root = tmp_path_factory.mktemp("results")
    prof = get_profile("smoke")
    table = offline.offline_run("obstacle", "gd", prof, root)
    evaluations = online.online_training("obstacle", "gd", prof, paths.online_dir(root, "obstacle", "gd", 0))
    return root, table, evaluations


def test_readers_return_what_the_producers_computed(smoke_results):
    root, offline, online = smoke_results
    run = results.offline(root, "obstacle", "gd")
    pd.testing.assert_frame_equal(run.table, offline, check_dtype=False)
    pd.testing.assert_frame_equal(results.online(root, "obstacle", "gd", 0), online, check_dtype=False)
    # the episode and plans beside the table are the ones the evaluation saved
    episode = run.episode(0)
    assert len(episode.actions) == 30 and episode.task == "obstacle"
    plans = run.plans(0)
    assert len(plans) == offline["plans"][0] and plans[0].step == 0
    assert plans[0].features.shape[0] == 31 and plans[0].actions.shape == (30, 2)
    # Fig. 4's reader: a plan and the frames from the step it was made at
    plan, frames = run.plan_and_frames(0, 0)
    assert plan.step == 0 and np.array_equal(plan.features, plans[0].features)
    assert np.array_equal(frames, episode.images)
    with pytest.raises(IndexError, match="has 1 plans; plan 1 does not exist"):
        run.plan_and_frames(0, 1)
    model = results.model(root, "obstacle")
    assert not model.training
    starts = results.heldout_starts(model, root, "obstacle", 2)
    assert len(starts) == 2 and starts[0].shape == (model.feature_size,)


@pytest.mark.parametrize("kind, rule, notebook", [
    ("offline", "offline", "03_offline_planning"),
    ("online", "online", "04_online_training"),
    ("model", "world_model", "02_world_model"),
    ("data", "data", "01_data"),
])
def test_a_deleted_result_names_the_rule_that_makes_it(smoke_results, tmp_path, kind, rule, notebook):
    import shutil

    root, _, _ = smoke_results
    copy = tmp_path / "results"
    shutil.copytree(root, copy)
    done = {"offline": results.offline_done(copy, "obstacle", "gd"),
            "online": results.online_done(copy, "obstacle", "gd", 0),
            "model": results.model_done(copy, "obstacle"),
            "data": results.data_done(copy, "obstacle")}[kind]
    done.unlink()
    read = {"offline": lambda: results.offline(copy, "obstacle", "gd"),
            "online": lambda: results.online(copy, "obstacle", "gd", 0),
            "model": lambda: results.model(copy, "obstacle"),
            "data": lambda: results.heldout_episodes(copy, "obstacle")}[kind]
    with pytest.raises(results.MissingResult) as error:
        read()
    message = str(error.value)
    assert f"rule `{rule}`" in message and f"notebooks/{notebook}.ipynb" in message
    assert str(done) in message and "has not finished" in message  # its folder is there, unfinished


def test_a_result_never_made_is_missing_not_unfinished(tmp_path):
    with pytest.raises(results.MissingResult, match=r"is missing: the offline result") as error:
        results.offline(tmp_path, "push", "cem")
    assert error.value.rule == "offline" and "snakemake --cores 2" in str(error.value)


def test_plans_round_trip_through_their_file(tmp_path):
    from latco.planners import Plan

    plans = [Plan(actions=torch.randn(4, 2), features=torch.randn(5, 3),
                  trace={"cost": torch.arange(3.0).numpy(), "lam": torch.ones(3, 4).numpy()}),
             Plan(actions=torch.randn(4, 2), features=torch.randn(5, 3),
                  trace={"cost": torch.zeros(2).numpy()})]
    storage.save_plans(tmp_path / "p.npz", [0, 20], plans)
    back = storage.load_plans(tmp_path / "p.npz")
    assert [p.step for p in back] == [0, 20]
    for saved, plan in zip(back, plans, strict=True):
        torch.testing.assert_close(torch.as_tensor(saved.features), plan.features)
        torch.testing.assert_close(torch.as_tensor(saved.actions), plan.actions)
        assert set(saved.trace) == set(plan.trace)
    assert not list(tmp_path.glob(".*"))  # the temporary file was renamed into place


def test_an_unmarked_but_complete_evaluation_is_finished_once_checked(tmp_path):
    """Evaluation folders of the earlier code have rows.jsonl but no table.csv: complete ones get it."""
    import json

    log = storage.EvaluationLog(tmp_path / "eval_0010")
    rows = [{"episode": i, "seed": i, "success": i == 1, "return": -1.0 * i} for i in range(3)]
    log.rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    assert not log.finish_if_complete(3) and not (log.folder / storage.FINISHED).exists()
    log.rows_path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert log.finish_if_complete(3)
    table = pd.read_csv(log.folder / storage.FINISHED)
    assert list(table["episode"]) == [0, 1, 2] and list(table["success"]) == [False, True, False]


def test_writers_of_one_file_at_once_each_rename_a_whole_file(tmp_path):
    """Two processes finishing one marker at once (two runs sharing a data folder) both succeed,
    and the file holds one writer's whole content (a shared temporary name lost one's rename)."""
    import multiprocessing as mp
    import time

    target, start = tmp_path / "marker.json", time.time() + 4  # both write during the same 2 s
    with mp.get_context("spawn").Pool(2) as pool:
        pool.starmap(_write_many, [(target, "a", start), (target, "b", start)])
    assert target.read_text() in ("a" * 1000, "b" * 1000)
    assert not list(tmp_path.glob(".*tmp*"))


def _write_many(path, letter, start):
    import time
    from pathlib import Path

    time.sleep(max(0.0, start - time.time()))
    writes = 0
    while time.time() < start + 2 or writes < 100:
        storage.write_atomic(Path(path), lambda tmp: tmp.write_text(letter * 1000))
        writes += 1


def test_write_atomic_leaves_no_temporary_file_when_interrupted(tmp_path):
    """Ctrl-C mid-write (KeyboardInterrupt) removes the temporary sibling; the target is untouched;
    an hour-old orphan a hard kill left is removed by the next write of the same file."""
    import os
    import time

    import pytest

    from latco.storage import write_atomic

    target = tmp_path / "fig.pdf"
    target.write_text("old")

    def interrupted(tmp):
        tmp.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_atomic(target, interrupted)
    assert target.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["fig.pdf"]
    orphan, fresh = tmp_path / ".fig.pdf.aaaa.tmp.pdf", tmp_path / ".fig.pdf.bbbb.tmp.pdf"
    orphan.write_text("killed"), fresh.write_text("another writer, now")
    os.utime(orphan, (time.time() - 7200, time.time() - 7200))
    write_atomic(target, lambda tmp: tmp.write_text("new"))
    assert target.read_text() == "new" and not orphan.exists() and fresh.exists()
