"""Compile one plain-Python source of device functions for several numba targets."""

import types


def compile_functions(source_globals: dict, names, jit, overrides=None) -> dict:
    """Compile the functions ``names`` of a module (given by its globals) with ``jit``.

    Each function is re-bound to a fresh globals dict in which its callees are the compiled
    versions, so the same source serves ``numba.njit`` and ``numba.cuda.jit(device=True)``.
    ``names`` must list callees before callers. ``overrides`` (name -> already compiled
    function) replaces functions before compiling, e.g. atomic adds for CUDA. Constants and
    modules of the source are kept. Returns the namespace (name -> compiled function).
    """
    overrides = overrides or {}
    namespace = {k: v for k, v in source_globals.items() if not isinstance(v, types.FunctionType)}
    for name in names:
        if name in overrides:
            namespace[name] = overrides[name]
            continue
        source = source_globals[name]
        rebound = types.FunctionType(source.__code__, namespace, name, source.__defaults__)
        namespace[name] = jit(rebound)
    return namespace
