"""Which JAX backends exist here, under which registered name, provided by which plugin.

JAX PJRT plugins are modules in the `jax_plugins` namespace package or advertised under the
`jax_plugins` entry-point group; JAX imports each and calls its `initialize()`, which calls
`jax._src.xla_bridge.register_plugin(NAME, priority=...)` → `register_backend_factory(NAME, ...)`
(jax/_src/xla_bridge.py `discover_pjrt_plugins`, `register_plugin`; the same in jax-v0.5.0
and current jax). The registered NAME is the platform string `jax.devices(NAME)` takes, and
JAX matches it exactly: `canonicalize_platform` only expands the "gpu" alias and never
lower-cases, so `jax.devices("metal")` raises "Unknown backend metal" when jax-metal
registered "METAL". Hence the adapter walks the registered names
(`jax.extend.backend.backends()`) and classifies each case-insensitively.

Platform names collide (`metal`: jax-metal's "METAL" and metaljax's "metal"; `mps`: jax-mps,
jax-metallib, applejax), so the name alone does not say which plugin ran. `Registrations`
records, while JAX discovers plugins, which module registered each name, and maps the
module to its installed distribution; `versions` then names it.

Sources: jax-metal 0.1.1 `jax_plugins/metal_plugin/__init__.py` (`xb.register_plugin("METAL",
priority=500, library_path=...pjrt_plugin_metal_14.dylib)`; its wheel also declares the entry
point `[jax_plugins] metal_plugin = jax_plugins.metal_plugin`); jax-mps 0.11.1 wheel
`jax_plugins/mps/__init__.py` (`xb.register_plugin("mps", priority=500, ...)`, entry point
`[jax_plugins] mps = jax_plugins.mps`, Requires-Dist jax/jaxlib >=0.11,<0.12);
shared/research/field-2026-11-29.md §1.1 for the community plugins and their names.
"""

from __future__ import annotations

import importlib.metadata
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

#: Registered names (lower-cased) that mean an Apple-GPU plugin; "mlx" plugins run on MLX.
METAL_PLATFORMS = frozenset({"metal", "mps", "mtl", "mlx"})


@dataclass(frozen=True)
class KnownPlugin:
    distribution: str
    platform: str  # the name it registers, in its case
    maintained: bool
    note: str


#: Known Apple-GPU plugins (field-2026-11-29.md §1.1; jax#26968, jax#34485 for jax-metal's end).
KNOWN_PLUGINS: tuple[KnownPlugin, ...] = (
    KnownPlugin("jax-metal", "METAL", False, "Apple; last release 0.1.1 (2024-10); needs jax==jaxlib==0.5.0; declared dead (jax#26968, jax#34485)"),
    KnownPlugin("jax-mps", "mps", True, "community (MLX engine); jax/jaxlib 0.11.x, Python >= 3.12"),
    KnownPlugin("metal-pjrt-plugin", "mtl", True, "community (XLA:GPU -> MSL); macOS 26+, build from source"),
    KnownPlugin("metaljax", "metal", True, "community (StableHLO -> MLX); jax 0.11.x"),
    KnownPlugin("jax-metallib", "mps", True, "community (MPSGraph); jax 0.9.x; alpha"),
    KnownPlugin("applejax", "mps", True, "community fork of jax-mps; jaxlib 0.9.x"),
    KnownPlugin("jax-mlx-plugin", "mlx", True, "community (MLX)"),
)


def backend_of(name: str) -> str | None:
    """metalbench's backend for a registered JAX platform name, whatever its case."""
    low = name.lower()
    if low in METAL_PLATFORMS:
        return "metal"
    if low in {"cuda", "gpu"}:
        return "cuda"
    if low == "cpu":
        return "cpu"
    return None


def _calling_module(skip: tuple[str, ...] = ("jax.", "jaxlib.", "functools", __name__)) -> str | None:
    """The first module up the stack that is not JAX itself: the plugin that registered."""
    frame = sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module and not module.startswith(skip) and module != "jax":
            return module
        frame = frame.f_back
    return None


