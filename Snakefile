"""Rebuild every figure and table of the paper: `snakemake --cores 4 all [--config profile=...]`.

Each rule runs one notebook through papermill (latco.workflow: written to a temporary file and
renamed when done, so a killed run re-runs only unfinished jobs, and those resume inside).
Executed notebooks go to <results>/notebooks/, figures and tables to the figures directory.
The tasks, planners and seeds of each stage come from the profile (latco/config.py).
"""

import sys
from pathlib import Path

from latco import paths
from latco.config import get_profile
from latco.envs import TASKS


configfile: "config/config.yaml"


PROFILE = config["profile"]
PROF = get_profile(PROFILE)
R = Path(config.get("results_root") or "results") / PROFILE
FIG = Path(config["figures_dir"]) if config.get("figures_dir") else paths.figures_dir(PROFILE)
if FIG.is_absolute() and FIG.is_relative_to(Path.cwd()):
    FIG = FIG.relative_to(Path.cwd())  # so `snakemake figures/fig3_trajectories.png` names a target
NB = R / "notebooks"
LOGS = R / "logs"
SEED = config.get("seed", 0)
GPU = PROFILE == "paper"  # the paper profile's models and planners want a GPU; quick and smoke run on CPUs
# On CPUs one thread per job, so two jobs share 2 cores: torch's second thread buys little on these
# small models and busy-waits whenever another job runs (NOTES). With a GPU, feed it with 4.
HEAVY_THREADS = 4 if GPU else 1
RUN = f"{sys.executable} -m latco.workflow"  # the Python that runs snakemake (the venv)
COMMON = f"-p profile {PROFILE} -p results {R} -p seed {SEED}"

OFFLINE = [(t, p) for t in TASKS for p in PROF.offline_planners]
ONLINE = [(t, p, s) for t in PROF.online_tasks for p in PROF.online_planners for s in PROF.online_seeds]
FIGURES = {
    "00_tasks": ["tasks.png", "tasks.pdf"],
    "10_plan_optimization": [f"{n}.{e}" for n in ("fig1_plan_optimization", "fig5_optimization", "fig7_multipliers")
                             for e in ("png", "pdf")] + ["fig1_plan_optimization.gif"],
    "11_trajectories": [f"{n}.{e}" for n in ("fig3_trajectories", "fig4_push_plans") for e in ("png", "pdf", "gif")],
    "12_reward_heatmap": ["fig8_reward_heatmap.png", "fig8_reward_heatmap.pdf"],
    "13_tables": [f"{n}.{e}" for n in ("table1_online", "table2_offline", "table3_predicted_vs_achieved")
                  for e in ("csv", "md")] + ["online_curves.png", "online_curves.pdf"],
    "14_planning_time": ["planning_time.csv", "planning_time.md", "planning_time.png", "planning_time.pdf",
                         "solver_scaling.png", "solver_scaling.pdf"],
}


def hours(quick: float, paper: float) -> int:
    """A rule's runtime limit in minutes (for clusters): generous for the profile at hand."""
    return int(60 * (paper if PROFILE == "paper" else quick if PROFILE == "quick" else 0.1)) + 10


rule all:
    input:
        [FIG / f for files in FIGURES.values() for f in files],
        [NB / f"03_offline_{t}_{p}.ipynb" for t, p in OFFLINE],


rule data:
    output: NB / "01_data_{task}.ipynb"
    log: LOGS / "01_data_{task}.log"
    benchmark: R / "benchmarks" / "01_data_{task}.tsv"
    # one collecting process per thread: Sawyer collection is render-bound (1.86x on 2 cores);
    # Obstacle gains 1.27x, not worth a 2-thread job that waits for both cores to be free
    threads: lambda wildcards: 1 if wildcards.task == "obstacle" else 2
    priority: 10  # minutes each, and everything offline waits on it: before two 1-thread online jobs
    resources: mem_mb=4000, runtime=hours(0.3, 3)
    shell: "{RUN} notebooks/01_data.ipynb {output} --threads 1 {COMMON} -p task {wildcards.task} "
           "-p workers {threads} > {log} 2>&1"


rule world_model:
    input: NB / "01_data_{task}.ipynb"
    output: NB / "02_world_model_{task}.ipynb"
    log: LOGS / "02_world_model_{task}.log"
    benchmark: R / "benchmarks" / "02_world_model_{task}.tsv"
    threads: HEAVY_THREADS
    priority: 5  # every offline evaluation and three figures wait on the models
    resources: mem_mb=8000, runtime=hours(1, 24), gpu=int(GPU),
        slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/02_world_model.ipynb {output} --threads {threads} {COMMON} -p task {wildcards.task} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule offline:
    input: NB / "02_world_model_{task}.ipynb"
    output: NB / "03_offline_{task}_{planner}.ipynb"
    log: LOGS / "03_offline_{task}_{planner}.log"
    benchmark: R / "benchmarks" / "03_offline_{task}_{planner}.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=hours(0.5, 12), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/03_offline_planning.ipynb {output} --threads {threads} {COMMON} "
           "-p task {wildcards.task} -p planner {wildcards.planner} > {log} 2>&1"


