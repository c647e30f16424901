# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/refine.py re-runs and inputs (issue 14): a record is reused only while
its input, the settings and its outputs are unchanged; bad records fail only
their image; bad files fail at once with one sentence; one run per output;
exit status 1 when an image failed."""
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest
import torch

from mmsamrefiner.mask_io.records import OutputLock
from mmsamrefiner.refiner import SAMRefiner
from mmsamrefiner.testing import write_label_map_collection

from ..mm_data import HEIGHT, WIDTH, make_coco_dataset
from .refine_helpers import load, refine_tool, run, save


def coco(tmp_path, num_images=3):
    ann_file = make_coco_dataset(tmp_path / 'coarse', num_images=num_images, coarse=True)
    return str(tmp_path / 'coarse' / 'images'), ann_file


def coco_argv(config, img_dir, ann_file, out, *extra):
    return [config, '--img-dir', img_dir, '--coco', ann_file, '--out', str(out), *extra]


def test_a_record_holds_digests_of_input_settings_and_outputs(tmp_path, config):
    img_dir, ann_file = coco(tmp_path, 2)
    out = tmp_path / 'refined.json'
    run(coco_argv(config, img_dir, ann_file, out))
    record = load(tmp_path / 'refined.json.parts' / '.records' / '1.json')
    assert record['status'] == 'refined' and record['transient'] is False
    assert {'key', 'img_path', 'status', 'input', 'settings', 'outputs', 'num_masks',
            'num_empty', 'seconds'} <= set(record)
    assert list(record['outputs']) == ['1.json'] and len(record['input']) == 32
    assert osp.exists(tmp_path / 'refined.json.parts' / '.lock')


def test_a_changed_input_json_redoes_its_images(tmp_path, config, capsys):
    img_dir, ann_file = coco(tmp_path)
    out = tmp_path / 'refined.json'
    run(coco_argv(config, img_dir, ann_file, out))
    coarse = load(ann_file)
    ann = next(a for a in coarse['annotations'] if a['image_id'] == 2)
    ann['segmentation'] = [[v + 3 for v in polygon] for polygon in ann['segmentation']]
    save(ann_file, coarse)
    capsys.readouterr()
    report = run(coco_argv(config, img_dir, ann_file, out))
    summary = report['rank_summary']
    assert (summary['skipped'], summary['done']) == (2, 1)
    assert summary['redo'] == {'input changed': 1}
    assert 'reusing 2 finished image(s), refining 1 (input changed: 1)' in capsys.readouterr().out
    fresh = tmp_path / 'fresh.json'
    run(coco_argv(config, img_dir, ann_file, fresh))
    assert load(out) == load(fresh)


def test_changed_settings_redo_every_image(tmp_path, config, capsys):
    img_dir, ann_file = coco(tmp_path, 2)
    out, fresh = tmp_path / 'refined.json', tmp_path / 'fresh.json'
    run(coco_argv(config, img_dir, ann_file, out, '--cfg-options', 'refiner.iters=1'))
    capsys.readouterr()
    report = run(coco_argv(config, img_dir, ann_file, out))
    assert report['rank_summary']['redo'] == {'settings changed': 2}
    assert report['rank_summary']['skipped'] == 0
    assert 'refining 2 (settings changed: 2)' in capsys.readouterr().out
    run(coco_argv(config, img_dir, ann_file, fresh))
    assert load(out) == load(fresh)
    # unchanged: everything reused; --overwrite: everything redone
    assert run(coco_argv(config, img_dir, ann_file, out))['rank_summary']['skipped'] == 2
    report = run(coco_argv(config, img_dir, ann_file, out, '--overwrite'))
    assert report['rank_summary']['redo'] == {'overwrite': 2}
    assert load(out) == load(fresh)


def test_a_deleted_or_edited_output_is_written_again(tmp_path, config):
    root = write_label_map_collection(str(tmp_path / 'seg'), num_images=3, coarse=True,
                                      height=HEIGHT, width=WIDTH)
    out = tmp_path / 'refined'
    argv = [config, '--img-dir', osp.join(root, 'img_dir'), '--label-dir',
            osp.join(root, 'ann_dir'), '--out', str(out)]
    run(argv)
    first = {name: (out / name).read_bytes() for name in ('0000.png', '0001.png')}
    os.remove(out / '0000.png')
    cv2.imwrite(str(out / '0001.png'), np.zeros((HEIGHT, WIDTH), np.uint8))
    report = run(argv)
    assert report['rank_summary']['redo'] == {'output missing or changed': 2}
    assert report['rank_summary']['skipped'] == 1
    assert {name: (out / name).read_bytes() for name in first} == first
    assert [r['status'] for r in report['records']] == ['refined'] * 3


def test_a_failed_image_is_retried_once_fixed(tmp_path, config):
    img_dir, ann_file = coco(tmp_path, 2)
    image = osp.join(img_dir, '0001.png')
    shutil.move(image, str(tmp_path / 'aside.png'))
    out = tmp_path / 'refined.json'
    report = run(coco_argv(config, img_dir, ann_file, out))
    failed = [r for r in report['records'] if r['status'] == 'failed']
    assert [r['key'] for r in failed] == ['2'] and failed[0]['transient'] is False
    report = run(coco_argv(config, img_dir, ann_file, out))  # nothing changed: final
    assert report['rank_summary']['skipped'] == 2 and report['rank_summary']['done'] == 0
    assert [r['status'] for r in report['records']] == ['refined', 'failed']
    shutil.move(str(tmp_path / 'aside.png'), image)  # fixed
    report = run(coco_argv(config, img_dir, ann_file, out))
    assert report['rank_summary']['redo'] == {'input changed': 1}
    assert [r['status'] for r in report['records']] == ['refined', 'refined']
    fresh = tmp_path / 'fresh.json'
    run(coco_argv(config, img_dir, ann_file, fresh))
    assert load(out) == load(fresh)


def test_a_transient_failure_is_retried_by_the_next_run(tmp_path, config, monkeypatch,
                                                         capsys):
    img_dir, ann_file = coco(tmp_path, 2)
    refine = SAMRefiner.refine
    calls = []

    def out_of_memory_once(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError('CUDA out of memory. Tried to allocate 2.00 GiB')
        return refine(self, *args, **kwargs)

    monkeypatch.setattr(SAMRefiner, 'refine', out_of_memory_once)
    out = tmp_path / 'refined.json'
    report = run(coco_argv(config, img_dir, ann_file, out))
    assert [(r['status'], r['transient']) for r in report['records']] == [
        ('failed', True), ('refined', False)]
    printed = capsys.readouterr().out
    assert '1 of them to be retried by the next run' in printed
    assert 'RuntimeError: CUDA out of memory' in printed and '[transient' in printed
    monkeypatch.setattr(SAMRefiner, 'refine', refine)
    report = run(coco_argv(config, img_dir, ann_file, out))
    assert report['rank_summary']['redo'] == {'failed transiently before': 1}
    assert [r['status'] for r in report['records']] == ['refined', 'refined']


def test_duplicate_annotation_ids_are_refused(tmp_path, config, no_model):
    img_dir, ann_file = coco(tmp_path, 2)
    coarse = load(ann_file)
    first = next(a for a in coarse['annotations'] if a['image_id'] == 1)
    second = next(a for a in coarse['annotations'] if a['image_id'] == 2)
    second['id'] = first['id']
    save(ann_file, coarse)
    with pytest.raises(SystemExit, match=rf'id {first["id"]} in images 1, 2.*own'):
        run(coco_argv(config, img_dir, ann_file, tmp_path / 'refined.json'))
    assert not osp.exists(tmp_path / 'refined.json.parts')


def test_a_truncated_jpeg_fails_its_image(tmp_path, config):
    img_dir, ann_file = coco(tmp_path, 2)
    image = cv2.imread(osp.join(img_dir, '0001.png'))
    ok, encoded = cv2.imencode('.jpg', image)
    data = encoded.tobytes()
    with open(osp.join(img_dir, '0001.jpg'), 'wb') as f:
        f.write(data[:len(data) * 2 // 3])
    coarse = load(ann_file)
    coarse['images'][1]['file_name'] = '0001.jpg'
    save(ann_file, coarse)
    for encode_batch in ('1', '2'):
        report = run(coco_argv(config, img_dir, ann_file, tmp_path / f'{encode_batch}.json',
                               '--encode-batch', encode_batch))
        failed = [r for r in report['records'] if r['status'] == 'failed']
        assert [r['key'] for r in failed] == ['2']
        assert 'truncated' in failed[0]['reason'] and not failed[0]['transient']


def test_each_malformed_record_fails_only_its_image(tmp_path, config, capsys):
    img_dir, ann_file = coco(tmp_path, 4)
    coarse = load(ann_file)
    anns = {image_id: next(a for a in coarse['annotations'] if a['image_id'] == image_id)
            for image_id in (2, 3, 4)}
    anns[2]['segmentation'] = [[10, 10, 20, 20]]  # two points
    anns[3]['segmentation'] = dict(size=[50, 60], counts='PPYo0')  # another size
    del anns[4]['id']
    save(ann_file, coarse)
    out = tmp_path / 'refined.json'
    with pytest.raises(SystemExit) as exit_info:
        refine_tool.main(coco_argv(config, img_dir, ann_file, out, '--device', 'cpu'))
    assert exit_info.value.code == 1
    printed = capsys.readouterr()
    summary = printed.out
    assert 'images: 4 (1 refined, 3 failed' in summary
    assert (f'failed: 2 ({img_dir}/0001.png): AnnotationError: annotation {anns[2]["id"]}: '
            'polygon 0 has 2 point(s); a polygon needs at least 3') in summary
    assert (f'annotation {anns[3]["id"]}: its RLE has size [50, 60] (height, width) but the '
            f'image is {HEIGHT}x{WIDTH}') in summary
    position = coarse['annotations'].index(anns[4])
    assert (f'annotation at position {position} of "annotations" (image 4) has no "id"'
            in summary)
    assert '3 image(s) failed' in printed.err
    records = {r['key']: r for r in load_records(tmp_path / 'refined.json.parts')}
    assert records['2']['ann_id'] == anns[2]['id'] and records['4']['ann_id'] is None
    refined = load(out)  # written all the same: bad images' annotations unchanged
    for before, after in zip(coarse['annotations'], refined['annotations']):
        if before['image_id'] == 1:
            assert isinstance(after['segmentation'], dict) and 'refined_score' in after
        else:
            assert after == before


def load_records(parts):
    return [load(osp.join(parts, '.records', f)) for f in os.listdir(osp.join(parts, '.records'))]


@pytest.mark.parametrize('content,message', [
    ('[{"id": 1}]', 'holds a JSON list, not a COCO instance json'),
    ('{}', 'has no "images" (it has nothing), so it is not a COCO instance json'),
    ('{"version": "5.0.1", "shapes": [], "imagePath": "a.jpg", "imageData": null}',
     'is a labelme file'),
    ('{"images": [], "annotations": [', 'is not valid JSON'),
])
def test_a_file_that_is_not_coco_fails_at_once(tmp_path, config, no_model, capsys, content,
                                               message):
    ann_file = tmp_path / 'coarse.json'
    ann_file.write_text(content)
    with pytest.raises(SystemExit) as exit_info:
        refine_tool.main(coco_argv(config, str(tmp_path / 'images'), str(ann_file),
                                   tmp_path / 'out.json'))
    assert exit_info.value.code == 2  # refused before starting
    text = capsys.readouterr().err.strip()
    assert message in text and str(ann_file) in text and '\n' not in text
    assert not osp.exists(tmp_path / 'out.json.parts')


def test_bad_checkpoints_get_the_packages_messages(tmp_path, tiny_sam_checkpoint):
    from mmengine.logging import MessageHub

    from .._tiny import tiny_refiner_config
    img_dir, ann_file = coco(tmp_path, 1)
    text = tmp_path / 'sam.pth'
    text.write_text('version https://git-lfs.github.com/spec/v1\noid sha256:abc\n')
    config = tiny_refiner_config(tmp_path, str(text))
    with pytest.raises(SystemExit, match='is a text file .*not a PyTorch file'):
        run(coco_argv(config, img_dir, ann_file, tmp_path / 'a.json'))
    hub = MessageHub.get_instance('refine-test')
    hub.update_scalar('train/loss', 1.0)
    runner = tmp_path / 'epoch_1.pth'
    torch.save(dict(meta=dict(epoch=1), state_dict={}, message_hub=hub.state_dict()), runner)
    config = tiny_refiner_config(tmp_path, tiny_sam_checkpoint)
    with open(config, 'a') as f:
        f.write(f'refiner["iou_adapter"] = dict(checkpoint={str(runner)!r})\n')
    with pytest.raises(SystemExit, match='IoU adapter .*mmengine runner checkpoint'):
        run(coco_argv(config, img_dir, ann_file, tmp_path / 'b.json'))


def test_an_unwritable_out_is_found_before_the_model_loads(tmp_path, config, no_model):
    img_dir, ann_file = coco(tmp_path, 1)
    (tmp_path / 'a_file').write_text('')
    with pytest.raises(SystemExit, match='cannot write to --out'):
        run(coco_argv(config, img_dir, ann_file, tmp_path / 'a_file' / 'refined.json'))


def test_a_second_run_on_the_same_out_is_refused(tmp_path, config, no_model, monkeypatch):
    img_dir, ann_file = coco(tmp_path, 1)
    out = tmp_path / 'refined.json'
    with OutputLock(str(out) + '.parts'):
        with pytest.raises(SystemExit, match=rf'being written by another run \(pid '
                                              rf'{os.getpid()} on .*another --out'):
            run(coco_argv(config, img_dir, ann_file, out))
    monkeypatch.undo()  # released (and the model may load): the run goes on
    assert run(coco_argv(config, img_dir, ann_file, out))['rank_summary']['done'] == 1


def test_exit_status_is_zero_when_every_image_is_refined(tmp_path, config):
    img_dir, ann_file = coco(tmp_path, 1)
    assert refine_tool.main(coco_argv(config, img_dir, ann_file, tmp_path / 'r.json',
                                      '--device', 'cpu')) is None
    os.remove(osp.join(img_dir, '0000.png'))
    with pytest.raises(SystemExit) as exit_info:
        refine_tool.main(coco_argv(config, img_dir, ann_file, tmp_path / 'r.json',
                                   '--device', 'cpu'))
    assert exit_info.value.code == 1 and osp.exists(tmp_path / 'r.json')
