"""Settings: a profile changed by dotted-path overrides, and the record each result keeps of what made it.

Overrides name any profile field by its path, the same everywhere:

    snakemake --cores 4 all --config set="planners.latco.iterations=100 task_train_steps.obstacle=9000"
    python -m latco.paper.produce --profile smoke --set planners.latco.iterations=100
    papermill notebooks/03_offline_planning.ipynb out.ipynb -p overrides '{planners.latco.iterations: 100}'
    apply_overrides(get_profile("quick"), {"planners.latco.iterations": 100})

An unknown path is an error listing the valid ones; a value is checked against the field's type.

Every result folder (offline data, world model, offline evaluation, online run) holds
``settings.json``: the settings the result depends on (``data_settings``, ``model_settings``,
``offline_settings``, ``online_settings``), the profile's name and overrides, the seed and the code
commit. A producer asked for a result whose folder was made with other settings never returns the
old result: it re-makes it or, where that would throw away a long run (data, a trained model), stops
with ``SettingsMismatch`` naming the differing settings and the fix. The Snakefile passes a digest
of the same settings to each rule as ``params``, so a changed override re-runs exactly the jobs it
affects.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import os
import shutil
import subprocess
import types
import typing
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any, Literal

import yaml

from latco.envs.tasks import TASKS, task_spec
from latco.storage import describe, differences, jsonable, write_atomic

if typing.TYPE_CHECKING:
    from latco.paper.profiles import Profile

SETTINGS_FILE = "settings.json"
"""The record of settings in every result folder."""

FIXED = ("name", "overrides")
"""Profile fields that overrides cannot change: the name says which profile was overridden."""


class SettingsError(ValueError):
    """An override names no setting, or gives a value of the wrong type."""


class SettingsMismatch(RuntimeError):
    """A result on disk was made with other settings than the ones asked for, and is kept."""


# ------------------------------------------------------------------------------------ overrides
def parse_assignments(items: Iterable[str] | str | None) -> dict[str, Any]:
    """``"a.b=1 c=x"`` or ``["a.b=1", "c=x"]`` -> ``{"a.b": 1, "c": "x"}`` (values read as YAML)."""
    if items is None:
        return {}
    if isinstance(items, str):
        items = _split_assignments(items) if "=" in items else [items]
    out = {}
    for item in items:
        key, sep, value = str(item).partition("=")
        if not sep or not key.strip():
            raise SettingsError(f"an override is written path=value (e.g. planners.latco.iterations=100), "
                                f"got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except yaml.YAMLError as error:
            raise SettingsError(f"the value of {item!r} is not valid YAML ({error.problem}); a list is "
                                "written [0.35,0.75]") from None
    return out


def _split_assignments(text: str) -> list[str]:
    """``"a=1, b=[0.3, 0.7] c=x"`` -> ``["a=1", "b=[0.3, 0.7]", "c=x"]``: whitespace and commas separate
    assignments except inside brackets (a list value)."""
    items, current, depth = [], "", 0
    for char in text:
        depth += {"[": 1, "(": 1, "{": 1, "]": -1, ")": -1, "}": -1}.get(char, 0)
        if depth <= 0 and (char.isspace() or char == ","):
            if current:
                items.append(current)
            current = ""
        else:
            current += char
    return items + ([current] if current else [])


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"planners": {"latco": {"iterations": 7}}}`` -> ``{"planners.latco.iterations": 7}``."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, path + "."))
        else:
            out[path] = value
    return out


def apply_overrides(profile: Profile, overrides: Mapping[str, Any] | None) -> Profile:
    """``profile`` with each ``path: value`` of ``overrides`` applied (dotted paths or nested dicts).

    The result remembers them (``Profile.overrides``), so every record names what was changed.
    Raises ``SettingsError`` for an unknown path (listing the valid ones) or a value of the wrong type.
    """
    if not overrides:
        return profile
    applied = dict(profile.overrides)
    for key, value in flatten(overrides).items():
        profile, value = _override(profile, key, value)
        applied[key] = value
    return replace(profile, overrides=applied)


def valid_paths(profile: Profile) -> list[str]:
    """The paths an override may name (``<...>`` for a choice of planner, task or option)."""
    from latco.paper.profiles import Profile

    out = []
    for f in dataclasses.fields(Profile):
        if f.name in FIXED:
            continue
        value = getattr(profile, f.name)
        if dataclasses.is_dataclass(value):
            out += [f"{f.name}.{g.name}" for g in dataclasses.fields(value)
                    if (f.name, g.name) != ("world_model", "action_size")]
        elif f.name == "planners":
            out.append("planners.<planner>.<option>")
        elif f.name in ("task_data", "task_online", "task_world_model"):
            out.append(f"{f.name}.<task>.<field>")
        elif f.name in PER_TASK:
            out.append(f"{f.name}.<task>")
        else:
            out.append(f.name)
    return out


PER_TASK: dict[str, Any] = {"task_train_steps": int, "task_models": int, "closed_loop": int,
                             "task_online_seeds": tuple[int, ...], "task_online_planners": tuple[str, ...]}
"""Profile fields that map a task to one value, overridden as ``<field>.<task>=value``."""


def _override(profile: Profile, key: str, value: Any) -> tuple[Profile, Any]:
    from latco.paper.profiles import Profile

    parts = key.split(".")
    hints = typing.get_type_hints(Profile)
    head = parts[0]
    if head not in hints or head in FIXED:
        raise SettingsError(f"unknown setting {key!r}; valid settings: {', '.join(valid_paths(profile))}")
    current = getattr(profile, head)
    if dataclasses.is_dataclass(current):
        inner, value = _replace_field(current, parts[1:], value, key)
        return replace(profile, **{head: inner}), value
    if head == "planners":
        return _override_planner(profile, parts, value, key)
    if head == "task_world_model":
        return _override_task_model(profile, parts, value, key)
    if head in ("task_data", "task_online", *PER_TASK):
        if len(parts) < 2 or parts[1] not in TASKS:
            raise SettingsError(f"{key!r}: name a task after {head} ({', '.join(TASKS)}), "
                                f"e.g. {head}.obstacle" + (".<field>" if head in ("task_data", "task_online")
                                                            else ""))
        task = parts[1]
        table = dict(getattr(profile, head))
        if head in ("task_data", "task_online"):
            base = table.get(task, profile.data if head == "task_data" else profile.online)
            inner, value = _replace_field(base, parts[2:], value, key)
            table[task] = inner
        else:
            if len(parts) != 2:
                raise SettingsError(f"unknown setting {key!r}; {head} takes a task: {head}.<task>")
            kind = PER_TASK[head]
            value = coerce(value, kind, key)
            if kind is int and value < 1:
                raise SettingsError(f"{key}={value}: expected a positive whole number")
            table[task] = value
        return replace(profile, **{head: table}), value
    if len(parts) != 1:
        raise SettingsError(f"unknown setting {key!r}: {head} has no fields")
    value = coerce(value, hints[head], key)
    return replace(profile, **{head: value}), value


def _override_task_model(profile: Profile, parts: list[str], value: Any, key: str) -> tuple[Profile, Any]:
    """``task_world_model.<task>.<field>=value``: one world-model field of one task."""
    from latco.model import WorldModelConfig
    from latco.paper.profiles import TASK_FIXED_MODEL_FIELDS, TASK_MODEL_FIELDS

    if len(parts) != 3 or parts[1] not in TASKS or parts[2] not in TASK_MODEL_FIELDS:
        raise SettingsError(f"unknown setting {key!r}; write task_world_model.<task>.<field> with a task "
                            f"({', '.join(TASKS)}) and a field of WorldModelConfig "
                            f"({', '.join(TASK_MODEL_FIELDS)}); "
                            f"{', '.join(TASK_FIXED_MODEL_FIELDS)} cannot differ per task")
    task, name = parts[1], parts[2]
    value = coerce(value, typing.get_type_hints(WorldModelConfig)[name], key)
    table = {t: dict(fields) for t, fields in profile.task_world_model.items()}
    table.setdefault(task, {})[name] = value
    return replace(profile, task_world_model=table), value


def _replace_field(obj: Any, rest: list[str], value: Any, key: str) -> tuple[Any, Any]:
    """``obj`` (a dataclass) with field ``rest[0]`` set to ``value``, checked against its type."""
    names = [f.name for f in dataclasses.fields(obj)]
    if key == "world_model.action_size":
        raise SettingsError("world_model.action_size is set per task (its action space); "
                            "it cannot be overridden")
    if len(rest) != 1 or rest[0] not in names:
        raise SettingsError(f"unknown setting {key!r}; valid fields of {type(obj).__name__}: "
                            f"{', '.join(names)}")
    value = coerce(value, typing.get_type_hints(type(obj))[rest[0]], key)
    try:
        return replace(obj, **{rest[0]: value}), value
    except (TypeError, ValueError) as err:
        raise SettingsError(f"{key}={value!r}: {err}") from None


def _override_planner(profile: Profile, parts: list[str], value: Any, key: str) -> tuple[Profile, Any]:
    from latco.planners import available_planners, planner_config
    from latco.planners.base import _REGISTRY

    if len(parts) != 3 or parts[1] not in available_planners():
        raise SettingsError(f"{key!r}: planner overrides are planners.<planner>.<option>, with a planner "
                            f"from: {', '.join(available_planners())}")
    name, option = parts[1], parts[2]
    config_cls = _REGISTRY[name][0]
    fields = [f.name for f in dataclasses.fields(config_cls)]
    if option not in fields:
        raise SettingsError(f"unknown setting {key!r}; options of planner {name!r}: {', '.join(fields)}")
    value = coerce(value, typing.get_type_hints(config_cls)[option], key)
    options = {**profile.planners.get(name, {}), option: value}
    try:
        planner_config(name, **options)
    except (TypeError, ValueError) as err:
        raise SettingsError(f"{key}={value!r}: {err}") from None
    return replace(profile, planners={**profile.planners, name: options}), value


def coerce(value: Any, hint: Any, key: str) -> Any:
    """``value`` as type ``hint`` (int, float, bool, str, tuples, X | None, Literal), or SettingsError.

    Strings are read as YAML first (the command line gives strings): "7" -> 7, "null" -> None.
    An int setting takes no fraction and no bool: 2.5 for an iteration count is an error.
    """
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if isinstance(value, str) and hint is not str and origin is not Literal:
        parsed = yaml.safe_load(value) if value.strip() else None
        if not (isinstance(parsed, str) and _is_tuple(hint)):
            value = parsed
        if isinstance(value, str) and hint is float:  # YAML 1.1 reads "1e-3" (no dot) as text
            try:
                value = float(value)
            except ValueError:
                pass
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(value, arg, key)
            except SettingsError as err:
                errors.append(str(err))
        raise SettingsError(errors[0] if errors else f"{key}: cannot take {value!r}")
    if origin is Literal:
        if value not in args:
            raise SettingsError(f"{key}={value!r}: choose one of {', '.join(map(repr, args))}")
        return value
    if _is_tuple(hint):
        item = args[0] if args else Any
        if isinstance(value, str):
            value = [v for v in value.replace(",", " ").split() if v]
        if not isinstance(value, list | tuple):
            value = [value]
        return tuple(coerce(v, item, key) for v in value) if item is not Any else tuple(value)
    if hint is bool:
        if not isinstance(value, bool):
            raise SettingsError(f"{key}={value!r}: expected true or false")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingsError(f"{key}={value!r}: expected a whole number, got {type(value).__name__}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise SettingsError(f"{key}={value!r}: expected a number, got {type(value).__name__}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SettingsError(f"{key}={value!r}: expected text, got {type(value).__name__}")
        return value
    return value


def _is_tuple(hint: Any) -> bool:
    return hint is tuple or typing.get_origin(hint) is tuple


# ------------------------------------------------------------------------------- what a result is
def data_settings(profile: Profile, task: str, seed: int = 0) -> dict[str, Any]:
    """What the offline data of ``task`` depends on (``latco.paper.recipe.oracle_data``)."""
    return {"task": task_spec(task).name, "seed": int(seed), "image_size": profile.world_model.image_size,
            "data": asdict(profile.data_for(task))}


DATA_COUNTS = ("data.episodes", "data.random_episodes", "data.greedy_episodes", "data.dash_episodes",
               "data.decoy_episodes", "data.heldout")
"""Episode counts: a data folder serves any count (collected episodes are kept, a prefix is used)."""


def model_settings(profile: Profile, task: str, seed: int = 0, steps: int | None = None,
                   data_seed: int | None = None) -> dict[str, Any]:
    """What the offline world model of ``task`` depends on (``latco.paper.offline.world_model_for_task``):
    trained with ``seed`` on the data of ``data_seed`` (None: ``seed``)."""
    train = replace(profile.train_for(task), seed=int(seed))
    if steps is not None:
        train = replace(train, steps=int(steps))
    return {"task": task_spec(task).name, "seed": int(seed),
            "world_model": asdict(profile.world_model_for(task)),
            "train": asdict(train),
            "data": data_settings(profile, task, seed if data_seed is None else data_seed)}


MODEL_BOOKKEEPING = ("train.checkpoint_every", "train.log_every")
"""Training settings that do not change the trained weights."""


def planner_settings(profile: Profile, planner: str, **overrides: Any) -> dict[str, Any]:
    """Every option of ``planner`` at the profile's budget (its config, with ``overrides``)."""
    from latco.planners import planner_config

    config = planner_config(planner, **{**profile.planners.get(planner, {}), **overrides})
    return {"planner": planner, "options": jsonable(asdict(config))}


