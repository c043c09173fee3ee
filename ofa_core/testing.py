"""Deprecated: import from `ofa_core.plugin.testing`; this module goes away in the next release."""

from ofa_core.plugin.deprecated import moved

moved(globals(), "ofa_core.plugin.testing")
