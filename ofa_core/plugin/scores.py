"""Deprecated: the scoring of predictions rows is internal to ofa_core (a plugin's part is `MetricSpec.example_score`,
from `ofa_core.plugin`); this module goes away in release 0.2.0."""

from ofa_core._deprecated import moved

moved(globals(), "ofa_core.plugin._scores", instead="ofa_core.plugin._scores (internal to ofa_core)")
