"""The evaluation report: one self-contained HTML page of every prediction (image thumbnails, prompt, prediction,
references, per-example score, closed-set answers, boxes), worst first, with a run's curves.

`sources.sections` reads predictions files with the recipe that made them, `build.write` renders the page
(`thumbnails`, `cards`, `curves` and the `page/` template do the parts). `ofa eval --report`, `ofa report` and
the end of `ofa run` call them; the page needs no server and no network.
"""

DEFAULT_LIMIT = 500
"""Examples embedded per task by default (worst first); the page states how many there were."""