def offline_settings(profile: Profile, task: str, planner: str, seed: int | None = 0,
                     t_cache: int | None = None, data_seed: int | None = None,
                     **planner_overrides: Any) -> dict[str, Any]:
    """What the offline evaluation of ``planner`` on ``task`` depends on (Tables 2 and 3): the planner,
    the episodes, ``t_cache`` (None: the task's, not recorded) and the profile's offline model trained
    with ``seed`` on the data of ``data_seed`` (``model_settings``; seed None: a model from elsewhere)."""
    from latco.paper.offline import OFFLINE_EVAL_SEED

    out = {"task": task_spec(task).name, **planner_settings(profile, planner, **planner_overrides),
           "episodes": profile.offline_episodes(task, t_cache), "eval_seed": OFFLINE_EVAL_SEED,
           "model": None if seed is None else model_settings(profile, task, seed, data_seed=data_seed)}
    if t_cache is not None:
        out["t_cache"] = int(t_cache)
    return out


def online_settings(profile: Profile, task: str, planner: str, seed: int = 0, model_seed: int = 0,
                    **planner_overrides: Any) -> dict[str, Any]:
    """What one online run (Algorithm 1) of ``planner`` on ``task`` depends on (Table 1); a run that
    starts offline (``OnlineConfig.start``) also depends on the offline model (seed ``model_seed``)."""
    from latco.paper.online import ONLINE_EVAL_SEED
    out = {"task": task_spec(task).name, **planner_settings(profile, planner, **planner_overrides),
           "seed": int(seed),
           "world_model": asdict(profile.world_model_for(task)),
           "train": asdict(replace(profile.train, steps=0, seed=int(seed))),
           "online": asdict(profile.online_for(task)), "eval_seed": ONLINE_EVAL_SEED}
    if profile.online_for(task).start == "offline":
        out["offline_model"] = model_settings(profile, task, model_seed)
    return out