def distribution_of(module: str) -> tuple[str, str] | None:
    """(distribution, version) that installed `module`: its entry point, or the distribution
    whose RECORD lists the module's file (`jax_plugins` is a namespace shared by many)."""
    for ep in importlib.metadata.entry_points(group="jax_plugins"):
        if ep.value == module and getattr(ep, "dist", None) is not None:
            return ep.dist.metadata["Name"], ep.dist.version
    mod = sys.modules.get(module)
    path = getattr(mod, "__file__", None)
    if not path:
        return None
    target = Path(path).resolve()
    top = module.split(".")[0]
    for dist_name in importlib.metadata.packages_distributions().get(top, []):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            continue
        for f in dist.files or ():
            if str(f).startswith(top) and Path(str(dist.locate_file(f))).resolve() == target:
                return dist.metadata["Name"], dist.version
    return None


class Registrations:
    """Records which module registers each JAX backend name. Install before JAX first
    discovers its plugins (the first `jax.devices()`/`backends()` call); later it sees nothing
    and `provider` falls back to the known-plugin table."""

    by_name: dict[str, str] = {}
    _installed = False

    @classmethod
    def install(cls) -> None:
        if cls._installed:
            return
        from jax._src import xla_bridge as xb

        original: Callable[..., Any] = xb.register_backend_factory

        def recording(name: str, factory: Any, *args: Any, **kwargs: Any) -> Any:
            module = _calling_module()
            if module:
                cls.by_name.setdefault(name, module)
            return original(name, factory, *args, **kwargs)

        xb.register_backend_factory = recording  # register_plugin looks the name up at call time
        cls._installed = True

    @classmethod
    def provider(cls, name: str) -> tuple[str, str] | None:
        """(distribution, version) that provided backend `name`, or None if unknown."""
        module = cls.by_name.get(name)
        if module:
            found = distribution_of(module)
            if found:
                return found
        candidates = [p.distribution for p in KNOWN_PLUGINS if p.platform.lower() == name.lower()]
        installed = []
        for dist in candidates:
            try:
                installed.append((dist, importlib.metadata.version(dist)))
            except importlib.metadata.PackageNotFoundError:
                pass
        return installed[0] if len(installed) == 1 else None


def registered_backends() -> dict[str, Any]:
    """{registered name: client} of every backend JAX initialised (public since jax 0.4.x:
    jax.extend.backend.backends; the private xla_bridge function otherwise)."""
    try:
        from jax.extend.backend import backends
    except ImportError:  # pragma: no cover - very old jax
        from jax._src.xla_bridge import backends
    return dict(backends())


def backend_errors() -> dict[str, str]:
    """Why a registered backend failed to initialise (JAX keeps it privately; {} if absent)."""
    from jax._src import xla_bridge as xb

    return dict(getattr(xb, "_backend_errors", {}) or {})


def missing_reason(backend: str) -> str:
    """Why JAX has no `backend`: which plugins are installed and what JAX said about them."""
    names = [n for n in registered_backends() if backend_of(n) == backend]
    errors = {n: e for n, e in backend_errors().items() if backend_of(n) == backend}
    if errors:
        return "; ".join(f"backend {n!r} failed to initialise: {e}" for n, e in errors.items())
    if backend == "metal":
        installed = []
        for p in KNOWN_PLUGINS:
            try:
                installed.append(f"{p.distribution} {importlib.metadata.version(p.distribution)}")
            except importlib.metadata.PackageNotFoundError:
                pass
        if not installed:
            return "no JAX Metal plugin installed (jax-mps, or jax-metal with jax 0.5.0)"
        return f"installed {', '.join(installed)} registered no Metal backend (its initialize() failed: see the log)"
    if backend == "cuda":
        return "no 'cuda' backend registered (install jax[cuda12])" if not names else f"{names} have no devices"
    return f"jax has no {backend} backend"
