"""Deprecated: import from `ofa_core.plugin`; this module goes away in release 0.2.0."""

from ofa_core._deprecated import moved

moved(globals(), "ofa_core.plugin._tsv")
