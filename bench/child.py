"""How every child Python process of bench is started: the worker, doctor's probes, the
`--reference` tools, `bench.confirm`'s runs.

`python -m MODULE` puts the working directory first on sys.path, so a `numpy.py` (or
`torch.py`, a `bench/` folder) lying where the user runs bench would be imported inside the
child and run there. The worker was hardened against that first; doctor's probes and the
reference tools were started with a bare `python -m` and ran a planted `numpy.py`. Now all
of them start here, the one way:

- `PYTHONSAFEPATH=1` (Python ≥ 3.11 leaves the working directory off sys.path);
- a bootstrap run with `-c` that, before anything is imported, drops the working directory
  (and the empty entries that mean it) from sys.path, for older interpreters and for a
  `PYTHONPATH` that names it, then runs the module with `runpy` as `python -m` would;
- the repository root first on `PYTHONPATH`, so the child imports this checkout's `bench`
  whatever the interpreter (`--python FW=PATH`) and wherever it is started.

With `METALBENCH_CPUS` set (only `--cpus` sets it), the child binds itself to those CPUs
before importing anything, so every thread a framework starts inherits the binding.
"""

from __future__ import annotations

import os
from typing import Mapping

from bench.machine import REPO_ROOT


def bootstrap(module: str) -> str:
    """The `-c` program that scrubs sys.path and runs `module` as `python -m module` would."""
    return (
        "import os, sys; cwd = os.getcwd(); "
        "c = os.environ.get('METALBENCH_CPUS'); c and os.sched_setaffinity(0, {int(x) for x in c.split(',')}); "
        "sys.path[:] = [p for p in sys.path if p not in ('', '.') and os.path.abspath(p) != cwd "
        "or p == os.environ.get('METALBENCH_ROOT')]; "
        f"sys.argv[0] = {module!r}; import runpy; runpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
    )


def command(python: str, module: str, *args: str) -> list[str]:
    """`python -m module args…`, started safely (see the module docstring)."""
    return [python, "-c", bootstrap(module), *args]


def environment(extra: Mapping[str, str] | None = None, cpus: tuple[int, ...] = ()) -> dict[str, str]:
    """This process's environment for a child: the repository root first on PYTHONPATH, the
    safe-path flag, no stray CPU binding (only `cpus` binds), then `extra`."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH", "")]))
    env["METALBENCH_ROOT"] = str(REPO_ROOT)
    env["PYTHONSAFEPATH"] = "1"
    env.pop("METALBENCH_CPUS", None)
    if cpus:
        env["METALBENCH_CPUS"] = ",".join(map(str, cpus))
    env.update(extra or {})
    return env
