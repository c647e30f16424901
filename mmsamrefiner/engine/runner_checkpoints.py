# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Let mmdet's / mmseg's ``tools/test.py`` (and ``--resume``) read the
checkpoints their own ``tools/train.py`` writes, under torch >= 2.6.

torch 2.6 made ``torch.load`` weights-only by default; mmengine 0.10 loads
checkpoints with a plain ``torch.load``, and its checkpoints also hold the
runner's message hub (log history buffers, numpy scalars and arrays), so
loading a checkpoint of one's own training fails with "Weights only load
failed ... Unsupported global: mmengine.logging.history_buffer.HistoryBuffer".
:func:`allow_runner_checkpoints` allows these types, and only these, in
weights-only loading; **importing this module calls it**, so a config says

    custom_imports = dict(imports=['mmsamrefiner', 'mmsamrefiner.engine.runner_checkpoints'],
                          allow_failed_imports=False)

(the pseudo-labelling configs of ``configs/self_training/`` do).  Everything
else a checkpoint could hold is still refused.
"""
import torch


def allow_runner_checkpoints() -> None:
    """Allow mmengine's checkpoint contents in weights-only ``torch.load``:
    ``HistoryBuffer``, ``Counter``, numpy arrays, dtypes and scalars (and the
    two reconstruction helpers numpy's pickles name).  Nothing to do under
    torch < 2.4 (no weights-only allowlist; loading is not weights-only)."""
    add_safe_globals = getattr(torch.serialization, 'add_safe_globals', None)
    if add_safe_globals is None:
        return
    import codecs
    from collections import Counter

    import numpy as np
    from mmengine.logging.history_buffer import HistoryBuffer
    multiarray = getattr(np, '_core', np.core).multiarray
    add_safe_globals([HistoryBuffer, Counter, np.ndarray, np.dtype, multiarray.scalar,
                      multiarray._reconstruct, codecs.encode, getattr]
                     + [type(np.dtype(t)) for t in ('float64', 'float32', 'int64', 'int32')])


allow_runner_checkpoints()
