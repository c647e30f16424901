# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""An evaluator metric that keeps what it receives, registered in mmengine's
root METRICS registry only while :func:`recording_predictions` is open."""
import contextlib
import copy

from mmengine.evaluator import BaseMetric


class RecordPredictions(BaseMetric):
    """Keeps a deep copy of every data sample the evaluator receives."""
    received = []

    def process(self, data_batch, data_samples):
        for sample in data_samples:
            RecordPredictions.received.append(copy.deepcopy(sample))
            self.results.append(1)

    def compute_metrics(self, results):
        return dict(recorded=len(results))


@contextlib.contextmanager
def recording_predictions():
    """``dict(type='RecordPredictions')`` builds for the duration; yields the
    list the samples go to (empty at the start); the entry is removed after."""
    from mmengine.registry import METRICS
    METRICS.register_module(name='RecordPredictions', module=RecordPredictions)
    RecordPredictions.received = []
    try:
        yield RecordPredictions.received
    finally:
        METRICS._module_dict.pop('RecordPredictions', None)
