# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Moving instance masks between the views of one image with a homography.

mmdet's geometric transforms (``Resize``, ``RandomFlip``, ``RandomCrop``,
``RandomAffine``, ...) record a 3x3 ``homography_matrix`` that maps a point
``(x, y, 1)`` of the original image to the transformed view, in pixel
coordinates whose pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)`` (the
frame of xyxy boxes; mmdet's ``bbox_project`` moves boxes with it).
:func:`project_masks` moves masks with the same matrix, so a mask lands where
the image content under it went.  Pure torch.
"""
from typing import Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F


def project_masks(masks: torch.Tensor, homography: Union[torch.Tensor, np.ndarray],
                  out_shape: Sequence[int]) -> torch.Tensor:
    """Warp masks from one view of an image to another.

    Each output pixel takes the value of the input pixel that contains the
    point its centre maps back to (nearest neighbour, through the inverse of
    ``homography``); points outside the input are background.

    Args:
        masks: (N, H, W) bool (or 0/1) masks in the source view.
        homography: (3, 3) matrix mapping source-view points ``(x, y, 1)`` to
            target-view points (pixel coordinates, see the module docstring).
        out_shape: ``(h, w)`` of the target view.

    Returns:
        (N, h, w) bool masks in the target view, on ``masks``' device.
    """
    if masks.dim() != 3:
        raise ValueError(f'masks must be (N, H, W), got shape {tuple(masks.shape)}')
    matrix = torch.as_tensor(np.asarray(homography, np.float64) if isinstance(
        homography, np.ndarray) else homography, dtype=torch.float64, device=masks.device)
    if matrix.shape != (3, 3):
        raise ValueError(f'homography must be 3x3, got shape {tuple(matrix.shape)}')
    num, height, width = masks.shape
    out_h, out_w = int(out_shape[0]), int(out_shape[1])
    if num == 0 or out_h == 0 or out_w == 0:
        return masks.new_zeros((num, out_h, out_w), dtype=torch.bool)
    ys, xs = torch.meshgrid(torch.arange(out_h, dtype=torch.float64, device=masks.device) + 0.5,
                            torch.arange(out_w, dtype=torch.float64, device=masks.device) + 0.5,
                            indexing='ij')
    points = torch.stack([xs, ys, torch.ones_like(xs)], dim=-1).reshape(-1, 3)
    source = points @ torch.linalg.inv(matrix).T  # target pixel centres -> source points
    source = source[:, :2] / source[:, 2:3]
    # grid_sample with align_corners=False: -1 and 1 are the outer pixel edges
    grid = torch.stack([source[:, 0] / width * 2 - 1, source[:, 1] / height * 2 - 1], dim=-1)
    grid = grid.reshape(1, out_h, out_w, 2).expand(num, -1, -1, -1).float()
    warped = F.grid_sample(masks[:, None].float(), grid, mode='nearest',
                           padding_mode='zeros', align_corners=False)
    return warped[:, 0] > 0.5
