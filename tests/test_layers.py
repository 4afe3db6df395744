"""Layers point down only: a module imports (at the top or inside a function) nothing from a higher layer.

    errors, registry, lazy, seeds, component < losses < data < attacks < models < training < defenses < evaluation < experiments
    < reporting < cli
"""

import ast
from pathlib import Path


LAYERS = ["errors", "registry", "lazy", "seeds", "component", "losses", "configs", "data", "attacks", "models", "training", "defenses",
          "evaluation", "experiments", "reporting", "cli"]
RANK = {name: i for i, name in enumerate(LAYERS)}
SRC = Path(__file__).parents[1] / "src" / "dece"


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "dece" and len(parts) > 1 and parts[1] in RANK else None


def _imports(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
        elif isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
    return out


def upward_imports() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        module = ".".join(("dece", *path.relative_to(SRC).with_suffix("").parts)).removesuffix(".__init__")
        mine = _layer(module)
        if mine is None:
            continue
        for name in _imports(path):
            other = _layer(name)
            if other is not None and RANK[other] > RANK[mine]:
                bad.append(f"{module} ({mine}) imports {name} ({other})")
    return bad


def test_every_package_has_a_layer():
    packages = {p.name for p in SRC.iterdir() if p.is_dir() and not p.name.startswith("__")}
    modules = {p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert packages | modules <= set(LAYERS)


def test_layers_only_point_down():
    assert upward_imports() == []


def test_the_check_sees_an_upward_import_inside_a_function(tmp_path, monkeypatch):
    fake = tmp_path / "dece" / "losses"
    fake.mkdir(parents=True)
    (fake / "bad.py").write_text("def f():\n    from dece.experiments import run_experiment\n")
    monkeypatch.setattr(__import__(__name__), "SRC", tmp_path / "dece")
    assert upward_imports() == ["dece.losses.bad (losses) imports dece.experiments (experiments)"]


def test_the_config_schema_loads_without_torch_or_transformers():
    import subprocess
    import sys

    code = ("import sys, dece.experiments.config, dece.models.spec; "
            "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
