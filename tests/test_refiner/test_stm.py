# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Split-then-merge on hand-made label maps."""
import numpy as np
import pytest

from mmsamrefiner import RefineResult, SAMRefiner
from mmsamrefiner.refiner.stm import (
    group_fragments,
    merge_instances,
    residual_fragments,
    split_class_mask,
    split_then_merge,
)


def test_far_apart_blobs_are_separate_instances():
    mask = np.zeros((60, 100), bool)
    mask[5:20, 5:20] = True
    mask[40:55, 70:95] = True
    instances = split_class_mask(mask)
    assert instances.shape == (2, 60, 100)
    assert instances[0, 10, 10] and instances[1, 50, 80]
    assert not (instances[0] & instances[1]).any()
    np.testing.assert_array_equal(instances.any(0), mask)


def test_object_cut_by_a_thin_line_is_merged():
    mask = np.zeros((60, 100), bool)
    mask[10:50, 10:60] = True
    mask[:, 35] = False  # an occluder splits one object in two halves
    instances = split_class_mask(mask)
    assert len(instances) == 1
    np.testing.assert_array_equal(instances[0], mask)


def test_fragments_under_min_area_are_dropped():
    mask = np.zeros((60, 100), bool)
    mask[10:30, 10:30] = True
    mask[50:52, 90:92] = True  # 4 pixels
    assert len(split_class_mask(mask, min_area=5)) == 1
    assert len(split_class_mask(mask, min_area=4)) == 2


def test_group_rule_on_boxes_and_areas():
    # two filled 10x10 squares 2 px apart: boxes cover most of the joint box
    boxes = np.array([[0, 0, 9, 9], [12, 0, 21, 9], [100, 100, 109, 109]])
    areas = np.array([100, 100, 100])
    assert group_fragments(boxes, areas).tolist() == [0, 0, 2]
    # two squares far apart (their boxes cover 8% of the joint box) stay apart
    assert group_fragments(np.array([[0, 0, 9, 9], [40, 40, 49, 49]]),
                           np.array([100, 100])).tolist() == [0, 1]


def test_split_then_merge_keeps_class_order():
    label_map = np.zeros((40, 40), np.uint8)
    label_map[2:10, 2:10] = 3
    label_map[20:30, 20:30] = 1
    label_map[2:10, 30:38] = 3
    masks, classes = split_then_merge(label_map, [1, 3])
    assert classes.tolist() == [1, 3, 3]
    assert masks.shape == (3, 40, 40)


def test_merge_overlaps_by_score_and_keeps_ignored_and_other_classes():
    label_map = np.zeros((10, 10), np.uint8)
    label_map[0:4, 0:4] = 1
    label_map[6:10, 6:10] = 2  # a class that is not refined
    label_map[9, 0] = 255  # ignored
    masks = np.zeros((2, 10, 10), bool)
    masks[0, 0:5, 0:5] = True  # class 1, score 0.9
    masks[1, 3:8, 3:8] = True  # class 4, score 0.5: loses the overlap
    masks[1, 9, 0] = True  # tries to claim an ignored pixel
    out = merge_instances(label_map, masks, np.array([1, 4]), np.array([0.9, 0.5]),
                          refined_classes=[1, 4])
    assert out.dtype == np.uint8
    assert out[4, 4] == 1  # overlap: higher score
    assert out[5, 5] == 4
    assert out[6, 6] == 2 and out[7, 7] == 2  # not refined: kept, not claimed
    assert out[9, 0] == 255  # ignored stays ignored
    assert out[9, 9] == 2 and out[0, 9] == 0


def test_unclaimed_pixels_of_refined_classes_become_background():
    label_map = np.zeros((10, 10), np.int32)
    label_map[0:6, 0:6] = 1
    masks = np.zeros((1, 10, 10), bool)
    masks[0, 0:3, 0:3] = True  # refinement shrank the object
    out = merge_instances(label_map, masks, np.array([1]), np.array([0.8]), [1])
    assert out[:3, :3].tolist() == [[1] * 3] * 3
    assert out.sum() == 9
    with pytest.raises(ValueError, match='background'):
        merge_instances(label_map, masks, np.array([0]), np.array([0.8]), [0])


