"""Rebuild every figure and table of the paper: `snakemake --cores 4 all [--config profile=...]`.

Any profile setting can be changed for one rebuild by its dotted path (latco/paper/settings.py):

    snakemake --cores 4 all --config profile=quick set="planners.latco.iterations=100 task_train_steps.obstacle=9000"

(Snakemake's --config takes no dots in a key, hence `set=`; nested YAML works too:
`--config 'planners={latco: {iterations: 100}}'`, or a file with --configfile.) Each rule passes a
digest of the settings its job depends on as `params`, so Snakemake re-runs exactly the jobs a
changed setting affects, and what reads their results.

Each rule runs one notebook through papermill (latco.paper.workflow: written to a temporary file and
renamed when done, so a killed run re-runs only unfinished jobs, and those resume inside).
Executed notebooks go to <results>/notebooks/, figures and tables to the figures directory.
The tasks, planners and seeds of each stage come from the profile (latco/paper/profiles.py).
"""

import json
import re
import shlex
import sys
from dataclasses import asdict
from pathlib import Path

from latco.paper import paths, results, settings
from latco.paper.profiles import get_profile
from latco.envs import TASKS
from latco.paper.manifest import FIG3_PLANNER, FIG4_PLANNERS, FIGURES
from latco.planners import available_planners


configfile: "config/config.yaml"


PROFILE = config["profile"]
# online seeds per (task, planner): the profile's (quick 1, paper 3) unless --config seeds=N
SEEDS = config.get("seeds")
WORKFLOW_KEYS = {"profile", "results_root", "figures_dir", "seed", "seeds", "set"}
# every other config key is a profile setting: nested (planners={latco: {iterations: 7}}) or set="a.b=1 c.d=2"
OVERRIDES = {**settings.flatten({k: v for k, v in config.items() if k not in WORKFLOW_KEYS}),
             **settings.parse_assignments(config.get("set"))}
PROF = get_profile(PROFILE).with_overrides(OVERRIDES).with_seeds(SEEDS)
OVR = shlex.quote(json.dumps(settings.jsonable(PROF.overrides)))  # one papermill parameter, checked types
R = Path(config.get("results_root") or "results") / PROFILE
FIG = Path(config["figures_dir"]) if config.get("figures_dir") else paths.figures_dir(PROFILE)
if FIG.is_absolute() and FIG.is_relative_to(Path.cwd()):
    FIG = FIG.relative_to(Path.cwd())  # so `snakemake figures/fig3_trajectories.png` names a target
NB = R / "notebooks"
LOGS = R / "logs"
SEED = config.get("seed", 0)
GPU = PROF.gpu  # the paper profile's models and planners want a GPU; quick and smoke run on CPUs
# On CPUs one thread per job, so two jobs share 2 cores: torch's second thread buys little on these
# small models and busy-waits whenever another job runs (measured). With a GPU, feed it with 4.
HEAVY_THREADS = 4 if GPU else 1
RUN = f"{sys.executable} -m latco.paper.workflow"  # the Python that runs snakemake (the venv)
COMMON = f"-p profile {PROFILE} -p results {R} -p seed {SEED} -p overrides {OVR}"

# (task, planner, model seed, T_cache or None): every planner on every model of a task, then the
# closed-loop evaluations beyond the paper (latco/paper/profiles.py: task_models, closed_loop)
OFFLINE = PROF.offline_runs(SEED)
EXTRA_MODELS = [(t, s) for t in TASKS for s in PROF.model_seeds(t, SEED) if s != SEED]
ONLINE = PROF.online_runs()


wildcard_constraints:  # "obstacle_seed1" is a model folder, not a task; "latco_tcache10" an evaluation
    task="|".join(TASKS), planner="|".join(re.escape(p) for p in available_planners()), mseed=r"\d+",
    tcache=r"\d+"

def minutes(quick_hours: float, paper_hours: float) -> int:
    """A rule's runtime limit for clusters, in minutes (Snakemake's unit): generous for the profile."""
    return int(60 * (paper_hours if PROFILE == "paper" else quick_hours if PROFILE == "quick" else 0.1)) + 10


