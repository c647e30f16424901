# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""PseudoLabelExport with ``write_behind``: the writer thread writes, byte for
byte, what writing in the loop's thread writes; ``write`` returns before the
files are written and ``finish`` waits for them; an error met writing
reaches the loop's thread and stops the writing."""
import os
import os.path as osp
import threading
from types import SimpleNamespace

import cv2
import numpy as np
import pytest
import torch
from mmdet.structures import DetDataSample
from mmengine.structures import InstanceData, PixelData
from mmseg.structures import SegDataSample

from mmsamrefiner.engine.loop_report import LoopCounts
from mmsamrefiner.engine.prediction_refiner import RefineOptions
from mmsamrefiner.engine.pseudo_label_export import PseudoLabelExport
from mmsamrefiner.mask_io.records import RecordBook
from mmsamrefiner.mask_io.refined_masks import PseudoLabelCocoWriter

from ..test_tools.refine_helpers import files_under

HEIGHT, WIDTH = 12, 16
CLASSES = ('a', 'b')
LOGGER = SimpleNamespace(info=lambda message: None)


def write_images(folder, count):
    os.makedirs(folder)
    paths = [osp.join(folder, f'{index:04d}.png') for index in range(count)]
    for index, path in enumerate(paths):
        cv2.imwrite(path, np.full((HEIGHT, WIDTH, 3), index, np.uint8))
    return paths


def det_sample(path, img_id):
    rng = np.random.default_rng(img_id)
    sample = DetDataSample(metainfo=dict(img_id=img_id, img_path=path))
    count = img_id % 3  # 0, 1 or 2 instances
    sample.pred_instances = InstanceData(
        masks=torch.from_numpy(rng.random((count, HEIGHT, WIDTH)) > 0.5),
        scores=torch.from_numpy(rng.random(count).astype(np.float32)),
        labels=torch.arange(count) % len(CLASSES))
    return sample


def seg_sample(path, seed):
    sample = SegDataSample(metainfo=dict(img_path=path))
    rng = np.random.default_rng(seed)
    sample.pred_sem_seg = PixelData(data=torch.from_numpy(rng.integers(0, 3, (1, HEIGHT, WIDTH))))
    return sample


def export_all(out_dir, samples, dataset, write_behind):
    """One loop's export of ``samples``; ``{path: bytes}`` of every file it
    wrote (records included: they hold no timing)."""
    export = PseudoLabelExport(str(out_dir), dataset, 'refiner', RefineOptions(), LoopCounts(),
                               reuse=True, write_behind=write_behind)
    for sample in samples:
        reused, key = export.read_back(sample)
        assert not reused
        export.write(sample, key)
    export.finish(LOGGER)
    found = {}
    for path in sorted(files_under(str(out_dir))):
        with open(osp.join(out_dir, path), 'rb') as f:
            found[path] = f.read()
    return found


def test_det_export_behind_the_loop_is_the_same_bytes(tmp_path):
    paths = write_images(str(tmp_path / 'img'), 6)
    dataset = SimpleNamespace(metainfo=dict(classes=CLASSES))
    written = {
        behind: export_all(tmp_path / f'out_{behind}',
                           [det_sample(path, i + 1) for i, path in enumerate(paths)], dataset,
                           behind)
        for behind in (0, 2)}
    assert written[2] == written[0]
    assert 'instances.json' in written[0] and len(written[0]) == 1 + 2 * 6


def test_seg_export_behind_the_loop_is_the_same_bytes(tmp_path):
    paths = write_images(str(tmp_path / 'img'), 5)
    dataset = SimpleNamespace(data_prefix=dict(img_path=str(tmp_path / 'img')))
    written = {
        behind: export_all(tmp_path / f'out_{behind}',
                           [seg_sample(path, i) for i, path in enumerate(paths)], dataset,
                           behind)
        for behind in (0, 3)}
    assert written[3] == written[0]
    assert len(written[0]) == 2 * 5


def test_write_returns_before_the_files_are_written_and_finish_waits(tmp_path, monkeypatch):
    path = write_images(str(tmp_path / 'img'), 1)[0]
    release, threads = threading.Event(), []
    write = PseudoLabelCocoWriter.write

    def slow_write(self, *args, **kwargs):
        threads.append(threading.current_thread())
        assert release.wait(10)
        return write(self, *args, **kwargs)

    monkeypatch.setattr(PseudoLabelCocoWriter, 'write', slow_write)
    out_dir = tmp_path / 'out'
    export = PseudoLabelExport(str(out_dir), SimpleNamespace(metainfo=dict(classes=CLASSES)),
                               'refiner', RefineOptions(), LoopCounts(), reuse=True,
                               write_behind=2)
    sample = det_sample(path, 1)
    export.write(sample, export.read_back(sample)[1])  # returns while the write waits
    assert not osp.exists(out_dir / '.records' / '1.json')
    release.set()
    export.finish(LOGGER)
    assert threads and threads[0] is not threading.current_thread()
    assert osp.exists(out_dir / '.records' / '1.json') and osp.exists(out_dir / 'instances.json')


def test_an_error_met_writing_reaches_the_loop_and_stops_the_writing(tmp_path, monkeypatch):
    paths = write_images(str(tmp_path / 'img'), 4)
    record = RecordBook.write

    def disk_full_at_the_second(book, key, **fields):
        if key == '2':
            raise OSError(28, 'No space left on device')
        record(book, key, **fields)

    monkeypatch.setattr(RecordBook, 'write', disk_full_at_the_second)
    out_dir = tmp_path / 'out'
    export = PseudoLabelExport(str(out_dir), SimpleNamespace(metainfo=dict(classes=CLASSES)),
                               'refiner', RefineOptions(), LoopCounts(), reuse=True,
                               write_behind=8)
    with pytest.raises(OSError, match='No space left'):
        for index, path in enumerate(paths):
            sample = det_sample(path, index + 1)
            export.write(sample, export.read_back(sample)[1])
        export.finish(LOGGER)
    assert sorted(os.listdir(out_dir / '.records')) == ['1.json']  # 3 and 4 not written
    assert sorted(os.listdir(out_dir / 'parts')) == ['1.json', '2.json']
    assert not osp.exists(out_dir / 'instances.json')