def test_refine_semantic_end_to_end(tiny_sam, scene):
    image, masks = scene
    label_map = np.zeros(masks.shape[1:], np.uint8)
    label_map[masks[0]] = 7
    label_map[masks[1]] = 9
    label_map[0:3, 0:3] = 255
    refiner = SAMRefiner(tiny_sam, iters=1)
    out = refiner.refine_semantic(image, label_map)
    assert out.shape == label_map.shape and out.dtype == np.uint8
    assert set(np.unique(out)) <= {0, 7, 9, 255}
    np.testing.assert_array_equal(out == 255, label_map == 255)
    # only the named classes are refined
    only_7 = refiner.refine_semantic(image, label_map, classes=[7])
    np.testing.assert_array_equal(only_7 == 9, label_map == 9)
    # a map with nothing to refine comes back unchanged
    blank = np.zeros_like(label_map)
    np.testing.assert_array_equal(refiner.refine_semantic(image, blank), blank)
    with pytest.raises(ValueError, match='label_map'):
        refiner.refine_semantic(image, label_map[None])


# -- the residual split-then-merge (stm='residual', the default) ---------------
class ObjectAnswers(SAMRefiner):
    """A SAMRefiner whose "SAM" answers each coarse mask with the object it
    overlaps most (``objects``: an (H, W) map of object ids, 0 = none; ties:
    the lower id), scored 0.5, and with nothing where it overlaps no object:
    then, as :meth:`SAMRefiner.refine` does when SAM never answers, the mask
    comes back unchanged with score 0.  Each call's masks are recorded."""

    def __init__(self, sam, objects, **settings):
        super().__init__(sam, **settings)
        self.objects = objects
        self.calls = []

    def refine(self, image, masks, channel_order='rgb', image_embedding=None):
        assert image is None and image_embedding is not None
        self.calls.append(masks.copy())
        ids = np.arange(1, self.objects.max() + 1)
        overlap = (masks[:, None] & (self.objects == ids[:, None, None])[None]).sum((2, 3))
        answered = overlap.max(1) > 0
        answers = self.objects[None] == (overlap.argmax(1) + 1)[:, None, None]
        answers[~answered] = masks[~answered]
        scores = np.where(answered, 0.5, 0).astype(np.float32)
        inter, union = (answers & masks).sum((1, 2)), (answers | masks).sum((1, 2))
        return RefineResult(answers, scores, ~masks.any((1, 2)), scores * 1.5,
                            (inter / np.maximum(union, 1)).astype(np.float32))


def todays_refine_semantic(refiner, label_map, embedding, classes):
    """The authors' split-then-merge as refine_semantic ran it before the
    residual passes: split, one refinement, merge back."""
    masks, mask_classes = split_then_merge(label_map, classes)
    result = refiner.refine(None, masks, image_embedding=embedding)
    return merge_instances(label_map, result.masks, mask_classes, result.scores, classes)


def both_modes(tiny_sam, objects, label_map, **settings):
    """(default output, authors' output, default refiner, authors' refiner),
    with today's authors' output checked to be the same."""
    embedding = object()  # the stand-in never looks at the image
    default = ObjectAnswers(tiny_sam, objects, **settings)
    authors = ObjectAnswers(tiny_sam, objects, stm='authors')
    out = default.refine_semantic(None, label_map, image_embedding=embedding)
    out_authors = authors.refine_semantic(None, label_map, image_embedding=embedding)
    classes = [int(c) for c in np.unique(label_map) if c not in (0, 255)]
    today = todays_refine_semantic(ObjectAnswers(tiny_sam, objects), label_map, embedding,
                                   classes)
    np.testing.assert_array_equal(out_authors, today)
    return out, out_authors, default, authors


def test_two_touching_squares_of_one_class_both_stay(tiny_sam):
    objects = np.zeros((40, 60), np.int32)
    objects[10:30, 10:30] = 1
    objects[10:30, 30:50] = 2  # touches square 1: one fragment
    label_map = np.where(objects > 0, 3, 0).astype(np.uint8)
    out, out_authors, default, authors = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    # the authors': one instance, SAM answers square 1, square 2 is cleared
    np.testing.assert_array_equal(out_authors, np.where(objects == 1, 3, 0))
    # the residual pass refines square 2 alone (opened: 2 pixels off each corner)
    assert [len(c) for c in default.calls] == [1, 1] and [len(c) for c in authors.calls] == [1]
    left_out = default.calls[1][0]
    assert (left_out <= (objects == 2)).all() and left_out.sum() == 400 - 4 * 2