# The result files each producer rule marks finished (latco.paper.results): consumers depend on them.
def data_done(task): return results.data_done(R, task)
def model_done(task, seed=SEED): return results.model_done(R, task, seed)
def offline_done(task, planner, mseed=SEED, tcache=None): return results.offline_done(R, task, planner, mseed, tcache)
def offline_nb(task, planner, mseed=SEED, tcache=None):
    """03_offline_<task>_<planner>.ipynb; _seed<k> for another model, _tcache<n> for a closed-loop run."""
    name = f"03_offline_{task}_{planner}" + ("" if str(mseed) == str(SEED) else f"_seed{mseed}")
    return NB / (name + ("" if tcache is None else f"_tcache{tcache}") + ".ipynb")
def online_done(task, planner, seed): return results.online_done(R, task, planner, seed)


# What each job's result depends on (latco.paper.settings), as a digest: Snakemake's params trigger re-runs
# a job whose digest changed since its last run, and then everything that reads its output.
# (result_digest: an option added to the code since a result was made, at its default, keeps its digest)
def data_params(w):
    return settings.result_digest(paths.data_dir(R, w.task), settings.data_settings(PROF, w.task, SEED))
def model_params(w):
    mseed = int(w.get("mseed", SEED))
    return settings.result_digest(paths.model_dir(R, w.task, mseed),
                                  settings.model_settings(PROF, w.task, mseed, data_seed=SEED))
def offline_params(w):
    tcache = int(w.tcache) if "tcache" in w.keys() else None
    mseed = int(w.get("mseed", SEED))
    return settings.result_digest(paths.offline_dir(R, w.task, w.planner, mseed, tcache),
                                  settings.offline_settings(PROF, w.task, w.planner, mseed, tcache, data_seed=SEED))
def online_params(w):  # an offline -> online run depends on the offline model too: a new one re-makes it
    return settings.result_digest(paths.online_dir(R, w.task, w.planner, int(w.seed)),
                                  settings.online_settings(PROF, w.task, w.planner, int(w.seed), SEED))
def online_inputs(w):
    """Offline -> online runs start from the task's offline data and model; from-scratch runs from the
    seed episodes and first model that every planner's run of the seed shares (made once)."""
    if PROF.online_for(w.task).start == "offline":
        return [data_done(w.task), model_done(w.task)]
    return [results.seed_phase_done(R, w.task, w.seed)]
def seed_phase_params(w):
    return settings.result_digest(paths.online_seed_phase_dir(R, w.task, w.seed),
                                  settings.seed_phase_settings(PROF, w.task, int(w.seed)))
LATCO_PARAMS = settings.digest(settings.planner_settings(PROF, "latco"))  # Figs. 1, 5, 7 plan with it
TIMING_PARAMS = settings.digest({"planners": {p: settings.planner_settings(PROF, p) for p in sorted(PROF.planners)},
                                 "timing": asdict(PROF.timing), "world_model": asdict(PROF.world_model)})


rule all:
    # the results too, not only the figures made from them: Snakemake re-makes a deleted file only
    # when something asks for it (an intermediate file may be gone, as temp() files are)
    input:
        [FIG / f for files in FIGURES.values() for f in files],
        [offline_nb(*run) for run in OFFLINE],
        [data_done(t) for t in TASKS], [model_done(t, s) for t in TASKS for s in PROF.model_seeds(t, SEED)],
        [offline_done(*run) for run in OFFLINE], [online_done(t, p, s) for t, p, s in ONLINE],


rule data:
    output: data_done("{task}"), nb=NB / "01_data_{task}.ipynb"
    log: LOGS / "01_data_{task}.log"
    benchmark: R / "benchmarks" / "01_data_{task}.tsv"
    # Sawyer collection is render-bound and runs 2 processes (1.86x on 2 cores); Obstacle gains only
    # 1.27x and runs 1. Each job is declared 1 thread all the same: a 2-thread job waits until both
    # cores are free at once, and Snakemake kept filling single free cores with 1-thread online runs
    # (2026-12-02: the Sawyer data had not started 20 min into a rebuild); its second process
    # shares the CPU with whatever else runs instead
    threads: 1
    params: workers=lambda wildcards: 1 if wildcards.task == "obstacle" else 2, settings=data_params
    priority: 10  # minutes each, and everything offline waits on it: before two 1-thread online jobs
    resources: mem_mb=4000, runtime=minutes(0.3, 3)
    shell: "{RUN} notebooks/01_data.ipynb {output.nb} --threads 1 {COMMON} -p task {wildcards.task} "
           "-p workers {params.workers} > {log} 2>&1"


