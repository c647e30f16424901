# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""tools/refine.py on hostile and odd inputs: ids and stems never name paths,
colliding output names, outputs inside inputs and malformed image records are
refused before anything is written, images outside --img-dir are read only
when allowed."""
import importlib
import os
import os.path as osp
import shutil

import cv2
import numpy as np
import pytest

from mmsamrefiner.synthetic import make_scene
from mmsamrefiner.testing import write_label_map_collection
from mmsamrefiner.utils.file_keys import file_key

from ..mm_data import HEIGHT, WIDTH
from .refine_helpers import coco_collection, exit_status, files_under, load, save

#: the module (``mmsamrefiner.apis.refine_collection`` is also the function's name)
refine_collection_module = importlib.import_module('mmsamrefiner.apis.refine_collection')


def renumber(coco, new_ids):
    """``coco`` with image ``old`` renamed ``new_ids[old]`` (annotations too)."""
    for image in coco['images']:
        image['id'] = new_ids.get(image['id'], image['id'])
    for ann in coco['annotations']:
        ann['image_id'] = new_ids.get(ann['image_id'], ann['image_id'])
    return coco


def test_image_ids_never_name_paths(tmp_path, config, capsys):
    img_dir, coarse_file, gt_file = coco_collection(tmp_path)
    victim = tmp_path / 'victim' / 'important.json'
    victim.parent.mkdir()
    victim.write_text('precious')
    new_ids = {1: '../../victim/important', 2: str(tmp_path / 'abs' / 'x'), 3: '.records'}
    save(coarse_file, renumber(load(coarse_file), new_ids))
    save(gt_file, renumber(load(gt_file), new_ids))
    out, show = tmp_path / 'work' / 'refined.json', tmp_path / 'work' / 'show'
    before = files_under(tmp_path)
    code = exit_status([config, '--img-dir', img_dir, '--coco', coarse_file, '--out', str(out),
                        '--eval', gt_file, '--show-dir', str(show)])
    assert code == 0, capsys.readouterr()
    assert 'images: 3 (3 refined, 0 failed' in capsys.readouterr().out
    assert victim.read_text() == 'precious'
    new = files_under(tmp_path) - before
    allowed = ('work/refined.json.parts/', 'work/show/')
    assert {f for f in new if not f.startswith(allowed)} == {'work/refined.json',
                                                            'work/refined.json.eval.json'}
    keys = sorted(file_key(i) for i in new_ids.values())
    assert all('/' not in key and not key.startswith('.') for key in keys)
    assert {f for f in new if f.startswith(allowed[0])} == {
        *(f'work/refined.json.parts/{k}.json' for k in keys),
        *(f'work/refined.json.parts/.records/{k}.json' for k in keys),
        'work/refined.json.parts/.lock'}
    assert sorted(os.listdir(show)) == [f'{k}.jpg' for k in keys]
    refined = load(out)  # merged by the same keys: every annotation refined
    assert all('refined_score' in ann for ann in refined['annotations'])
    assert 'left_out' not in load(str(out) + '.eval.json')


def test_odd_mask_folder_stems_get_safe_output_names(tmp_path, config, capsys):
    stems = ['.records', 'a b']
    os.makedirs(tmp_path / 'images')
    for seed, stem in enumerate(stems):
        scene = make_scene(seed=seed, height=HEIGHT, width=WIDTH, num_objects=2)
        cv2.imwrite(str(tmp_path / 'images' / f'{stem}.png'), scene.image[..., ::-1])
        for sub in ('coarse', 'gt'):
            os.makedirs(tmp_path / sub / stem)
            for k, mask in enumerate(scene.masks):
                cv2.imwrite(str(tmp_path / sub / stem / f'{k}.png'), mask.astype(np.uint8) * 255)
    out, show = tmp_path / 'refined', tmp_path / 'show'
    code = exit_status([config, '--img-dir', str(tmp_path / 'images'), '--mask-dir',
                        str(tmp_path / 'coarse'), '--out', str(out), '--eval',
                        str(tmp_path / 'gt'), '--show-dir', str(show)])
    assert code == 0, capsys.readouterr()
    keys = sorted(file_key(stem) for stem in stems)
    assert keys != sorted(stems) and all(not key.startswith('.') for key in keys)
    assert sorted(os.listdir(out / '.records')) == [f'{k}.json' for k in keys]
    for key in keys:
        assert sorted(os.listdir(out / key)) == ['0.png', '1.png', 'signals.json']
    assert sorted(os.listdir(show)) == [f'{k}.jpg' for k in keys]
    scores = load(out / 'eval.json')
    assert 'left_out' not in scores and scores['refined']['miou'] > 0


def test_ids_that_share_an_output_name_are_refused(tmp_path, config, no_model, capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    save(coarse_file, renumber(load(coarse_file), {1: 1, 2: '1'}))
    before = files_under(tmp_path)
    code = exit_status([config, '--img-dir', img_dir, '--coco', coarse_file, '--out',
                        str(tmp_path / 'refined.json')])
    assert code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith('refine.py: images 1 and "1" of ') and '\n' not in message
    assert "outputs as '1'" in message
    assert files_under(tmp_path) == before


def test_ids_that_differ_only_by_unsafe_characters_are_both_refined(tmp_path, config):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    save(coarse_file, renumber(load(coarse_file), {1: 'a/b', 2: 'a_b'}))
    out = tmp_path / 'refined.json'
    assert exit_status([config, '--img-dir', img_dir, '--coco', coarse_file, '--out',
                        str(out)]) == 0
    assert file_key('a/b') != 'a_b'
    assert sorted(os.listdir(str(out) + '.parts/.records')) == sorted(
        [f'{file_key("a/b")}.json', 'a_b.json'])
    refined = load(out)
    assert {ann['image_id'] for ann in refined['annotations']} == {'a/b', 'a_b'}
    assert all('refined_score' in ann for ann in refined['annotations'])


def _inputs(tmp_path):
    """A coco collection, a label-map folder and a mask folder under tmp_path."""
    img_dir, coarse_file, gt_file = coco_collection(tmp_path, num_images=1)
    root = write_label_map_collection(str(tmp_path / 'seg'), num_images=1, coarse=True,
                                      height=HEIGHT, width=WIDTH)
    masks = tmp_path / 'data' / 'coarse'
    os.makedirs(masks / '0000')
    shutil.copy(osp.join(root, 'ann_dir', '0000.png'), masks / '0000' / '0.png')
    os.symlink(masks, tmp_path / 'link')
    return dict(img=img_dir, coco=coarse_file, gt=gt_file, labels=osp.join(root, 'ann_dir'),
                seg_img=osp.join(root, 'img_dir'), masks=str(masks), data=str(tmp_path / 'data'),
                parts=str(tmp_path / 'x.json.parts'), tmp=str(tmp_path))


# (arguments after the config, what the message says about the two paths)
OVERLAPS = {
    'coco is out': (['--img-dir', '{img}', '--coco', '{coco}', '--out', '{coco}'],
                    '--out {coco} is --coco {coco}'),
    'mask-dir is out': (['--img-dir', '{img}', '--mask-dir', '{masks}', '--out', '{masks}'],
                        '--out {masks} is --mask-dir {masks}'),
    'label-dir is out': (['--img-dir', '{seg_img}', '--label-dir', '{labels}', '--out',
                          '{labels}'], '--out {labels} is --label-dir {labels}'),
    'out inside mask-dir': (['--img-dir', '{img}', '--mask-dir', '{masks}', '--out',
                             '{masks}/refined'],
                            '--out {masks}/refined is inside --mask-dir {masks}'),
    'out inside img-dir': (['--img-dir', '{img}', '--coco', '{coco}', '--out',
                            '{img}/refined.json'],
                           '--out {img}/refined.json is inside --img-dir {img}'),
    'out contains mask-dir': (['--img-dir', '{img}', '--mask-dir', '{masks}', '--out', '{data}'],
                              '--out {data} contains --mask-dir {masks}'),
    'out through a link into mask-dir': (
        ['--img-dir', '{img}', '--mask-dir', '{masks}', '--out', '{tmp}/link/refined'],
        '--out {tmp}/link/refined is inside --mask-dir {masks}'),
    'parts folder contains coco': (
        ['--img-dir', '{img}', '--coco', '{parts}/c.json', '--out', '{tmp}/x.json'],
        'the parts folder of --out {parts} contains --coco {parts}/c.json'),
    'show-dir is img-dir': (['--img-dir', '{img}', '--coco', '{coco}', '--out',
                             '{tmp}/r.json', '--show-dir', '{img}'],
                            '--show-dir {img} is --img-dir {img}'),
    'show-dir inside mask-dir': (['--img-dir', '{img}', '--mask-dir', '{masks}', '--out',
                                  '{tmp}/r', '--show-dir', '{masks}/show'],
                                 '--show-dir {masks}/show is inside --mask-dir {masks}'),
    'eval is out': (['--img-dir', '{img}', '--coco', '{coco}', '--out', '{gt}', '--eval',
                     '{gt}'], '--out {gt} is --eval {gt}'),
}


@pytest.mark.parametrize('case', list(OVERLAPS))
def test_an_output_where_an_input_is_is_refused(tmp_path, config, no_model, capsys, case):
    paths = _inputs(tmp_path)
    if case == 'parts folder contains coco':
        os.makedirs(paths['parts'])
        shutil.copy(paths['coco'], osp.join(paths['parts'], 'c.json'))
    argv, says = OVERLAPS[case]
    before = files_under(tmp_path)
    code = exit_status([config] + [a.format(**paths) for a in argv])
    message = capsys.readouterr().err.strip()
    assert code == 2, message
    assert message.startswith('refine.py: ' + says.format(**paths) + ', an input; ')
    assert '\n' not in message
    assert files_under(tmp_path) == before


def _move_images_away(tmp_path, img_dir, coarse_file):
    """Image 1's file_name leads up and out of img_dir, image 2's is absolute."""
    elsewhere = tmp_path / 'elsewhere'
    elsewhere.mkdir()
    coarse = load(coarse_file)
    shutil.move(osp.join(img_dir, '0000.png'), elsewhere / '0000.png')
    shutil.move(osp.join(img_dir, '0001.png'), elsewhere / '0001.png')
    coarse['images'][0]['file_name'] = '../../elsewhere/0000.png'
    coarse['images'][1]['file_name'] = str(elsewhere / '0001.png')
    save(coarse_file, coarse)
    return elsewhere


def test_images_outside_img_dir_are_read_only_when_allowed(tmp_path, config, monkeypatch,
                                                           capsys):
    img_dir, coarse_file, _ = coco_collection(tmp_path)
    elsewhere = _move_images_away(tmp_path, img_dir, coarse_file)
    read = []
    load_rgb_image = refine_collection_module.load_rgb_image
    monkeypatch.setattr(refine_collection_module, 'load_rgb_image',
                        lambda path, *a, **k: read.append(path) or load_rgb_image(path, *a, **k))
    out = tmp_path / 'refined.json'
    argv = [config, '--img-dir', img_dir, '--coco', coarse_file, '--out', str(out)]
    for encode_batch in ('1', '3'):
        assert exit_status(argv + ['--encode-batch', encode_batch, '--overwrite']) == 1
    assert not any(str(elsewhere) in osp.realpath(path) for path in read)
    records = {r['key']: r for r in map(load, (out.parent / 'refined.json.parts' /
                                               '.records').glob('*.json'))}
    assert [records[k]['status'] for k in ('1', '2', '3')] == ['failed', 'failed', 'refined']
    assert records['1']['reason'] == (
        'InputRefused: image 1 has "file_name" "../../elsewhere/0000.png", which leads '
        f'outside --img-dir {img_dir}; pass --allow-outside-img-dir if the collection means it')
    assert 'pass --allow-outside-img-dir' in records['2']['reason']
    assert not records['1']['transient']
    capsys.readouterr()
    assert exit_status(argv + ['--allow-outside-img-dir']) == 0  # refused under other limits
    assert 'refining 2 (limits changed: 2)' in capsys.readouterr().out
    assert exit_status(argv + ['--allow-outside-img-dir']) == 0  # now reused
    assert 'reusing 3 finished image(s), refining 0' in capsys.readouterr().out


def test_a_folder_of_links_to_images_elsewhere_is_refined(tmp_path, config):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    links = tmp_path / 'links'
    links.mkdir()
    for name in os.listdir(img_dir):
        os.symlink(osp.join(img_dir, name), links / name)
    assert exit_status([config, '--img-dir', str(links), '--coco', coarse_file, '--out',
                        str(tmp_path / 'refined.json')]) == 0


MALFORMED = {
    'file_name null': (lambda c: c['images'][0].update(file_name=None),
                       'image 1 (entry 0 of "images") in {ann} has "file_name" null; it must be'),
    'file_name 3': (lambda c: c['images'][0].update(file_name=3), 'has "file_name" 3; it must'),
    'file_name empty': (lambda c: c['images'][0].update(file_name=''),
                        'has "file_name" ""; it must be'),
    'id list': (lambda c: c['images'][0].update(id=[1]),
                'entry 0 of "images" in {ann} has "id" [1]; image ids must be integers or '
                'strings'),
    'id true': (lambda c: c['images'][0].update(id=True), 'has "id" true; image ids must be'),
    'id null': (lambda c: c['images'][0].update(id=None), 'has "id" null; image ids must be'),
    'id float': (lambda c: c['images'][0].update(id=1.5), 'has "id" 1.5; image ids must be'),
    'image_id list': (lambda c: c['annotations'][0].update(image_id=[1]),
                      'entry 0 of "annotations" in {ann} (id 1) has "image_id" [1]; it must be '
                      'the id (an integer or a string) of an entry of "images"'),
}


@pytest.mark.parametrize('case', list(MALFORMED))
def test_a_malformed_image_record_is_refused_in_one_sentence(tmp_path, config, no_model,
                                                             capsys, case):
    img_dir, coarse_file, _ = coco_collection(tmp_path, num_images=2)
    coarse = load(coarse_file)
    spoil, says = MALFORMED[case]
    spoil(coarse)
    save(coarse_file, coarse)
    before = files_under(tmp_path)
    code = exit_status([config, '--img-dir', img_dir, '--coco', coarse_file, '--out',
                        str(tmp_path / 'refined.json')])
    err = capsys.readouterr().err.strip()
    assert code == 2, err
    assert err.startswith('refine.py: ') and '\n' not in err and 'Traceback' not in err
    assert says.format(ann=coarse_file) in err
    assert files_under(tmp_path) == before