def test_two_apart_squares_the_authors_rule_groups_both_stay(tiny_sam):
    objects = np.zeros((40, 64), np.int32)
    objects[10:30, 10:30] = 1
    objects[10:30, 34:54] = 2  # 4 px apart: the authors' rule groups the two
    label_map = np.where(objects > 0, 1, 0).astype(np.uint8)
    assert len(split_class_mask(label_map == 1)) == 1
    out, out_authors, _, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    np.testing.assert_array_equal(out_authors, np.where(objects == 1, 1, 0))


def test_two_far_apart_squares_are_kept_by_both_without_a_residual_pass(tiny_sam):
    objects = np.zeros((40, 100), np.int32)
    objects[10:30, 5:25] = 1
    objects[10:30, 75:95] = 2
    label_map = np.where(objects > 0, 1, 0).astype(np.uint8)
    out, out_authors, default, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    np.testing.assert_array_equal(out_authors, label_map)
    assert [len(c) for c in default.calls] == [2]  # nothing left out: no second batch


def c_shape_cut_by_a_bar():
    """A C (class 1) whose spine a horizontal bar (class 2) cuts in two mirror
    pieces the authors' rule groups; the label map and the two pieces."""
    label_map = np.zeros((60, 60), np.uint8)
    label_map[10:50, 10:50] = 1
    label_map[20:40, 20:50] = 0  # the C opens to the right
    label_map[28:32, 5:55] = 2  # the occluding bar
    upper = (label_map == 1) & (np.arange(60) < 28)[:, None]
    lower = (label_map == 1) & (np.arange(60) >= 32)[:, None]
    assert len(split_class_mask(label_map == 1)) == 1
    return label_map, upper, lower


def test_c_shape_cut_by_another_class_keeps_both_pieces(tiny_sam):
    label_map, upper, lower = c_shape_cut_by_a_bar()
    # a SAM that answers one piece of the C at a time
    objects = np.zeros(label_map.shape, np.int32)
    objects[upper], objects[lower], objects[label_map == 2] = 1, 2, 3
    out, out_authors, _, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    np.testing.assert_array_equal(out_authors, np.where(lower, 0, label_map))
    # a SAM that answers the whole C (the case the authors' grouping is for):
    # both modes keep it, and the residual passes add nothing
    objects[lower] = 1
    out, out_authors, default, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    np.testing.assert_array_equal(out_authors, label_map)
    assert len(default.calls) == 1


def test_ignore_region_stays_ignored_when_a_left_out_object_comes_back(tiny_sam):
    objects = np.zeros((40, 60), np.int32)
    objects[10:30, 10:30] = 1
    objects[10:30, 30:50] = 2
    label_map = np.where(objects > 0, 1, 0).astype(np.uint8)
    label_map[20:30, 40:55] = 255  # covers part of square 2 (SAM answers all of it)
    out, out_authors, _, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    # the authors': square 2 is cleared where it was labelled, ignored where not
    expected = label_map.copy()
    expected[(objects == 2) & (label_map == 1)] = 0
    np.testing.assert_array_equal(out_authors, expected)


def test_a_class_of_noise_only_adds_no_instances(tiny_sam):
    rng = np.random.default_rng(0)
    label_map = np.zeros((60, 80), np.uint8)
    label_map[rng.random((60, 80)) < 0.05] = 4  # specks of class 4, no object
    label_map[40:43, 60:62] = 4  # one 6-pixel blob: an instance of its own
    label_map[5:25, 5:25] = 1  # a real object of another class
    objects = np.where(label_map == 1, 1, 0).astype(np.int32)
    out, out_authors, default, _ = both_modes(tiny_sam, objects, label_map)
    # SAM answers nothing for class 4: both keep what refine() keeps (the blobs
    # SAM never answered), the specks under 5 pixels go, and no residual pass runs
    np.testing.assert_array_equal(out, out_authors)
    assert (out[5:25, 5:25] == 1).all() and out[40:43, 60:62].tolist() == [[4, 4]] * 3
    assert len(default.calls) == 1


