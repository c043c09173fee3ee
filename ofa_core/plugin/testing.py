"""Deprecated: import from `ofa_core.testing`; this module goes away in release 0.2.0."""

from ofa_core._deprecated import moved

moved(globals(), "ofa_core.testing", instead="ofa_core.testing")
