"""`plugin.SummedMetric`: the per-example bookkeeping the built-in metrics and plugins share."""

import pytest

from ofa_core import plugin


class Hits(plugin.SummedMetric):
    TOTALS = ("hits", "length")

    def __init__(self, options: plugin.NoOptions) -> None:
        super().__init__(options)

    def score(self, prediction, references):
        hit = prediction in references
        return {"hits": int(hit), "length": len(prediction)}, {"score": 100.0 * hit, "correct": hit}

    def compute(self):
        return {"accuracy": self.mean("hits"), "length": self.totals["length"] / self.count}


def test_sums_per_example_and_keeps_report_rows_in_order():
    metric = Hits(plugin.NoOptions())
    metric.update(["a", "bb"], [["a"], ["c"]])
    metric.update(["c"], [["c", "d"]])
    assert metric.state() == {"hits": 2, "length": 4, "count": 3}
    assert metric.compute() == {"accuracy": pytest.approx(200 / 3), "length": pytest.approx(4 / 3)}
    assert [row["correct"] for row in metric.example_scores()] == [True, False, True]


def test_states_of_processes_add_up_to_the_whole():
    whole, first, second = (Hits(plugin.NoOptions()) for _ in range(3))
    predictions, references = ["a", "b", "c", "d"], [["a"], ["x"], ["c"], ["d"]]
    whole.update(predictions, references)
    first.update(predictions[:1], references[:1])
    second.update(predictions[1:], references[1:])
    merged = Hits(plugin.NoOptions())
    merged.load_state({key: first.state()[key] + second.state()[key] for key in first.state()})
    assert merged.compute() == whole.compute() == {"accuracy": 75.0, "length": 1.0}


def test_an_empty_metric_scores_zero_and_a_length_mismatch_is_refused():
    metric = Hits(plugin.NoOptions())
    assert metric.mean("hits") == 0.0 and metric.state() == {"hits": 0, "length": 0, "count": 0}
    with pytest.raises(ValueError, match="2 predictions but 1 reference lists"):
        metric.update(["a", "b"], [["a"]])


def test_a_subclass_without_score_says_what_it_lacks():
    class Incomplete(plugin.SummedMetric):
        pass

    with pytest.raises(NotImplementedError, match="Incomplete must implement score"):
        Incomplete(None).update(["a"], [["a"]])
