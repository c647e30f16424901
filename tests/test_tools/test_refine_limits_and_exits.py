# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/refine.py's pixel limit (an image over --max-pixels fails alone,
before it is decoded) and exit statuses: 0 all refined, 1 some image failed,
2 refused before starting, 3 stopped on an error that is not an image's (a
full disk: one sentence; a bug: the traceback), after which a re-run gives
the same bytes as a run that was never stopped."""
import errno
import importlib
import os
import os.path as osp

import numpy as np
import pytest
from PIL import Image

from mmsamrefiner.mask_io import coarse_masks, records, refined_masks
from mmsamrefiner.mask_io.refined_masks import RefinedCocoWriter
from mmsamrefiner.testing import write_label_map_collection

from ..mm_data import HEIGHT, WIDTH
from .refine_helpers import coco_collection, exit_status, load, save, write_big_png

#: the module (``mmsamrefiner.apis.refine_collection`` is also the function's name)
refine_collection_module = importlib.import_module('mmsamrefiner.apis.refine_collection')

LIMIT_ADVICE = 'raise it (or 0 for no limit) if the machine has the memory'


def coco_argv(config, img_dir, ann_file, out, *extra):
    return [config, '--img-dir', img_dir, '--coco', ann_file, '--out', str(out), *extra]


def records_of(parts):
    folder = osp.join(parts, '.records')
    return {r['key']: r for r in (load(osp.join(folder, f)) for f in os.listdir(folder))}


def test_an_image_over_the_pixel_limit_fails_alone_before_it_is_decoded(tmp_path, config,
                                                                      monkeypatch, capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path)
    big = osp.join(img_dir, 'big.png')
    write_big_png(big, 10000, 12000)  # 120 M pixels in a small file
    coarse = load(coarse_file)
    coarse['images'][1]['file_name'] = 'big.png'  # its record keeps the masks' size
    save(coarse_file, coarse)
    read = []
    load_rgb_image = refine_collection_module.load_rgb_image
    monkeypatch.setattr(refine_collection_module, 'load_rgb_image',
                        lambda path, *a, **k: read.append(path) or load_rgb_image(path, *a, **k))
    out = tmp_path / 'refined.json'
    for encode_batch in ('1', '3'):
        code = exit_status(coco_argv(config, img_dir, coarse_file, out, '--overwrite',
                                     '--encode-batch', encode_batch))
        assert code == 1
    assert big not in read and len(read) == 4  # the two others, twice
    records = records_of(str(out) + '.parts')
    assert [records[k]['status'] for k in ('1', '2', '3')] == ['refined', 'failed', 'refined']
    assert records['2']['reason'] == (
        f'InputRefused: image {big} is 10000x12000 = 120000000 pixels, over --max-pixels '
        f'100000000; {LIMIT_ADVICE}')
    assert not records['2']['transient']
    assert 'failed: 2 (' in capsys.readouterr().out


def test_a_record_too_big_for_the_limit_is_refused_before_its_masks_exist(tmp_path, config,
                                                                        monkeypatch):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    coarse = load(coarse_file)
    coarse['images'][0].update(height=20000, width=20000)
    save(coarse_file, coarse)
    allocated = []

    class NumpyThatCounts:
        def __getattr__(self, name):
            return getattr(np, name)

        def zeros(self, shape, *args, **kwargs):
            allocated.append(tuple(shape))
            return np.zeros(shape, *args, **kwargs)

    monkeypatch.setattr(coarse_masks, 'np', NumpyThatCounts())
    out = tmp_path / 'refined.json'
    assert exit_status(coco_argv(config, img_dir, coarse_file, out,
                                 '--max-pixels', '100000000')) == 1
    assert [shape[1:] for shape in allocated] == [(HEIGHT, WIDTH)]  # image 2's masks only
    record = records_of(str(out) + '.parts')['1']
    assert record['reason'] == (
        'InputRefused: image 1 (0000.png, "height" and "width" in "images") is 20000x20000 = '
        f'400000000 pixels, over --max-pixels 100000000; {LIMIT_ADVICE}')


def test_a_changed_pixel_limit_redoes_the_images_it_refused(tmp_path, config, capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    out = tmp_path / 'refined.json'
    assert exit_status(coco_argv(config, img_dir, coarse_file, out, '--max-pixels',
                                 str(HEIGHT * WIDTH - 1))) == 1
    assert 'images: 2 (0 refined, 2 failed' in capsys.readouterr().out
    assert exit_status(coco_argv(config, img_dir, coarse_file, out, '--max-pixels',
                                 str(HEIGHT * WIDTH))) == 0
    assert 'refining 2 (limits changed: 2)' in capsys.readouterr().out


def test_a_label_map_over_the_limit_fails_in_our_words_not_pils(tmp_path, config, capsys):
    root = write_label_map_collection(str(tmp_path / 'seg'), num_images=2, coarse=True,
                                      height=HEIGHT, width=WIDTH)
    huge = osp.join(root, 'ann_dir', '0001.png')
    write_big_png(huge, 12000, 15000, palette=True)  # over PIL's own bomb limit too
    out = tmp_path / 'refined'
    assert exit_status([config, '--img-dir', osp.join(root, 'img_dir'), '--label-dir',
                        osp.join(root, 'ann_dir'), '--out', str(out)]) == 1
    record = load(out / '.records' / '0001.json')
    assert record['reason'] == (
        f'InputRefused: label map {huge} is 12000x15000 = 180000000 pixels, over --max-pixels '
        f'100000000; {LIMIT_ADVICE}')


def test_pils_bomb_limit_gives_way_to_ours_and_is_restored(tmp_path, config, monkeypatch):
    monkeypatch.setattr(Image, 'MAX_IMAGE_PIXELS', 1000)  # each label map is a "bomb" to PIL
    root = write_label_map_collection(str(tmp_path / 'seg'), num_images=2, coarse=True,
                                      height=HEIGHT, width=WIDTH)
    for max_pixels in ('0', str(HEIGHT * WIDTH)):
        assert exit_status([config, '--img-dir', osp.join(root, 'img_dir'), '--label-dir',
                            osp.join(root, 'ann_dir'), '--out', str(tmp_path / max_pixels),
                            '--max-pixels', max_pixels]) == 0
    assert Image.MAX_IMAGE_PIXELS == 1000


def disk_full_after(monkeypatch, writes: int, error=errno.ENOSPC):
    """Make the atomic writes of outputs and records fail with ``error``
    after ``writes`` of them."""
    atomic_write_bytes, done = refined_masks.atomic_write_bytes, []

    def write(path, data):
        if len(done) == writes:
            raise OSError(error, os.strerror(error))
        done.append(path)
        atomic_write_bytes(path, data)

    for module in (refined_masks, records):
        monkeypatch.setattr(module, 'atomic_write_bytes', write)


def test_a_full_disk_stops_in_one_sentence_and_a_rerun_gives_the_same_bytes(
        tmp_path, config, monkeypatch, capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path)
    reference = tmp_path / 'reference.json'
    assert exit_status(coco_argv(config, img_dir, coarse_file, reference)) == 0
    out = tmp_path / 'refined.json'
    disk_full_after(monkeypatch, 3)  # image 1's part and record, image 2's part
    capsys.readouterr()
    assert exit_status(coco_argv(config, img_dir, coarse_file, out)) == 3
    err = capsys.readouterr().err.strip()
    assert err == (f'refine.py: cannot write {out}.parts/.records/2.json: No space left on '
                   'device; the 1 image finished so far is kept: free space and run the same '
                   'command again')
    assert not osp.exists(out)
    monkeypatch.undo()  # space freed
    assert exit_status(coco_argv(config, img_dir, coarse_file, out)) == 0
    assert 'reusing 1 finished image(s), refining 2 (new: 2)' in capsys.readouterr().out
    assert out.read_bytes() == reference.read_bytes()


@pytest.mark.parametrize('error,advice', [
    (errno.EROFS, 'make the file system writable and run the same command again'),
    (errno.EACCES, 'give yourself write permission there and run the same command again'),
])
def test_an_unwritable_merged_json_names_the_file_and_keeps_the_images(
        tmp_path, config, monkeypatch, capsys, error, advice):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    out = tmp_path / 'refined.json'
    disk_full_after(monkeypatch, 4, error)  # every part and record: the merge fails
    assert exit_status(coco_argv(config, img_dir, coarse_file, out)) == 3
    assert capsys.readouterr().err.strip() == (
        f'refine.py: cannot write {out}: {os.strerror(error)}; the 2 images finished so far are '
        f'kept: {advice}')


def test_an_error_that_is_no_images_shows_its_traceback_and_exits_3(tmp_path, config,
                                                                   monkeypatch, capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)

    def merge(self, keys=None):
        raise RuntimeError('a bug in the merge')

    monkeypatch.setattr(RefinedCocoWriter, 'merge', merge)
    out = tmp_path / 'refined.json'
    assert exit_status(coco_argv(config, img_dir, coarse_file, out)) == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == 'Traceback (most recent call last):'
    assert 'RuntimeError: a bug in the merge' in err
    assert err[-1] == ("refine.py: the run stopped on the error above, which is not an image's; "
                       'the images finished so far are kept: run the same command again once it '
                       'is fixed (exit status 3)')
    assert len(records_of(str(out) + '.parts')) == 2


@pytest.mark.parametrize('config_name,extra,says', [
    ('missing.py', [], 'refine.py: the config {tmp}/missing.py does not exist'),
    (None, ['--max-pixels', '-1'], '--max-pixels is >= 0'),
    (None, ['--eval', '{tmp}/no_gt.json'], 'refine.py: --eval {tmp}/no_gt.json does not exist'),
])
def test_bad_arguments_exit_2(tmp_path, config, no_model, capsys, config_name, extra, says):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=1)
    config = str(tmp_path / config_name) if config_name else config
    extra = [a.format(tmp=tmp_path) for a in extra]
    assert exit_status(coco_argv(config, img_dir, coarse_file, tmp_path / 'r.json', *extra)) == 2
    assert says.format(tmp=tmp_path) in capsys.readouterr().err
    assert not osp.exists(tmp_path / 'r.json.parts')