def seed_phase_settings(profile: Profile, task: str, seed: int = 0) -> dict[str, Any]:
    """What the planner-independent start of a from-scratch online run depends on: its seed episodes
    and the world model trained on them for ``initial_train_steps`` (``latco.paper.online.seed_phase``)."""
    cfg = profile.online_for(task)
    return {"task": task_spec(task).name, "seed": int(seed),
            "world_model": asdict(profile.world_model_for(task)),
            "train": asdict(replace(profile.train, steps=0, seed=int(seed))),
            "seed_phase": {"seed_episodes": cfg.seed_episodes, "seed_hold": cfg.seed_hold,
                           "initial_train_steps": cfg.initial_train_steps}}


def digest(settings: Any) -> str:
    """A short stable hash of ``settings`` (the Snakefile's ``params``: equal settings, equal digest)."""
    text = json.dumps(jsonable(settings), sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def result_digest(folder: str | os.PathLike, settings: Mapping[str, Any]) -> str:
    """The Snakefile's ``params`` for the result in ``folder``: ``digest(settings)``, unless the folder
    records settings that make the same result (``changed`` finds no difference: at most options
    added to the code since, at their defaults), whose digest it then keeps. So a new option does not
    make Snakemake re-run every job whose settings now list it, while any real change still does."""
    record = read_record(folder)
    if record is not None and not changed(record["settings"], jsonable(settings)):
        return digest(record["settings"])
    return digest(settings)




# ---------------------------------------------------------------------------------------- records
CODE_PATHS = ("latco", "notebooks", "Snakefile", "config", "pyproject.toml")
"""What makes a result (``code_commit``'s -dirty looks here)."""


@functools.lru_cache(maxsize=1)
def code_commit() -> str:
    """The checkout's commit, with ``-dirty`` if the code differs from it ("unknown" outside git).

    Only the code counts (``latco/``, the notebooks, the Snakefile, config): a rebuild rewrites the
    committed ``figures/`` and ``docs/``, which would otherwise mark every rebuilt result dirty."""
    from latco.paper.paths import ROOT

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=20,
                              check=True).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD") or "unknown"
        dirty = bool(git("status", "--porcelain", "--untracked-files=no", "--", *CODE_PATHS))
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return commit + ("-dirty" if dirty else "")


