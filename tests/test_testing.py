# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""``mmsamrefiner.testing`` is for the tests and benchmarks: the package itself
never imports it."""
import ast
import glob
import os.path as osp

import numpy as np
import pytest
import torch

import mmsamrefiner

PACKAGE = osp.dirname(mmsamrefiner.__file__)


def imported_modules(path):
    tree = ast.parse(open(path, encoding='utf-8').read())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                parts = osp.relpath(osp.dirname(path), osp.dirname(PACKAGE)).split(osp.sep)
                base = '.'.join(parts[:len(parts) - node.level + 1])
                yield f'{base}.{node.module}' if node.module else base
            else:
                yield node.module


def test_nothing_in_the_package_imports_the_testing_helpers():
    sources = [p for p in glob.glob(osp.join(PACKAGE, '**', '*.py'), recursive=True)
               if osp.join(PACKAGE, 'testing') not in p]
    assert sources
    for path in sources:
        for module in imported_modules(path):
            assert not module.startswith('mmsamrefiner.testing'), (path, module)


def test_every_testing_helper_serves_the_tests_or_the_benchmarks():
    """Each helper ``mmsamrefiner.testing`` exports is used by a test or a tool
    (benchmarks, demo): none is dead weight of the package."""
    import mmsamrefiner.testing as testing
    root = osp.dirname(PACKAGE)
    users = [p for pattern in ('tests/**/*.py', 'tools/*.py')
             for p in glob.glob(osp.join(root, pattern), recursive=True)]
    text = '\n'.join(open(p, encoding='utf-8').read() for p in users)
    for name in testing.__all__:
        assert callable(getattr(testing, name)), name
        assert text.count(name) > 0, f'mmsamrefiner.testing.{name} is used by no test or tool'


def test_host_sync_counter_counts_by_name_and_restores_torch():
    import torch

    from mmsamrefiner.testing.syncs import count_host_syncs
    values = torch.arange(6)
    getitem, item = torch.Tensor.__getitem__, torch.Tensor.item
    with count_host_syncs() as counts:
        int(values[2])  # plain indexing is not counted, int() is
        values[values > 2]
        values.tolist()
        torch.where(values > 2)
        torch.where(values > 2, values, 0)  # three arguments: no sync
        torch.tensor([1, 2], device='cpu')
        torch.tensor([1, 2])  # host data left on the host
    assert counts == {'int': 1, 'bool index': 1, 'tolist': 1, 'nonzero': 1, 'to device': 1}
    assert torch.Tensor.__getitem__ is getitem and torch.Tensor.item is item
    assert 'item' not in vars(torch.Tensor) and '__getitem__' not in vars(torch.Tensor)


def test_stand_in_sam_has_the_frames_of_the_sam_it_is_like(tiny_sam):
    from mmsamrefiner.refiner.backends import SAMBackend
    from mmsamrefiner.refiner.sam import build_sam_model
    from mmsamrefiner.testing import StandInSAM
    stand_in = StandInSAM.like(tiny_sam)
    assert (stand_in.encoder_size, stand_in.embedding_size, stand_in.low_res_size) == \
        (128, (8, 8), (32, 32))
    with torch.device('meta'):  # the sizes of a ViT-H, without its weights
        vit_h = StandInSAM.like(build_sam_model('vit_h'))
    assert (vit_h.encoder_size, vit_h.embedding_size, vit_h.low_res_size) == \
        (1024, (64, 64), (256, 256))
    rgb = np.random.default_rng(0).integers(0, 256, (60, 100, 3), dtype=np.uint8)
    torch.testing.assert_close(stand_in.preprocess(rgb), SAMBackend(tiny_sam).preprocess(rgb))
    embedding, = stand_in.encode_batch([rgb])
    assert embedding.embedding.shape == (1, 32, 8, 8) and not embedding.embedding.any()
    assert (embedding.input_size, embedding.original_size) == ((77, 128), (60, 100))


def test_stand_in_sam_answers_with_the_mask_prompt(tiny_sam, scene):
    from mmsamrefiner import SAMRefiner
    from mmsamrefiner.testing import StandInSAM
    image, masks = scene
    refiner = SAMRefiner(StandInSAM.like(tiny_sam), iters=2)
    embedding = refiner.encode_image(image)
    prompts = refiner.mine_prompts(masks, embedding)
    logits, ious = refiner.decode(prompts, embedding)
    assert logits.shape == (2, 3, 32, 32) and ious.shape == (2, 3)
    assert (logits == prompts.mask_inputs).all()
    result = refiner.refine(image, masks)
    assert result.masks.shape == masks.shape and result.masks.any((1, 2)).all()
    with pytest.raises(ValueError, match='answers with the mask prompt: keep use_mask=True'):
        SAMRefiner(StandInSAM.like(tiny_sam), use_mask=False).refine(image, masks)
