"""Split binary buffers out of nested messages and put them back.

Jupyter messages carry binary data as separate buffers; a message names where each
buffer belongs with a key path (``["window", "values", "data"]``). ipywidgets does this
for synced state; command replies go through :func:`pack` (and ``unpack`` in
``src/schema/wire.ts``).
"""

from __future__ import annotations

from typing import Any

BufferPath = list[str | int]


def pack(obj: Any) -> tuple[Any, list[BufferPath], list[bytes]]:
    """Replace every ``bytes``/``bytearray``/``memoryview`` in ``obj`` (dicts and lists, nested) by None.

    Returns the stripped copy, the key path of each buffer and the buffers, in the same order.
    """
    paths: list[BufferPath] = []
    buffers: list[bytes] = []

    def walk(node: Any, path: BufferPath) -> Any:
        if isinstance(node, (bytes, bytearray, memoryview)):
            paths.append(path)
            buffers.append(bytes(node))
            return None
        if isinstance(node, dict):
            return {k: walk(v, [*path, k]) for k, v in node.items()}
        if isinstance(node, (list, tuple)):
            return [walk(v, [*path, i]) for i, v in enumerate(node)]
        return node

    return walk(obj, []), paths, buffers


def unpack(obj: Any, paths: list[BufferPath], buffers: list[bytes] | list[memoryview]) -> Any:
    """Inverse of :func:`pack` (modifies ``obj`` in place and returns it)."""
    if len(paths) != len(buffers):
        msg = f"{len(paths)} buffer paths but {len(buffers)} buffers"
        raise ValueError(msg)
    for path, buf in zip(paths, buffers, strict=True):
        if not path:
            return bytes(buf)
        node = obj
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = bytes(buf)
    return obj
