# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""A setting that the two ways of refining many images check the same way:
``tools/refine.py`` (:func:`mmsamrefiner.apis.refine_collection`) and
:class:`~mmsamrefiner.engine.SAMRefinerHook`."""


def check_encode_batch(value) -> int:
    """``value``, the number of images per image-encoder call, if it is an
    int >= 1 (1: one by one; more is faster on GPUs, the masks equal the
    one-by-one ones up to float rounding).

    Raises:
        ValueError: anything else (a bool, 0, a negative number, a float, a
            string, None).
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError('encode_batch is the number of images per image-encoder call, an int '
                         f'>= 1 (1: one by one), got {value!r}')
    return value
