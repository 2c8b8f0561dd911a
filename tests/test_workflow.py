"""The Snakemake workflow: dry runs for the cluster and quick profiles, and the smoke profile end to
end: interrupted mid-run (Ctrl-C), re-run to completion without redoing finished jobs, then up to date.

(After a SIGKILL instead, Snakemake may also re-run the jobs that finished in its last moments,
whose completion it had not yet recorded; the notebooks resume, so that costs seconds.)"""

import os
import signal
import subprocess
import sys
import time

import pytest

from latco.paper import manifest
from latco.paper.paths import ROOT

SNAKEMAKE = [sys.executable, "-m", "snakemake", "--nolock"]  # --nolock: a user's own run may hold the lock


def targets(profile: str) -> list[str]:
    """Every figure and table file `all` asks for (the manifest the Snakefile reads)."""
    return manifest.all_files()


def dry_run(*args: str) -> str:
    out = subprocess.run([*SNAKEMAKE, "-n", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout + out.stderr


def test_slurm_profile_dry_run_plans_the_paper_profile():
    log = dry_run("--profile", "profiles/slurm", "all", "--config", "profile=paper")
    # 3 tasks x 3 planners offline, 3 tasks x 3 planners x 3 seeds online
    for rule, count in [("data", 3), ("world_model", 3), ("offline", 9), ("online", 27), ("tables", 1)]:
        assert any(line.split() == [rule, str(count)] for line in log.splitlines()), (rule, log[-2000:])


def test_quick_dry_run_makes_every_figure_and_table(tmp_path):
    log = dry_run("all", "--config", "profile=quick", f"results_root={tmp_path}",
                  f"figures_dir={tmp_path}/fig")
    for name in targets("quick"):
        assert f"{tmp_path}/fig/{name}" in log, name


def job_counts(log: str) -> dict[str, int]:
    """Snakemake's "Job stats" table of a dry run: jobs per rule."""
    stats = log[log.index("Job stats:"):].splitlines()[3:]  # after the header and its dashes
    jobs = {}
    for line in stats:
        if len(line.split()) != 2 or not line.split()[1].isdigit():
            break
        jobs[line.split()[0]] = int(line.split()[1])
    return jobs


def test_quick_runs_every_task_online_and_seeds_3_gives_the_papers_seeds(tmp_path):
    # quick: Obstacle x 3 planners, Reach and Push x LatCo and CEM, one seed each; --config seeds=3:
    # the paper's 3 seeds per (task, planner) of the same grid
    for extra, runs in [([], 7), (["seeds=3"], 21)]:
        log = dry_run("all", "--config", "profile=quick", f"results_root={tmp_path}",
                      f"figures_dir={tmp_path}/fig", *extra)
        assert job_counts(log)["online"] == runs, log[-1500:]
        # one seed phase per (from-scratch task, seed), shared by its planners' runs
        assert job_counts(log)["online_seed_phase"] == runs // 7, log[-1500:]
        for task in ("obstacle", "reach", "push"):
            assert f"04_online_{task}_latco_seed0.ipynb" in log
        assert "04_online_push_gd_seed" not in log and "04_online_obstacle_gd_seed0.ipynb" in log
        assert ("04_online_push_cem_seed2.ipynb" in log) == (runs == 21)
        assert ("04_online_obstacle_cem_seed2.ipynb" in log) == (runs == 21)
        assert ("-p seeds 3" in log) == (runs == 21)  # the tables notebook reads the same runs


def test_smoke_workflow_survives_a_kill_then_is_up_to_date(tmp_path):
    figures, notebooks = tmp_path / "figures", tmp_path / "smoke" / "notebooks"
    command = [*SNAKEMAKE, "--cores", "2", "all", "--config", "profile=smoke", f"results_root={tmp_path}",
               f"figures_dir={figures}"]
    run = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    deadline = time.time() + 600
    while len(list(notebooks.glob("0*.ipynb"))) < 3 and run.poll() is None and time.time() < deadline:
        time.sleep(0.5)
    time.sleep(3)
    killed_at = time.time_ns()
    os.killpg(run.pid, signal.SIGINT)  # Ctrl-C in a terminal: snakemake and its running jobs, mid-run
    try:
        run.wait(timeout=120)
    except subprocess.TimeoutExpired:  # once, on a loaded CI machine, a job hung in shutdown (2.6 s when
        os.killpg(run.pid, signal.SIGTERM)  # measured): stop it as a user would, with a second signal
        try:
            run.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(run.pid, signal.SIGKILL)
            run.wait()
    # jobs that ended in the last seconds before the interrupt may not be recorded as finished yet
    # (Snakemake polls its jobs), so only those done 2 s before it must be kept
    finished = {p: p.stat().st_mtime_ns for p in notebooks.glob("*.ipynb")
                if p.stat().st_mtime_ns < killed_at - 2_000_000_000}
    at_kill = len(list(notebooks.glob("*.ipynb")))
    assert len(finished) >= 2
    out = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    assert at_kill < len(list(notebooks.glob("*.ipynb")))  # it was really mid-run
    for path, mtime in finished.items():  # completed jobs were not redone
        assert path.stat().st_mtime_ns == mtime, path
    for name in targets("smoke"):
        assert (figures / name).stat().st_size > 0, name
    assert not list(tmp_path.rglob(".*.tmp*"))  # no half-written file left behind
    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and "Nothing to be done" in again.stdout + again.stderr
    # every result the workflow made records the settings it was made with
    from latco.paper import results, settings
    from latco.paper.profiles import get_profile

    smoke, tree = get_profile("smoke"), tmp_path / "smoke"
    assert smoke.model_seeds("obstacle") == (0, 1) and smoke.closed_loop == {"obstacle": 10}
    for task in ("obstacle", "reach", "push"):
        wanted = {results.data_done(tree, task): settings.data_settings(smoke, task)}
        wanted |= {results.model_done(tree, task, s): settings.model_settings(smoke, task, s, data_seed=0)
                   for s in smoke.model_seeds(task)}
        wanted |= {results.offline_done(tree, t, p, s, tc): settings.offline_settings(smoke, t, p, s, tc, 0)
                   for t, p, s, tc in smoke.offline_runs() if t == task}
        wanted |= {results.online_done(tree, t, p, k): settings.online_settings(smoke, t, p, k)
                   for t, p, k in smoke.online_runs() if t == task}
        for marker, expected in wanted.items():
            assert results.record(marker.parent)["settings"] == settings.jsonable(expected), marker
    # every figure a notebook writes shows in its executed copy, inline
    for name in ("10_plan_optimization", "11_trajectories", "12_reward_heatmap", "13_tables",
                 "14_planning_time"):
        pngs = [f for f in manifest.FIGURES[name] if f.endswith(".png")]
        assert len(inline_images(notebooks / f"{name}.ipynb")) >= len(pngs), name
    # a changed setting re-plans exactly the jobs that depend on it, and what reads their results:
    # LatCo's offline (on each model, and closed loop) and online runs, the figures and tables made
    # from them; no CEM or GD job
    latco = dry_run("all", "--config", "profile=smoke", f"results_root={tmp_path}", f"figures_dir={figures}",
                    "set=planners.latco.iterations=7")
    assert job_counts(latco) == {"offline": 3, "offline_seed": 1, "offline_closed_loop": 1, "online": 3,
                                 "plan_optimization": 1, "planning_time": 1, "tables": 1, "trajectories": 1,
                                 "all": 1, "total": 13}, latco[-2500:]
    commands = [line for line in latco.splitlines()
                if line.startswith("Shell command: ") and line != "Shell command: None"]
    assert len(commands) == 12 and not [c for c in commands if "_cem" in c or "_gd" in c], commands
    assert "params have changed" in latco.lower()
    assert """'{"planners.latco.iterations": 7}'""" in latco  # the notebooks get the override
    # results are the rules' outputs: deleting one offline table re-plans that evaluation and what
    # reads it (the tables), nothing else
    (tmp_path / "smoke" / "offline" / "obstacle" / "gd" / "table.csv").unlink()
    plan = dry_run("all", "--config", "profile=smoke", f"results_root={tmp_path}", f"figures_dir={figures}")
    assert job_counts(plan) == {"offline": 1, "tables": 1, "all": 1, "total": 3}, plan[-1500:]
    assert "03_offline_obstacle_gd.ipynb" in plan


def inline_images(notebook) -> list[str]:
    """The image outputs (PNG, GIF) of an executed notebook's cells."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return [kind for cell in nb.cells for out in cell.get("outputs", [])
            for kind in out.get("data", {}) if kind.startswith("image/")]


@pytest.mark.parametrize("bad", ["profile=huge", "set=planners.latco.iteratons=7"])
def test_an_unknown_profile_is_named(bad):
    out = subprocess.run([*SNAKEMAKE, "-n", "all", "--config", bad], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    expected = {"profile=huge": "unknown profile 'huge'",
                "set=planners.latco.iteratons=7": "unknown setting 'planners.latco.iteratons'"}[bad]
    assert out.returncode != 0 and expected in out.stdout + out.stderr


def test_saved_notebooks_keep_what_a_terminal_shows_of_progress_bars():
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from latco.paper.workflow import collapse_streams

    bars = [new_output("stream", name="stderr", text=f"\rtrain: {i}/3") for i in range(4)]
    outputs = [new_output("stream", name="stdout", text="config\n"), *bars,
               new_output("stream", name="stderr", text="\n"),
               new_output("stream", name="stdout", text="done\r\n"),
               new_output("execute_result", data={"text/plain": "1"}, execution_count=1)]
    nb = collapse_streams(new_notebook(cells=[new_code_cell("x", outputs=outputs)]))
    kept = nb.cells[0].outputs
    assert [(o.output_type, o.get("name"), o.get("text")) for o in kept] == [
        ("stream", "stdout", "config\n"), ("stream", "stderr", "train: 3/3\n"),
        ("stream", "stdout", "done\n"), ("execute_result", None, None)]
    nbformat.validate(nb)
