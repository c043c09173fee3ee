"""Deprecated: import from `ofa_core.model.boxes`; this module goes away in the next release."""

from ofa_core.plugin.deprecated import moved

moved(globals(), "ofa_core.model.boxes")
