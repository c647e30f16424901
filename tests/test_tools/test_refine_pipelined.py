# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/refine.py --workers: the pipelined loop (reader threads ahead of the
refiner, a writer thread behind it) writes, byte for byte, what the loop
without threads (--workers 0) writes, in every format; its records are the
same but for their timing; a run killed or interrupted mid-way resumes to
the same output; an unreadable image fails alone."""
import os
import os.path as osp
import signal
import subprocess
import sys

import cv2
import numpy as np
import pytest

from mmsamrefiner.mask_io.records import RecordBook
from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.synthetic.defects import make_coarse_masks
from mmsamrefiner.testing import write_label_map_collection

from ..mm_data import HEIGHT, WIDTH
from .refine_helpers import ROOT, coco_collection, exit_status, files_under, load, run


def written(root):
    """``({output path: bytes}, {key: record without its timing})`` under
    ``root`` (the lock, which names the process, left out)."""
    outputs, records = {}, {}
    for path in sorted(files_under(root)):
        if path == '.lock':
            continue
        if path.startswith('.records' + os.sep):
            record = load(osp.join(root, path))
            del record['seconds']
            records[record['key']] = record
        else:
            with open(osp.join(root, path), 'rb') as f:
                outputs[path] = f.read()
    return outputs, records


def recorded_keys(root):
    """The keys of ``root``'s records."""
    return sorted(n[:-len('.json')] for n in os.listdir(osp.join(root, '.records')))


def coco_argv(config, img_dir, coarse_file, out, *extra):
    return [config, '--img-dir', img_dir, '--coco', coarse_file, '--out', str(out), *extra]


def test_coco_outputs_and_overlays_are_the_same_with_and_without_workers(tmp_path, config):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=5)
    results = {}
    for workers in ('0', '2'):
        out = tmp_path / f'refined_{workers}.json'
        show = tmp_path / f'show_{workers}'
        run(coco_argv(config, img_dir, coarse_file, out, '--workers', workers,
                      '--show-dir', str(show)))
        with open(out, 'rb') as f:
            merged = f.read()
        results[workers] = (merged, written(str(out) + '.parts'), written(str(show))[0])
    assert results['2'] == results['0']
    merged, (parts, records), overlays = results['0']
    assert len(parts) == 5 and len(records) == 5 and len(overlays) == 5
    assert all(r['status'] == 'refined' for r in records.values())


def test_label_maps_are_the_same_with_and_without_workers(tmp_path, config):
    root = write_label_map_collection(str(tmp_path / 'seg'), num_images=5, coarse=True,
                                      height=HEIGHT, width=WIDTH)
    results = {}
    for workers in ('0', '2'):
        out = tmp_path / f'refined_{workers}'
        run([config, '--img-dir', osp.join(root, 'img_dir'), '--label-dir',
             osp.join(root, 'ann_dir'), '--out', str(out), '--workers', workers])
        results[workers] = written(str(out))
    assert results['2'] == results['0']
    assert len(results['0'][0]) == 11  # 5 maps, their class tables, class_signals.csv


def write_binary_mask_collection(root, num_images):
    """``root/images/NNNN.png`` and ``root/coarse/NNNN/<k>.png`` (image 1 with
    no mask)."""
    for index in range(num_images):
        scene = make_scene(seed=index, height=HEIGHT, width=WIDTH, num_objects=3)
        os.makedirs(root / 'images', exist_ok=True)
        cv2.imwrite(str(root / 'images' / f'{index:04d}.png'), scene.image[..., ::-1])
        os.makedirs(root / 'coarse' / f'{index:04d}')
        masks = make_coarse_masks(scene.masks, seed=index) if index != 1 else []
        for k, mask in enumerate(masks):
            cv2.imwrite(str(root / 'coarse' / f'{index:04d}' / f'{k}.png'),
                        mask.astype(np.uint8) * 255)


def test_binary_masks_are_the_same_with_and_without_workers(tmp_path, config):
    write_binary_mask_collection(tmp_path, 4)
    results = {}
    for workers in ('0', '2'):
        out = tmp_path / f'refined_{workers}'
        run([config, '--img-dir', str(tmp_path / 'images'), '--mask-dir',
             str(tmp_path / 'coarse'), '--out', str(out), '--workers', workers])
        results[workers] = written(str(out))
    assert results['2'] == results['0']
    assert len(results['0'][1]) == 4