rule online:
    output: NB / "04_online_{task}_{planner}_seed{seed}.ipynb"
    log: LOGS / "04_online_{task}_{planner}_seed{seed}.log"
    benchmark: R / "benchmarks" / "04_online_{task}_{planner}_seed{seed}.tsv"
    threads: 1
    priority: 1  # the longest jobs, needed only by the tables: start them early, not last
    resources: mem_mb=8000, runtime=hours(1, 48), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/04_online_training.ipynb {output} --threads {threads} -p profile {PROFILE} "
           "-p results {R} -p seed {wildcards.seed} -p task {wildcards.task} -p planner {wildcards.planner} "
           "> {log} 2>&1"


rule tasks_figure:
    output: [FIG / f for f in FIGURES["00_tasks"]], nb=NB / "00_tasks.ipynb"
    log: LOGS / "00_tasks.log"
    benchmark: R / "benchmarks" / "00_tasks.tsv"
    threads: 1
    resources: mem_mb=2000, runtime=hours(0.1, 0.1)
    shell: "{RUN} notebooks/00_tasks.ipynb {output.nb} --threads {threads} -p profile {PROFILE} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule plan_optimization:
    input: NB / "02_world_model_obstacle.ipynb"
    output: [FIG / f for f in FIGURES["10_plan_optimization"]], nb=NB / "10_plan_optimization.ipynb"
    log: LOGS / "10_plan_optimization.log"
    benchmark: R / "benchmarks" / "10_plan_optimization.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=hours(0.2, 1)
    shell: "{RUN} notebooks/10_plan_optimization.ipynb {output.nb} --threads {threads} {COMMON} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule trajectories:
    input: [NB / f"03_offline_{t}_latco.ipynb" for t in TASKS], NB / "03_offline_push_cem.ipynb"
    output: [FIG / f for f in FIGURES["11_trajectories"]], nb=NB / "11_trajectories.ipynb"
    log: LOGS / "11_trajectories.log"
    benchmark: R / "benchmarks" / "11_trajectories.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=hours(0.2, 1)
    shell: "{RUN} notebooks/11_trajectories.ipynb {output.nb} --threads {threads} {COMMON} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule reward_heatmap:
    input: NB / "02_world_model_push.ipynb"
    output: [FIG / f for f in FIGURES["12_reward_heatmap"]], nb=NB / "12_reward_heatmap.ipynb"
    log: LOGS / "12_reward_heatmap.log"
    benchmark: R / "benchmarks" / "12_reward_heatmap.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=hours(0.2, 1)
    shell: "{RUN} notebooks/12_reward_heatmap.ipynb {output.nb} --threads {threads} {COMMON} "
           "-p fig_dir {FIG} > {log} 2>&1"


rule tables:
    input:
        [NB / f"03_offline_{t}_{p}.ipynb" for t, p in OFFLINE],
        [NB / f"04_online_{t}_{p}_seed{s}.ipynb" for t, p, s in ONLINE],
    output: [FIG / f for f in FIGURES["13_tables"]], nb=NB / "13_tables.ipynb"
    log: LOGS / "13_tables.log"
    benchmark: R / "benchmarks" / "13_tables.tsv"
    threads: 1
    resources: mem_mb=4000, runtime=hours(0.2, 1)
    shell: "{RUN} notebooks/13_tables.ipynb {output.nb} --threads {threads} {COMMON} -p fig_dir {FIG} > {log} 2>&1"


rule planning_time:
    input: NB / "02_world_model_obstacle.ipynb"
    output: [FIG / f for f in FIGURES["14_planning_time"]], nb=NB / "14_planning_time.ipynb"
    log: LOGS / "14_planning_time.log"
    benchmark: R / "benchmarks" / "14_planning_time.tsv"
    threads: HEAVY_THREADS
    resources: mem_mb=8000, runtime=hours(0.5, 2), gpu=int(GPU), slurm_extra="'--gres=gpu:1'" if GPU else ""
    shell: "{RUN} notebooks/14_planning_time.ipynb {output.nb} --threads {threads} -p profile {PROFILE} "
           "-p results {R} -p fig_dir {FIG} > {log} 2>&1"
