"""Stands in for a JAX PJRT plugin's native library (copied into a fake's site as _metalbench_standin).

A real plugin's `register_plugin(NAME, library_path=...)` loads the library
(`xla_client.load_pjrt_plugin_dynamically`), registers its profiler, and leaves a factory that
initialises the plugin and makes its client (`make_pjrt_c_api_client`: `pjrt_plugin_initialized`,
`initialize_pjrt_plugin`, `make_c_api_client`; jax/_src/xla_bridge.py in jax 0.5.0 and 0.10+).
For the one name given, each of these does what a library without Metal can: nothing, or XLA's
CPU client; every other name goes to JAX untouched. The C-API handle is None (there is no
library), so JAX's C-API-only callbacks and the profiler skip it.
"""

from __future__ import annotations

from typing import Any, Callable


def install(name: str, fail: str | None = None) -> None:
    import jax._src.xla_bridge as xb
    from jax._src.lib import xla_client as xc

    def for_name(original: Callable[..., Any], fake: Callable[..., Any]) -> Callable[..., Any]:
        def call(plugin: str, *args: Any, **kwargs: Any) -> Any:
            return fake(*args, **kwargs) if plugin == name else original(plugin, *args, **kwargs)
        return call

    def client(*args: Any, **kwargs: Any) -> Any:
        if fail:
            raise RuntimeError(fail)
        return xb.make_cpu_client()

    xc.load_pjrt_plugin_dynamically = for_name(xc.load_pjrt_plugin_dynamically, lambda path: None)
    xc.pjrt_plugin_initialized = for_name(xc.pjrt_plugin_initialized, lambda: True)
    xc.make_c_api_client = for_name(xc.make_c_api_client, client)
    profiler = xb._profiler

    class Profiler:  # register_plugin_profiler(None) would reject the missing handle
        def __getattr__(self, attr: str) -> Any:
            return getattr(profiler, attr)

        def register_plugin_profiler(self, c_api: Any) -> None:
            if c_api is not None:
                profiler.register_plugin_profiler(c_api)

    xb._profiler = Profiler()