rule world_model:
    input: data_done("{task}")
    output: model_done("{task}"), FIG / "world_model_open_loop_{task}.png", FIG / "world_model_open_loop_{task}.pdf",
        nb=NB / "02_world_model_{task}.ipynb"
    log: LOGS / "02_world_model_{task}.log"
    benchmark: R / "benchmarks" / "02_world_model_{task}.tsv"
    threads: HEAVY_THREADS
    priority: 5  # every offline evaluation and three figures wait on the models
    params: settings=model_params
    resources: mem_mb=8000, runtime=minutes(1, 24), gpu=int(GPU),
        slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/02_world_model.ipynb {output.nb} --threads {threads} {COMMON} -p task {wildcards.task} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule world_model_seed:  # the task's other models (task_models): same data, another training seed, no figure
    input: data_done("{task}")
    output: model_done("{task}", "{mseed}"), nb=NB / "02_world_model_{task}_seed{mseed}.ipynb"
    log: LOGS / "02_world_model_{task}_seed{mseed}.log"
    benchmark: R / "benchmarks" / "02_world_model_{task}_seed{mseed}.tsv"
    threads: HEAVY_THREADS
    # below the first models: the Sawyer models and their long evaluations and online runs start
    # before a task's extra models, whose shorter evaluations then fill the end of a rebuild
    priority: 4
    params: settings=model_params
    resources: mem_mb=8000, runtime=minutes(1, 24), gpu=int(GPU),
        slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/02_world_model.ipynb {output.nb} --threads {threads} {COMMON} -p task {wildcards.task} "
           "-p model_seed {wildcards.mseed} > {log} 2>&1"


ruleorder: world_model > world_model_seed  # with --config seed=k the first model is <task>_seed<k>


OFFLINE_RESOURCES = dict(mem_mb=4000, runtime=minutes(0.5, 12), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else "")
OFFLINE_SHELL = ("{RUN} notebooks/03_offline_planning.ipynb {output.nb} --threads {threads} {COMMON} "
                 "-p task {wildcards.task} -p planner {wildcards.planner} {params.extra} > {log} 2>&1")


rule offline:  # Table 2 as the paper runs it, on the first model
    input: model_done("{task}")
    output: offline_done("{task}", "{planner}"), nb=offline_nb("{task}", "{planner}")
    log: LOGS / "03_offline_{task}_{planner}.log"
    benchmark: R / "benchmarks" / "03_offline_{task}_{planner}.tsv"
    params: settings=offline_params, extra=""
    threads: 1
    resources: **OFFLINE_RESOURCES
    shell: OFFLINE_SHELL


rule offline_seed:  # ... on the task's other models
    input: model_done("{task}", "{mseed}")
    output: offline_done("{task}", "{planner}", "{mseed}"), nb=NB / "03_offline_{task}_{planner}_seed{mseed}.ipynb"
    log: LOGS / "03_offline_{task}_{planner}_seed{mseed}.log"
    benchmark: R / "benchmarks" / "03_offline_{task}_{planner}_seed{mseed}.tsv"
    params: settings=offline_params, extra=lambda w: f"-p model_seed {w.mseed}"
    threads: 1
    resources: **OFFLINE_RESOURCES
    shell: OFFLINE_SHELL


rule offline_closed_loop:  # beyond the paper: re-planning every T_cache steps (closed_loop), first model
    input: model_done("{task}")
    output: offline_done("{task}", "{planner}", SEED, "{tcache}"),
        nb=NB / "03_offline_{task}_{planner}_tcache{tcache}.ipynb"
    log: LOGS / "03_offline_{task}_{planner}_tcache{tcache}.log"
    benchmark: R / "benchmarks" / "03_offline_{task}_{planner}_tcache{tcache}.tsv"
    params: settings=offline_params, extra=lambda w: f"-p t_cache {w.tcache}"
    threads: 1
    resources: **OFFLINE_RESOURCES
    shell: OFFLINE_SHELL


ruleorder: offline > offline_seed


rule online:
    input: online_inputs
    output: online_done("{task}", "{planner}", "{seed}"), nb=NB / "04_online_{task}_{planner}_seed{seed}.ipynb"
    log: LOGS / "04_online_{task}_{planner}_seed{seed}.log"
    benchmark: R / "benchmarks" / "04_online_{task}_{planner}_seed{seed}.tsv"
    threads: 1
    priority: 1  # the longest jobs, needed only by the tables: start them early, not last
    params: settings=online_params
    resources: mem_mb=8000, runtime=minutes(1, 48), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/04_online_training.ipynb {output.nb} --threads {threads} -p profile {PROFILE} "
           "-p results {R} -p seed {wildcards.seed} -p task {wildcards.task} -p planner {wildcards.planner} "
           "-p overrides {OVR} > {log} 2>&1"