def test_each_pass_is_one_batch_for_all_classes_and_passes_are_capped(tiny_sam):
    objects = np.zeros((70, 80), np.int32)
    for index, x in enumerate((5, 25, 45)):  # three touching squares in a row
        objects[5:25, x:x + 20] = index + 1
        objects[40:60, x:x + 20] = index + 4
    label_map = np.zeros(objects.shape, np.uint8)
    label_map[5:25, 5:65] = 1
    label_map[40:60, 5:65] = 2
    out, out_authors, default, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, label_map)
    assert [len(c) for c in default.calls] == [2, 2, 2]  # 1 + residual_passes batches
    # the authors': one square a class
    assert (out_authors == 1).sum() == 400 and (out_authors == 2).sum() == 400
    one_pass = ObjectAnswers(tiny_sam, objects, residual_passes=1)
    out = one_pass.refine_semantic(None, label_map, image_embedding=object())
    assert (out == 1).sum() == 800 and (out == 2).sum() == 800
    no_pass = ObjectAnswers(tiny_sam, objects, residual_passes=0)
    np.testing.assert_array_equal(
        no_pass.refine_semantic(None, label_map, image_embedding=object()), out_authors)


def test_a_left_out_fragment_sam_does_not_answer_is_dropped_and_not_sent_again(tiny_sam):
    objects = np.zeros((40, 60), np.int32)
    objects[10:30, 10:30] = 1
    label_map = np.where(objects > 0, 1, 0).astype(np.uint8)
    label_map[12:22, 33:43] = 1  # a 10x10 false positive the authors' rule groups
    out, out_authors, default, _ = both_modes(tiny_sam, objects, label_map)
    np.testing.assert_array_equal(out, np.where(objects > 0, 1, 0))
    np.testing.assert_array_equal(out_authors, out)
    assert [len(c) for c in default.calls] == [1, 1]  # refined once, not again


def test_residual_fragments_open_split_and_do_not_group():
    label_map = np.zeros((40, 80), np.uint8)
    label_map[5:25, 5:25] = 1
    label_map[5:25, 29:49] = 1  # 4 px from the first: grouped by the authors' rule
    label_map[30:33, 5:75] = 1  # a 3-pixel-wide sliver
    label_map[5:25, 55:75] = 2
    covered = np.zeros(label_map.shape, bool)
    covered[5:25, 5:25] = True
    masks, classes = residual_fragments(label_map, [1, 2], covered, opening=2, min_area=64)
    assert classes.tolist() == [1, 2]
    # the second square of class 1 and the square of class 2, each a 20x20
    # square opened by a 5x5 disk (2 pixels off each corner); the sliver is gone
    for mask, (x1, x2) in zip(masks, ((29, 49), (55, 75))):
        square = np.zeros(label_map.shape, bool)
        square[5:25, x1:x2] = True
        assert (mask <= square).all() and mask.sum() == 400 - 4 * 2
    # without the opening the sliver is a fragment of its own
    masks, classes = residual_fragments(label_map, [1], covered, opening=0, min_area=64)
    assert len(masks) == 2
    # min_area counts pixels after the opening
    assert len(residual_fragments(label_map, [1, 2], covered, 2, min_area=401)[0]) == 0


def test_authors_mode_is_todays_output_with_a_real_sam(tiny_sam, scene):
    image, masks = scene
    label_map = np.zeros(masks.shape[1:], np.uint8)
    label_map[masks[0] | masks[1]] = 7
    label_map[40:60, 50:80] = 9
    label_map[0:3, 0:3] = 255
    refiner = SAMRefiner(tiny_sam, iters=2, stm='authors')
    embedding = refiner.encode_image(image)
    np.testing.assert_array_equal(
        refiner.refine_semantic(None, label_map, image_embedding=embedding),
        todays_refine_semantic(refiner, label_map, embedding, [7, 9]))
    residual = SAMRefiner(tiny_sam, iters=2)
    out = residual.refine_semantic(image, label_map)
    np.testing.assert_array_equal(out == 255, label_map == 255)


@pytest.mark.parametrize('settings, message', [
    (dict(stm='paper'), "stm must be one of \\('residual', 'authors'\\), got 'paper'"),
    (dict(residual_passes=-1), 'residual_passes must be an integer >= 0, got -1'),
    (dict(residual_opening=1.5), 'residual_opening must be an integer >= 0, got 1.5'),
    (dict(residual_min_area=0), 'residual_min_area must be an integer >= 1, got 0'),
])
def test_bad_split_then_merge_settings_are_refused(tiny_sam, settings, message):
    with pytest.raises(ValueError, match=message):
        SAMRefiner(tiny_sam, **settings)
