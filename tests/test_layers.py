"""The package's import graph, read with `ast` (module-level and function-level imports alike): one-way layers, from
leaf utilities up to the command line, with no import going back up and no circle."""

import ast
from pathlib import Path

import sscp

PACKAGE = Path(sscp.__file__).parent

# The layer of every module, bottom (0) to top (6). A package's entry covers its modules unless one has its own. A
# module may import from its own layer or any lower one, never from a higher one.
LAYERS = {
    # 0: leaf utilities and file formats: import nothing from sscp but sscp.errors
    "sscp": 0,
    "sscp.errors": 0,
    "sscp.flow": 0,
    "sscp.nets": 0,
    "sscp.stats": 0,
    "sscp.runtime": 0,
    "sscp.runtime_numpy": 0,
    "sscp.options": 0,  # the `--agent.FIELD` parser of `sscp train` and sweep specs
    "sscp.atomic": 0,  # files written whole or not at all (checkpoints, configs, datasets)
    # 1: environments and run outputs
    "sscp.envs": 1,
    "sscp.sims": 1,  # the imitation benchmarks' simulators (optional extras) as Gymnasium envs
    "sscp.env_state": 1,
    "sscp.video": 1,
    "sscp.runlog": 1,
    "sscp.checkpoint": 1,
    "sscp.run_folder": 1,  # a run folder's files: config.json, checkpoints, CSV logs, lock
    "sscp.plot": 1,  # the training loop draws its curves with it
    # 2: datasets: names, readers, generation by scripted oracles, on-device sampling
    "sscp.data": 2,
    # 3: agents (they may read data layouts: goal sampling)
    "sscp.agents": 3,
    # 4: evaluation, the online phase and the training loop
    "sscp.evaluate": 4,
    "sscp.online": 4,
    "sscp.train_config": 4,  # the options of sscp train, resolved and checked
    "sscp.steps": 4,  # the jitted update, scan, acting and run placement
    "sscp.online_phase": 4,
    "sscp.train": 4,
    "sscp.report": 4,  # what training prints (the line at each evaluation, the final table): imports layer 1 only
    # 5: recipes (data made by training, the demo) and commands
    "sscp.recipes": 5,
    "sscp.demo": 5,
    "sscp.sweep_spec": 5,  # sweep specs read, checked and expanded into groups
    "sscp.sweep_results": 5,  # a sweep's attempts records, its per-group line and its results tables
    "sscp.sweep": 5,
    "sscp.export": 5,
    # 6: the command line
    "sscp.cli": 6,
}


def _modules() -> dict[str, Path]:
    """Returns {module name: file} of every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> dict[str, int]:
    """Returns {imported sscp module: line of its first import} for every import in the file, at any depth."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: dict[str, int] = {}
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # `from sscp.data import registry` imports the module sscp.data.registry; `from sscp.train import Trainer`
            # the module sscp.train
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names]
        else:
            continue
        for target in targets:
            if target in modules and target != name:
                found.setdefault(target, node.lineno)
    return found


def _graph() -> dict[str, dict[str, int]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _layer(module: str) -> int | None:
    """Returns the layer of a module: its own entry, else its package's."""
    name = module
    while name:
        if name in LAYERS and (name == module or name != "sscp"):
            return LAYERS[name]
        name = name.rpartition(".")[0]
    return None


def _circle(graph: dict[str, dict[str, int]]) -> list[str] | None:
    """Returns one import circle as [a, b, ..., a], or None when the graph has none."""
    state: dict[str, str] = {}  # "open" while on the path being walked, "done" once every path from it is walked
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := walk(nxt)):
                return found
        path.pop()
        state[node] = "done"
        return None

    for start in sorted(graph):
        if start not in state and (found := walk(start)):
            return found
    return None


def test_every_module_has_a_layer():
    graph = _graph()
    missing = sorted(m for m in graph if _layer(m) is None)
    assert not missing, f"give these modules a layer in LAYERS of {__file__}: {', '.join(missing)}"
    stale = sorted(k for k in LAYERS if not any(m == k or m.startswith(k + ".") for m in graph))
    assert not stale, f"LAYERS names modules that do not exist: {', '.join(stale)}"


def test_no_import_circles():
    graph = _graph()
    circle = _circle(graph)
    if circle:
        steps = [f"{a} (line {graph[a][b]})" for a, b in zip(circle, circle[1:], strict=False)]
        raise AssertionError("import circle: " + " -> ".join([*steps, circle[-1]]))


def test_no_import_goes_up_a_layer():
    graph = _graph()
    upward = [
        f"{module} (layer {_layer(module)}, line {line}) imports {target} (layer {_layer(target)})"
        for module, targets in sorted(graph.items())
        for target, line in sorted(targets.items())
        if None not in (_layer(module), _layer(target)) and _layer(target) > _layer(module)
    ]
    assert not upward, "imports from a higher layer:\n" + "\n".join(upward)


def test_the_reader_sees_function_level_imports(tmp_path):
    """A circle hidden in a function is still a circle: the graph holds imports at any depth."""
    (tmp_path / "a.py").write_text("def f():\n    from sscp.train import Trainer\n")
    modules = {"sscp.train": PACKAGE / "train.py", "sscp.x": tmp_path / "a.py"}
    assert _imports("sscp.x", tmp_path / "a.py", modules) == {"sscp.train": 2}


def test_modules_and_functions_stay_small():
    """A module a newcomer reads whole: at most 450 lines; a function read at once: at most 60 (signature, docstring
    and body)."""
    long_modules, long_functions = [], []
    for name, path in _modules().items():
        text = path.read_text()
        if len(text.splitlines()) > 450:
            long_modules.append(f"{name} ({len(text.splitlines())} lines)")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.end_lineno - node.lineno >= 60:
                long_functions.append(f"{name}.{node.name} ({node.end_lineno - node.lineno + 1} lines)")
    assert not long_modules, long_modules
    assert not long_functions, long_functions
