# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Listing the images of a folder without annotations: the prediction set of
a pseudo-labelling run (:class:`ImageFolderDetDataset`,
:class:`ImageFolderSegDataset`).  No MM framework here."""
import os
import os.path as osp
from typing import List, Sequence

#: File extensions taken as images (compared in lower case).
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff', '.webp')


def normalize_extensions(extensions: Sequence[str]) -> tuple:
    """``extensions`` as a tuple of lower-case ``'.ext'`` strings.

    Raises:
        ValueError: no extension, or one that is not a string.
    """
    if isinstance(extensions, str):
        extensions = (extensions, )
    if not extensions or not all(isinstance(e, str) and e.strip('.') for e in extensions):
        raise ValueError('extensions must be a non-empty sequence of file extensions such as '
                         f"('.jpg', '.png'), got {extensions!r}")
    return tuple('.' + e.lower().lstrip('.') for e in extensions)


def list_image_files(folder: str, extensions: Sequence[str] = IMAGE_EXTENSIONS) -> List[str]:
    """The image files directly in ``folder`` (not in its sub-folders) whose
    extension is one of ``extensions`` (any case), as names relative to
    ``folder``, sorted by name (Python's string order: digits, then upper
    case, then lower case): the order that gives each image its id.

    Raises:
        FileNotFoundError: ``folder`` is not a directory.
        ValueError: it holds no image with these extensions.
    """
    extensions = normalize_extensions(extensions)
    if not osp.isdir(folder):
        raise FileNotFoundError(f'image folder {folder!r} does not exist or is not a directory')
    names = sorted(
        entry.name for entry in os.scandir(folder)
        if entry.is_file() and osp.splitext(entry.name)[1].lower() in extensions)
    if not names:
        raise ValueError(f'no images in {folder!r}: no file directly in it ends with one of '
                         f'{list(extensions)} (sub-folders are not searched)')
    return names
