"""What a remote call ships: the ``interp_widget`` modules it needs (as source) and the pickled call.

:func:`sources` follows the imports (module level and inside functions) from the server entry point
and from the called function's module, and returns ``{module: (filename, source, is_package)}``
for :func:`~interp_widget.tracing.remote._bootstrap.serve`. The package roots that pull in the
notebook side (``interp_widget/__init__.py`` imports the widgets and the kernel server,
``interp_widget/server/__init__.py`` the comm target) are replaced by empty packages: the server
needs only models, tracing and analysis, and may not have anywidget installed.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import pickle
from pathlib import Path
from typing import Any

PACKAGE = "interp_widget"
ENTRY = "interp_widget.tracing.remote._server"
_STUBS = {PACKAGE: '"""interp_widget on an NDIF server: submodules only."""\n',
          f"{PACKAGE}.server": '"""interp_widget.server on an NDIF server: the registry only."""\n'}
_NEVER = (f"{PACKAGE}.widgets", f"{PACKAGE}.labextension")
#: imported by name at run time (importlib), so not found by following import statements
_DYNAMIC = ("interp_widget.tracing.sitemaps.gpt2", "interp_widget.tracing.sitemaps.bert")
#: the analyses a remote call may run: every call ships the same closure (one set of sources per process)
ANALYSES = ("interp_widget.analysis.patching", "interp_widget.analysis.path_patching",
            "interp_widget.analysis.attribution", "interp_widget.analysis.heads", "interp_widget.analysis.ablation",
            "interp_widget.analysis.circuits")


def _root() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.origin is not None
    return Path(spec.origin).parent


def _path_of(name: str) -> tuple[Path, bool] | None:
    rel = Path(*name.split(".")[1:])
    base = _root() / rel
    if (base / "__init__.py").is_file():
        return base / "__init__.py", True
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py"), False
    return None


def _imports(name: str, source: str, is_package: bool) -> set[str]:
    out: set[str] = set()
    pkg = name if is_package else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = pkg.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1] + ([base] if base else []))
            out.add(base)
            out.update(f"{base}.{a.name}" for a in node.names)
    return {m for m in out if m == PACKAGE or m.startswith(PACKAGE + ".")}


@functools.cache
def sources(*entries: str) -> dict[str, tuple[str, str, bool]]:
    """The closure of ``entries`` (module names) under ``interp_widget``, with parents; plus ``__digest__``."""
    todo = [ENTRY, *entries, *_DYNAMIC]
    out: dict[str, tuple[str, str, bool]] = {}
    while todo:
        name = todo.pop()
        if name in out or name.startswith(_NEVER):
            continue
        found = _path_of(name)
        if found is None:
            continue  # ``from pkg import name`` where name is not a module
        path, is_package = found
        text = _STUBS.get(name) or path.read_text()
        todo.extend(_imports(name, text, is_package))
        out[name] = (str(path), slim(text), is_package)
        parent = name.rpartition(".")[0]
        if parent:
            todo.append(parent)
    digest = hashlib.sha256(pickle.dumps(sorted((k, v[1]) for k, v in out.items()))).hexdigest()[:16]
    return {**out, "__digest__": digest}  # type: ignore[dict-item]


def slim(source: str) -> str:
    """``source`` without docstrings and comments, every statement on its original line (so tracebacks
    and nnsight's reading of a traced block's source still line up): about half the bytes to ship."""
    import io
    import tokenize

    lines = source.splitlines(keepends=True)
    cuts: list[tuple[int, int, int, int, str]] = []
    for node in ast.walk(ast.parse(source)):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            d = body[0]
            assert d.end_lineno is not None and d.end_col_offset is not None
            cuts.append((d.lineno, d.col_offset, d.end_lineno, d.end_col_offset, '"""' + "\n" * (d.end_lineno - d.lineno) + '"""'))
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            cuts.append((tok.start[0], tok.start[1], tok.end[0], tok.end[1], ""))
    for l0, c0, l1, c1, new in sorted(cuts, reverse=True):
        head, tail = lines[l0 - 1][:c0], lines[l1 - 1][c1:]
        lines[l0 - 1:l1] = (head + new + tail).splitlines(keepends=True) or [""]
    return "".join(lines)


def for_call(fn: Any) -> dict[str, tuple[str, str, bool]]:
    """The sources to ship with a call of ``fn``: the fixed closure of :data:`ANALYSES` (and ``fn``'s own
    module when it is another ``interp_widget`` module)."""
    mod = getattr(fn, "__module__", "") or ""
    extra = (mod,) if mod.startswith(PACKAGE + ".") and mod not in ANALYSES else ()
    return sources(*ANALYSES, *extra)


def dumps_call(fn: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], nonce: str = "",
               digest: str = "") -> bytes:
    """The call, pickled with cloudpickle (lambdas and notebook functions by value) while ``interp_widget``
    itself is pickled by reference (the server imports it from the shipped sources)."""
    import cloudpickle
    from cloudpickle import cloudpickle as cp

    mod, qual = getattr(fn, "__module__", "") or "", getattr(fn, "__qualname__", "")
    target: Any = fn
    if mod.startswith(PACKAGE + ".") and "<" not in qual:
        target = (mod, qual)  # our own functions go by name: the server imports them from the shipped sources
    by_value = cp._PICKLE_BY_VALUE_MODULES
    ours = {m for m in by_value if m == PACKAGE or m.startswith(PACKAGE + ".")}
    by_value.difference_update(ours)  # nnsight registers a package that is not pip-installed by value
    try:
        return cloudpickle.dumps((target, name, args, kwargs, nonce, digest))
    finally:
        by_value.update(ours)