def make_record(profile: Profile, settings: Mapping[str, Any]) -> dict[str, Any]:
    """What a result folder records: its settings, the profile's name and overrides, the commit."""
    import datetime

    return {"settings": jsonable(settings), "profile": profile.name,
            "overrides": jsonable(dict(profile.overrides)), "commit": code_commit(),
            "written": datetime.datetime.now().isoformat(timespec="seconds")}


def read_record(folder: str | os.PathLike) -> dict[str, Any] | None:
    """The record of a result folder (``settings.json``), or None if it has none."""
    path = Path(folder) / SETTINGS_FILE
    if not path.exists():
        return None
    return json.loads(path.read_text())


def write_record(folder: str | os.PathLike, record: Mapping[str, Any]) -> Path:
    """Write ``record`` as the folder's ``settings.json``, atomically."""
    return write_atomic(Path(folder) / SETTINGS_FILE,
                        lambda tmp: tmp.write_text(json.dumps(record, indent=1, sort_keys=True)))


def new_at_default(path: str, before: Any, now: Any, settings: Mapping[str, Any]) -> bool:
    """Whether ``path`` is absent from an older record and ``now`` is its config field's default:
    options added to the code keep, at their defaults, what the code did before they existed
    (e.g. ``train.decode_fraction`` = 1 decodes every frame), so results made before stay valid."""
    if before != "<absent>":
        return False
    from latco.model import WorldModelConfig
    from latco.paper.profiles import DataConfig, OnlineConfig
    from latco.train import TrainConfig

    parts = path.split(".")
    if len(parts) < 2:
        return False
    owners: dict[str, Any] = {"train": TrainConfig, "world_model": WorldModelConfig, "data": DataConfig,
                              "online": OnlineConfig}
    if parts[-2] == "options":  # a planner's options; its name sits beside them
        node: Any = settings
        for key in parts[:-2]:
            node = node.get(key, {}) if isinstance(node, Mapping) else {}
        from latco.planners.base import _REGISTRY

        owner = _REGISTRY.get(node.get("planner"), (None,))[0] if isinstance(node, Mapping) else None
    else:
        owner = owners.get(parts[-2])
    if owner is None:
        return False
    for f in dataclasses.fields(owner):
        if f.name == parts[-1] and f.default is not dataclasses.MISSING:
            return jsonable(f.default) == jsonable(now)
    return False


