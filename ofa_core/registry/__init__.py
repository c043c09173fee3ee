"""Finding plugins and collecting what they register.

`discovery` finds and imports plugins (built-ins through this project's entry points, installed
distributions, local plugin folders, modules a recipe names) and loads each in isolation;
`components` calls their hooks and keeps every registered component with the plugin it came from.
Neither imports torch.
"""

from ofa_core.registry.components import KINDS, Registry
from ofa_core.registry.discovery import PluginLoader, load_plugins

__all__ = ["KINDS", "PluginLoader", "Registry", "load_plugins"]