rule online_seed_phase:
    # Algorithm 1's seed episodes and first training, the same for every planner's run of a seed
    output: results.seed_phase_done(R, "{task}", "{seed}")
    log: LOGS / "04_online_{task}_seed_phase_seed{seed}.log"
    benchmark: R / "benchmarks" / "04_online_{task}_seed_phase_seed{seed}.tsv"
    threads: 1
    priority: 2  # the online runs of its seed wait for it
    params: settings=seed_phase_params
    resources: mem_mb=4000, runtime=minutes(0.5, 6), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{sys.executable} -m latco.paper.online --task {wildcards.task} --seed {wildcards.seed} "
           "--profile {PROFILE} --results {R} --overrides {OVR} --threads {threads} > {log} 2>&1"


rule tasks_figure:
    output: [FIG / f for f in FIGURES["00_tasks"]], nb=NB / "00_tasks.ipynb"
    log: LOGS / "00_tasks.log"
    benchmark: R / "benchmarks" / "00_tasks.tsv"
    threads: 1
    resources: mem_mb=2000, runtime=minutes(0.1, 0.1)
    shell: "{RUN} notebooks/00_tasks.ipynb {output.nb} --threads {threads} -p profile {PROFILE} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule plan_optimization:
    input: model_done("obstacle"), data_done("obstacle")
    output: [FIG / f for f in FIGURES["10_plan_optimization"]], nb=NB / "10_plan_optimization.ipynb"
    log: LOGS / "10_plan_optimization.log"
    benchmark: R / "benchmarks" / "10_plan_optimization.tsv"
    params: settings=LATCO_PARAMS
    threads: 1
    resources: mem_mb=4000, runtime=minutes(0.2, 1)
    shell: "{RUN} notebooks/10_plan_optimization.ipynb {output.nb} --threads {threads} {COMMON} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule trajectories:
    input: [offline_done(t, FIG3_PLANNER) for t in TASKS], [offline_done("push", p) for p in FIG4_PLANNERS],
        model_done("push")
    output: [FIG / f for f in FIGURES["11_trajectories"]], nb=NB / "11_trajectories.ipynb"
    log: LOGS / "11_trajectories.log"
    benchmark: R / "benchmarks" / "11_trajectories.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=minutes(0.2, 1)
    shell: "{RUN} notebooks/11_trajectories.ipynb {output.nb} --threads {threads} {COMMON} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule reward_heatmap:
    input: model_done("push")
    output: [FIG / f for f in FIGURES["12_reward_heatmap"]], nb=NB / "12_reward_heatmap.ipynb"
    log: LOGS / "12_reward_heatmap.log"
    benchmark: R / "benchmarks" / "12_reward_heatmap.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=minutes(0.2, 1)
    shell: "{RUN} notebooks/12_reward_heatmap.ipynb {output.nb} --threads {threads} {COMMON} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule tables:
    input:
        [offline_done(*run) for run in OFFLINE],
        [online_done(t, p, s) for t, p, s in ONLINE],
    output: [FIG / f for f in FIGURES["13_tables"]], nb=NB / "13_tables.ipynb"
    log: LOGS / "13_tables.log"
    benchmark: R / "benchmarks" / "13_tables.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=minutes(0.2, 1)
    params: seeds="" if SEEDS is None else f"-p seeds {int(SEEDS)}"
    shell: "{RUN} notebooks/13_tables.ipynb {output.nb} --threads {threads} {COMMON} -p fig_dir {FIG} "
           "{params.seeds} > {log} 2>&1"


rule planning_time:
    input: model_done("obstacle"), data_done("obstacle")
    output: [FIG / f for f in FIGURES["14_planning_time"]], nb=NB / "14_planning_time.ipynb"
    log: LOGS / "14_planning_time.log"
    benchmark: R / "benchmarks" / "14_planning_time.tsv"
    params: settings=TIMING_PARAMS
    threads: HEAVY_THREADS
    resources: mem_mb=8000, runtime=minutes(0.5, 2), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/14_planning_time.ipynb {output.nb} --threads {threads} -p profile {PROFILE} "
           "-p results {R} -p fig_dir {FIG} -p overrides {OVR} > {log} 2>&1"
