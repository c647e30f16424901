# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""An evaluator metric that keeps what it receives (registered for one test at
a time by the ``record_predictions`` fixture)."""
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