@pytest.mark.parametrize('encode_batch', ['1', '3'])
def test_unreadable_images_fail_alone_with_workers(tmp_path, config, capsys, monkeypatch,
                                                   encode_batch):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=5)
    os.remove(osp.join(img_dir, '0001.png'))  # image 2: missing
    with open(osp.join(img_dir, '0003.png'), 'wb') as f:  # image 4: not an image
        f.write(b'not a png at all')
    write_record, order = RecordBook.write, []

    def write_in_order(book, key, **record):
        order.append(key)
        write_record(book, key, **record)

    monkeypatch.setattr(RecordBook, 'write', write_in_order)
    results = {}
    for workers in ('0', '2'):
        out = tmp_path / f'refined_{workers}.json'
        assert exit_status(coco_argv(config, img_dir, coarse_file, out, '--workers', workers,
                                     '--encode-batch', encode_batch)) == 1
        results[workers] = written(str(out) + '.parts')
    assert results['2'] == results['0']
    assert order == list('12345') * 2  # recorded in the collection's order
    records = results['2'][1]
    assert [records[k]['status'] for k in '12345'] == [
        'refined', 'failed', 'refined', 'failed', 'refined']
    assert records['2']['reason'].startswith('FileNotFoundError: image ')
    assert records['4']['reason'].startswith('ValueError: image ')
    assert 'cannot be read as an image' in records['4']['reason']
    assert not records['2']['transient'] and not records['4']['transient']
    assert records['2']['num_masks'] > 0  # its coarse masks are passed through
    assert 'failed: 2 (' in capsys.readouterr().out


def test_an_interrupt_while_refining_keeps_the_images_written_before(tmp_path, config,
                                                                    monkeypatch):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=5)
    reference = tmp_path / 'reference.json'
    run(coco_argv(config, img_dir, coarse_file, reference, '--workers', '0'))
    refine, calls = SAMRefiner.refine, []

    def interrupt_the_third(self, *args, **kwargs):  # Ctrl-C while image 3 is refined
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return refine(self, *args, **kwargs)

    monkeypatch.setattr(SAMRefiner, 'refine', interrupt_the_third)
    out = tmp_path / 'refined.json'
    with pytest.raises(KeyboardInterrupt):
        run(coco_argv(config, img_dir, coarse_file, out, '--workers', '2'))
    monkeypatch.undo()
    parts = str(out) + '.parts'
    assert recorded_keys(parts) == ['1', '2']  # the writer finished both before stopping
    assert sorted(p for p in files_under(parts) if p.endswith('.json') and '/' not in p) == [
        '1.json', '2.json']
    report = run(coco_argv(config, img_dir, coarse_file, out, '--workers', '2'))
    assert (report['rank_summary']['skipped'], report['rank_summary']['done']) == (2, 3)
    with open(out, 'rb') as got, open(reference, 'rb') as want:
        assert got.read() == want.read()


KILLED_RUN = """
import os, runpy, signal, sys
from mmsamrefiner.mask_io.records import RecordBook
write, written = RecordBook.write, []
def write_then_die(book, key, **record):  # killed once two images are recorded
    write(book, key, **record)
    written.append(key)
    if len(written) == 2:
        os.kill(os.getpid(), signal.SIGKILL)
RecordBook.write = write_then_die
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


@pytest.mark.slow  # a tool run in a subprocess
def test_a_run_killed_mid_way_with_workers_resumes_to_the_same_output(tmp_path, config):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=4)
    reference = tmp_path / 'reference.json'
    run(coco_argv(config, img_dir, coarse_file, reference, '--workers', '0'))
    out = tmp_path / 'refined.json'
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get('PYTHONPATH', ''))
    killed = subprocess.run(
        [sys.executable, '-c', KILLED_RUN, osp.join(ROOT, 'tools', 'refine.py'),
         *coco_argv(config, img_dir, coarse_file, out, '--workers', '2', '--device', 'cpu')],
        env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    parts = str(out) + '.parts'
    assert recorded_keys(parts) == ['1', '2'] and not osp.exists(out)
    report = run(coco_argv(config, img_dir, coarse_file, out))  # the default workers
    assert (report['rank_summary']['skipped'], report['rank_summary']['done']) == (2, 2)
    with open(out, 'rb') as got, open(reference, 'rb') as want:
        assert got.read() == want.read()


def test_workers_must_be_a_count(tmp_path, config, capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=1)
    with pytest.raises(SystemExit) as exit_info:
        run(coco_argv(config, img_dir, coarse_file, tmp_path / 'out.json', '--workers', '-1'))
    assert exit_info.value.code == 2
    assert '--workers is a number of threads, >= 0' in capsys.readouterr().err
