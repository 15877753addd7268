"""Typed models: the recipe a user writes and the plan the executor runs.

pydantic looks for plugins through `importlib.metadata`, a scan of every
installed distribution's entry points that costs 30-45 ms of each `eib plan`
here.  eib's models use no plugins, so an empty plugin loader is registered
before pydantic builds its first validator.
"""

import sys
import types


def _register_empty_pydantic_plugin_loader() -> None:
    name = "pydantic.plugin._loader"
    if name in sys.modules:
        return
    loader = types.ModuleType(name, "No pydantic plugins: eib's models use none.")
    loader.get_plugins = tuple  # type: ignore[attr-defined]
    sys.modules[name] = loader


_register_empty_pydantic_plugin_loader()