def changed(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, tuple[Any, Any]]:
    """``differences(old, new)`` that make a result made with ``old`` settings another result than
    one of ``new``: all but the options added to the code later and still at their default
    (``new_at_default``)."""
    return {k: (before, now) for k, (before, now) in differences(old, new).items()
            if not new_at_default(k, before, now, new)}


def claim(folder: str | os.PathLike, profile: Profile, settings: Mapping[str, Any], kind: str,
          on_mismatch: Literal["error", "remake"], allowed: Iterable[str] = ()) -> dict[str, tuple[Any, Any]]:
    """Make ``folder`` the home of a result with ``settings``, before any work is done in it.

    A new folder, or one without a record (made by code before records), gets the record. A folder
    recorded with the same settings is left as it is. One recorded with other settings: if they
    differ only under the ``allowed`` paths (prefixes), the record is rewritten with the new settings
    and the differences are returned (the caller has checked before that it can serve them); any other
    difference either raises ``SettingsMismatch`` naming it and the fix (``on_mismatch="error"``: data
    and models, which take long to make) or moves the old result aside to ``<folder>.replaced`` and
    starts afresh (``"remake"``: evaluations and online runs), with a warning. A setting the record
    lacks because it was added to the code later is no difference at its default (``new_at_default``).
    """
    folder = Path(folder)
    record = make_record(profile, settings)
    old = read_record(folder)
    if old is not None:
        diffs = changed(old["settings"], record["settings"])
        newer = diffs.keys() != differences(old["settings"], record["settings"]).keys()
        allowed = tuple(allowed)
        allowed_diffs = {k: v for k, v in diffs.items() if allowed and k.startswith(allowed)}
        other = {k: v for k, v in diffs.items() if k not in allowed_diffs}
        if not other:
            if newer or allowed_diffs:  # the same result, or one the caller extends: recorded as asked
                write_record(folder, record)
            return allowed_diffs
        if on_mismatch == "error":
            raise SettingsMismatch(
                f"the {kind} in {folder} was made with other settings ({describe(other)}); it is kept. "
                f"To make it with the new settings, delete {folder} (what was made from it is re-made "
                "too), or use another results folder (snakemake --config results_root=...).")
        aside = folder.with_name(folder.name + ".replaced")
        shutil.rmtree(aside, ignore_errors=True)
        folder.rename(aside)
        warnings.warn(f"the {kind} in {folder} was made with other settings ({describe(other)}): "
                      f"re-making it; the old one is in {aside}", UserWarning, stacklevel=3)
    folder.mkdir(parents=True, exist_ok=True)
    write_record(folder, record)
    return {}
