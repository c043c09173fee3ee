"""Deprecated: import from `ofa_core.plugin` (or `ofa_core.plugin.tsv`); this module goes away in the next release."""

from ofa_core.plugin.deprecated import moved

moved(globals(), "ofa_core.plugin.tsv", via="ofa_core.plugin")
