# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefiner.prepare_image: an image resized to the encoder frame ahead (in
another thread) gives exactly the embedding, masks and label map of the image
itself, for every SAM family."""
import threading

import numpy as np
import pytest
import torch

from mmsamrefiner import SAMRefiner
from mmsamrefiner.refiner.refiner import PreparedImage

from .test_backends import FAMILIES, build


def prepared_in_a_thread(refiner, image):
    """``refiner.prepare_image(image)`` run in another thread, as the reader
    threads of refine_collection run it."""
    result = []
    thread = threading.Thread(target=lambda: result.append(refiner.prepare_image(image)))
    thread.start()
    thread.join()
    return result[0]


def assert_same_embedding(got, want):
    assert got.input_size == want.input_size and got.original_size == want.original_size
    assert torch.equal(got.embedding, want.embedding)
    assert set(got.features) == set(want.features)
    for name in want.features:
        assert torch.equal(got.features[name], want.features[name])


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_a_prepared_image_encodes_exactly_as_the_image(family, arch, scene):
    image, _ = scene
    refiner = SAMRefiner(build(family, arch), iters=1)
    prepared = prepared_in_a_thread(refiner, image)
    assert isinstance(prepared, PreparedImage) and prepared.shape == image.shape
    assert prepared.pixels.shape[-2:] == (refiner.encoder_size, refiner.encoder_size)
    assert_same_embedding(refiner.encode_image(prepared), refiner.encode_image(image))


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_prepared_and_plain_images_share_a_batch(family, arch, scene):
    image, _ = scene
    other = np.ascontiguousarray(image[::-1, :100])  # another size
    refiner = SAMRefiner(build(family, arch), iters=1)
    mixed = refiner.encode_images([refiner.prepare_image(image), other])
    for got, want in zip(mixed, refiner.encode_images([image, other])):
        assert_same_embedding(got, want)


@pytest.mark.parametrize('family,arch', FAMILIES)
def test_refining_a_prepared_image_gives_the_images_masks(family, arch, scene):
    image, masks = scene
    refiner = SAMRefiner(build(family, arch), iters=2)
    got = refiner.refine(refiner.prepare_image(image), masks)
    want = refiner.refine(image, masks)
    np.testing.assert_array_equal(got.masks, want.masks)
    np.testing.assert_array_equal(got.scores, want.scores)


def test_refining_a_prepared_image_gives_the_images_label_map(tiny_sam, scene):
    image, masks = scene
    label_map = np.zeros(image.shape[:2], np.int64)
    label_map[masks[0]] = 1
    label_map[masks[1]] = 2
    refiner = SAMRefiner(tiny_sam, iters=2)
    np.testing.assert_array_equal(refiner.refine_semantic(refiner.prepare_image(image), label_map),
                                  refiner.refine_semantic(image, label_map))


def test_a_prepared_image_of_another_size_than_the_masks_is_refused(tiny_sam, scene):
    image, masks = scene
    refiner = SAMRefiner(tiny_sam, iters=1)
    with pytest.raises(ValueError, match='masks'):
        refiner.refine(refiner.prepare_image(image[:-1]), masks)
