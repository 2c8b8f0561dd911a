"""Online training (Algorithm 1): a run killed mid-way resumes with no episode lost or duplicated."""

import dataclasses
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from latco.data import load_episodes
from latco.envs import task_spec
from latco.paper.analyses import cross_evaluation
from latco.paper.online import PHASES, phase_times
from latco.paper.profiles import get_profile
from latco.train import CHECKPOINT, load_checkpoint

RUN = textwrap.dedent(
    """
    import dataclasses, sys
    from latco.paper.profiles import get_profile
    from latco.paper.online import online_training

    smoke = get_profile("smoke")
    profile = dataclasses.replace(smoke, task_online={}, online=dataclasses.replace(
        smoke.online, seed_episodes=2, episodes=4, eval_every=2, eval_episodes=1))
    table = online_training(sys.argv[2], "latco", profile, sys.argv[1], seed=7, device="cpu", iterations=3)
    print(table.to_json())
    """
)


@pytest.mark.parametrize("task", ["obstacle", "reach"])  # a Sawyer run too: 150-step rendered episodes
def test_killed_online_run_resumes_without_losing_or_repeating_episodes(tmp_path, task):
    script = tmp_path / "run.py"
    script.write_text(RUN)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run_dir), task],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    target = run_dir / "episodes" / "ep_000003.npz"  # the second planner episode
    deadline = time.time() + 240
    while not target.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert target.exists(), proc.communicate()[1].decode()[-2000:]
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = {p.name for p in (run_dir / "episodes").glob("ep_*.npz")}
    assert "ep_000005.npz" not in before  # it really died mid-way

    done = subprocess.run([sys.executable, str(script), str(run_dir), task], capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    episodes = load_episodes(run_dir / "episodes")
    assert [e.seed for e in episodes] == [7 + i for i in range(6)]  # 2 seed + 4 planner episodes, once each
    assert not list((run_dir / "episodes").glob("*.tmp"))
    step = load_checkpoint(run_dir / "model" / CHECKPOINT)["step"]
    assert step == 4 + 4 * 2  # smoke: initial 4 gradient steps, then 2 per collected episode
    evals = sorted(p.name for p in run_dir.glob("eval_*"))
    assert evals == ["eval_0000", "eval_0002", "eval_0004"]
    # phases.csv: every phase timed; each planner episode's collection logged (a killed one is redone)
    times = phase_times(run_dir)
    assert list(times.index) == ["seed episodes", "train", "evaluate", "collect"]
    assert (times["seconds"] > 0).all()
    phases = pd.read_csv(run_dir / PHASES)
    assert set(phases.loc[phases["phase"] == "collect", "episodes_collected"]) == {1, 2, 3, 4}
    hold = 5  # smoke's seed_hold: seed actions change only every 5 steps, so the agent travels
    for e in episodes[:2]:
        blocks = e.actions.reshape(-1, hold, e.actions.shape[-1])
        assert np.array_equal(blocks, np.repeat(blocks[:, :1], hold, axis=1))
        assert len(np.unique(blocks[:, 0], axis=0)) == len(blocks)
    for e in episodes[2:]:  # planner episodes carry exploration noise, not the seed policy's uniform draws
        assert len(e) == task_spec(task).t_tot and np.abs(e.actions).max() <= 1

    # the final model, re-evaluated from scratch (cross_evaluation), repeats the run's last evaluation
    smoke = get_profile("smoke")
    profile = dataclasses.replace(smoke, online=dataclasses.replace(smoke.online, eval_episodes=1))
    again = cross_evaluation(task, {"run": run_dir / "model"}, ["latco"], profile, 1, device="cpu",
                             planner_overrides={"latco": {"iterations": 3}})
    last = pd.read_json(run_dir / "eval_0004" / "rows.jsonl", lines=True)
    assert again["success"].item() == last["success"].mean()
    assert again["return"].item() == pytest.approx(last["return"].mean(), rel=1e-6)



def test_offline_to_online_run_starts_from_the_offline_model_and_data(tmp_path):
    """start="offline": no seed episodes; the run's model continues the offline checkpoint (its steps
    plus train_steps_per_episode per collected episode) on the offline data plus the collected
    episodes; a re-trained offline model re-makes the run; a missing one is a clear error."""
    from latco.paper import offline, paths, recipe
    from latco.paper.online import online_evaluations, online_training
    from latco.paper.settings import read_record

    smoke = get_profile("smoke")
    profile = smoke.with_overrides({"online.start": "offline", "online.episodes": 2, "online.eval_every": 2,
                                    "online.eval_episodes": 1})
    assert profile.online.protocol == "offline → online"
    results, task = tmp_path / "results", "obstacle"
    run_dir = paths.online_dir(results, task, "latco", 3)
    with pytest.raises(FileNotFoundError, match="no finished offline world model of obstacle"):
        online_training(task, "latco", profile, run_dir, seed=3, device="cpu", iterations=2)

    episodes = recipe.oracle_data(task, profile, paths.data_dir(results, task), 0)
    model_dir = paths.model_dir(results, task)
    offline.world_model_for_task(task, profile, episodes["train"], model_dir, device="cpu")
    offline_steps = load_checkpoint(model_dir / CHECKPOINT)["step"]
    table = online_training(task, "latco", profile, run_dir, seed=3, device="cpu", iterations=2)
    assert list(table["episodes_collected"]) == [0, 2]
    collected = load_episodes(run_dir / "episodes")
    assert [e.seed for e in collected] == [3, 4]  # planner episodes only: the offline data is the seed data
    state = load_checkpoint(run_dir / "model" / CHECKPOINT)
    assert state["step"] == offline_steps + 2 * profile.online.train_steps_per_episode
    assert read_record(run_dir)["settings"]["offline_model"] == read_record(model_dir)["settings"]
    assert list(online_evaluations(run_dir)["episodes_collected"]) == [0, 2]
    # eval_at_start off: the offline model is not evaluated again, and Table 1 has no first value
    from latco.paper.tables import online_table

    skip = profile.with_overrides({"online.eval_at_start": False})
    skipped = online_training(task, "latco", skip, paths.online_dir(results, task, "latco", 5), seed=5,
                              device="cpu", iterations=2)
    assert list(skipped["episodes_collected"]) == [2]
    row = online_table({(task, "latco", 5): skipped}).iloc[0]
    assert row["success (first eval)"] == "n/a" and row["episodes collected"] == 2

    # the offline model trained further: the run is stale and is made again from the new model
    longer = profile.with_overrides({"train.steps": offline_steps + 4})
    offline.world_model_for_task(task, longer, episodes["train"], model_dir, device="cpu")
    with pytest.warns(UserWarning, match="offline_model"):
        online_training(task, "latco", longer, run_dir, seed=3, device="cpu", iterations=2)
    assert load_checkpoint(run_dir / "model" / CHECKPOINT)["step"] == offline_steps + 4 + 4
    assert (run_dir.parent / "seed3.replaced").exists()
    # a profile whose offline model differs from the one on disk never starts from it
    from latco.paper.settings import SettingsMismatch

    with pytest.raises(SettingsMismatch, match="train.steps"):
        online_training(task, "latco", profile, paths.online_dir(results, task, "latco", 4), seed=4,
                        device="cpu")


def test_runs_of_one_seed_share_a_seed_phase_bit_for_bit(tmp_path):
    """From scratch, every planner's run of a seed starts with the same seed episodes and first model:
    made once (``seed_phase``) and copied, a run ends exactly as one that made its own; a seed phase of
    other settings is not used; an offline -> online task has none."""
    import torch

    from latco.paper import paths
    from latco.paper.online import online_training, seed_phase
    from latco.paper.results import seed_phase_done

    smoke = get_profile("smoke")
    profile = smoke.with_overrides({"online.seed_episodes": 2, "online.episodes": 2, "online.eval_every": 2,
                                    "online.eval_episodes": 1})
    task, seed = "obstacle", 3
    alone = online_training(task, "latco", profile, tmp_path / "alone", seed=seed, device="cpu", iterations=2)

    results = tmp_path / "results"
    marker = seed_phase(task, profile, paths.online_seed_phase_dir(results, task, seed), seed, device="cpu")
    assert marker == seed_phase_done(results, task, seed)
    phase_step = load_checkpoint(marker.parent / "model" / CHECKPOINT)["step"]
    assert phase_step == profile.online.initial_train_steps
    run_dir = paths.online_dir(results, task, "latco", seed)
    shared = online_training(task, "latco", profile, run_dir, seed=seed, device="cpu", iterations=2)
    pd.testing.assert_frame_equal(shared, alone)
    a, b = (load_checkpoint(d / "model" / CHECKPOINT) for d in (tmp_path / "alone", run_dir))
    assert a["step"] == b["step"] == phase_step + 2 * profile.online.train_steps_per_episode
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    for x, y in zip(load_episodes(tmp_path / "alone" / "episodes"), load_episodes(run_dir / "episodes"),
                    strict=True):
        assert np.array_equal(x.images, y.images) and np.array_equal(x.actions, y.actions)
    # the run trained nothing of the seed phase itself: its first training phase took no gradient step
    first_train = pd.read_csv(run_dir / PHASES).query("phase == 'train'").iloc[0]
    assert first_train["seconds"] < 0.5 * pd.read_csv(tmp_path / "alone" / PHASES).query(
        "phase == 'train'").iloc[0]["seconds"]

    # a seed phase made with other settings is not used: the run makes its own
    other = profile.with_overrides({"online.initial_train_steps": profile.online.initial_train_steps + 2})
    run2 = paths.online_dir(results, task, "cem", seed)
    online_training(task, "cem", other, run2, seed=seed, device="cpu", iterations=2)
    assert load_checkpoint(run2 / "model" / CHECKPOINT)["step"] == phase_step + 2 + 2 * 2
    with pytest.raises(ValueError, match="no seed phase to share"):
        seed_phase("reach", smoke, tmp_path / "reach_phase", 0)
