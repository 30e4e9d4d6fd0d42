"""The runtime's settings file (`neuro init` writes one, `neuro run --config` and `neuro chat --config`
read it) and the one place an engine is wired from settings.

    cfg = load_config("myproject/neuro.yaml")      # paths inside are relative to the file
    engine = build_engine(cfg)                     # experts of cfg.profile, cfg.router, judge, memory

    # neuro.yaml
    graph: graph.yaml          # a graph file, or a name in data/graphs/ (default, fast, chat)
    profile: smoke             # the experts' sizes (profiles.py)
    memory: memory.sqlite      # long-term memory (SQLite); null keeps memory in the process only
    window: 8                  # short-term memory: the last N turns go into each query's context
    router: classifier         # classifier (trained, cached on first use) | keywords (the rules)
    threshold: 0.5             # the router's complexity threshold: at or above it, the slow path
    step_budget: null          # null: the graph's own
    wall_s: null               # seconds per run; null: the graph's own, else the engine's default (300)
    ollama: null               # or {model: qwen2.5:0.5b, url: http://127.0.0.1:11434, skills: [chat]}

Tests: tests/test_cli_runtime.py.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import jsonschema
import yaml

from neuro_lib.errors import NeuroError
from neuro_lib.runtime.types import SKILLS
from neuro_lib.yamlfile import load_yaml

# The default router is the best MEASURED one: end to end on the generators' held-out tasks the trained classifier
# routes to 0.30 success, the keyword rules to 0.09 (data/reference/runtime_bench_e2e.json, bench profile,
# "routed (classifier|keywords): all success"); README "Runtime" names the figure.
ROUTERS = ("classifier", "keywords")
DEFAULT_ROUTER = "classifier"

CONFIG_SCHEMA = {
    "type": "object", "additionalProperties": False,
    "properties": {
        "graph": {"type": "string", "minLength": 1}, "profile": {"type": "string", "minLength": 1},
        "memory": {"type": ["string", "null"], "minLength": 1}, "window": {"type": "integer", "minimum": 1},
        "router": {"enum": ["classifier", "keywords"]},
        "threshold": {"type": "number", "minimum": 0}, "step_budget": {"type": ["integer", "null"], "minimum": 1},
        "wall_s": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "ollama": {"type": ["object", "null"], "additionalProperties": False, "required": ["model"], "properties": {
            "model": {"type": "string", "minLength": 1}, "url": {"type": "string", "minLength": 1},
            "skills": {"type": "array", "items": {"enum": list(SKILLS)}, "minItems": 1},
            "timeout_s": {"type": "number", "exclusiveMinimum": 0}}},
    },
}


@dataclass
class RuntimeConfig:
    graph: str = "default"
    profile: str = "smoke"
    memory: str | None = None
    window: int = 8
    router: str = DEFAULT_ROUTER
    threshold: float = 0.5
    step_budget: int | None = None
    wall_s: float | None = None
    ollama: dict | None = None

    def to_yaml(self) -> str:
        return yaml.safe_dump(asdict(self), sort_keys=False)


def load_config(path: str | Path) -> RuntimeConfig:
    """Read and check a settings file; relative graph and memory paths are taken from the file's folder."""
    p = Path(path)
    if not p.is_file():
        raise NeuroError(f"config file {p} does not exist (neuro init writes one)")
    doc = load_yaml(p, f"config file {p}") or {}
    try:
        err = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(CONFIG_SCHEMA).iter_errors(doc))
    except RecursionError:
        raise NeuroError(f"config file {p} is nested too deeply to check") from None
    if err is not None:
        where = "/".join(str(x) for x in err.absolute_path) or "the top level"
        raise NeuroError(f"config file {p}: {where}: {err.message}")
    cfg = RuntimeConfig(**{f.name: doc[f.name] for f in fields(RuntimeConfig) if f.name in doc})
    if cfg.graph.endswith((".yaml", ".yml")) and not Path(cfg.graph).is_absolute():
        cfg.graph = str(p.parent / cfg.graph)
    if cfg.memory and cfg.memory != ":memory:" and not Path(cfg.memory).is_absolute():
        cfg.memory = str(p.parent / cfg.memory)
    return cfg


def build_router(cfg: RuntimeConfig, profile):
    """cfg.router at cfg.threshold: the classifier of the profile's router sizes (runtime/router_model.py's
    cached_router: trained on first use, then loaded) or the keyword rules."""
    from neuro_lib.runtime.router import KeywordRouter, KeywordRouterConfig
    from neuro_lib.runtime.router_model import cached_router

    if cfg.router not in ROUTERS:
        raise NeuroError(f"unknown router {cfg.router!r}; known: {', '.join(ROUTERS)}")
    if cfg.router == "keywords":
        return KeywordRouter(KeywordRouterConfig(threshold=cfg.threshold))
    return cached_router(profile.tasks.router, threshold=cfg.threshold)


def build_engine(cfg: RuntimeConfig, experts: dict | None = None):
    """An engine from settings: `experts` if given (e.g. one wrapped checkpoint), else the profile's tiny
    experts; an Ollama expert added (and given its skills) when the settings name one."""
    from neuro_lib.profiles import get_profile
    from neuro_lib.runtime.engine import RuntimeEngine
    from neuro_lib.runtime.graph import load_graph
    from neuro_lib.runtime.memory import Memory

    profile = get_profile(cfg.profile)
    graph = load_graph(cfg.graph)  # a bad graph fails before any expert is built
    memory = Memory(cfg.memory, cfg.window)  # settings are all checked before the router trains on first use
    extra, skill_experts = {}, {}
    if cfg.ollama:
        from neuro_lib.runtime.ollama import OllamaConfig, OllamaExpert

        o = cfg.ollama
        ollama = OllamaExpert(OllamaConfig(model=o["model"], url=o.get("url", OllamaConfig.url),
                                           skills=tuple(o.get("skills", ("chat",))),
                                           timeout_s=o.get("timeout_s", OllamaConfig.timeout_s)))
        extra[ollama.name] = ollama
        skill_experts = {s: ollama.name for s in ollama.skills}
    router = build_router(cfg, profile)
    kwargs = dict(memory=memory, router=router, step_budget=cfg.step_budget, wall_s=cfg.wall_s)
    if skill_experts:
        kwargs["skill_experts"] = skill_experts
    if experts is None:
        return RuntimeEngine.from_profile(profile, graph, extra_experts=extra, **kwargs)
    from neuro_lib.runtime.judge import judge

    return RuntimeEngine(graph, {**experts, **extra}, judge=judge, **kwargs)
