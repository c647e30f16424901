# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefiner: encode once, mine prompts, decode, select, iterate.

One refinement call for N coarse masks of one image:

1. the image (RGB) is resized so its longest side is the encoder's input size,
   normalised, padded and encoded once (:meth:`SAMRefiner.encode_image`);
2. prompts are mined from all N masks as one batch (:class:`PromptMiner`);
3. SAM's prompt encoder and mask decoder run on the batch with multimask
   output; per mask the candidate with the highest predicted IoU is kept, at
   low resolution, and only that one is upsampled to the image and thresholded
   at logit 0;
4. steps 2-3 repeat ``iters`` times, each round mining from the last round's
   masks; the image embedding is reused.

Sizes (encoder input, embedding grid, low-res mask size) are read from the SAM.
"""
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from torch import Tensor, nn

from mmsamrefiner.registry import MODELS
from mmsamrefiner.utils.digest import digest_json, digest_tensors

from .backends import ImageEmbedding, backend_of
from .bool_ops import any_along, replace_masks_
from .decoder_attention import (
    check_decoder_attention,
    decoder_attention_sites,
    set_decoder_attention,
)
from .inputs import (
    ImageLike,
    MaskLike,
    check_channel_order,
    check_same_size,
    load_rgb_image,
    to_bool_masks,
)
from .iou_adapter import AdaptedLinear, IoUAdapter
from .prompts import PromptMiner, Prompts
from .sam import as_sam
from .sdpa_attention import attention_sites, check_encoder_attention, set_encoder_attention
from .signals import class_signals, low_res_valid_size, pairwise_iou, stability_scores
from .stm import merge_instances, residual_fragments, split_then_merge
from .upscale import upscale_bands, upscale_to_masks

#: Split-then-merge modes of :meth:`SAMRefiner.refine_semantic`.
STM_MODES = ('residual', 'authors')


@dataclass
class RefineResult:
    """The result of :meth:`SAMRefiner.refine` for N coarse masks.

    Attributes:
        masks: (N, H, W) bool refined masks, original image frame; an ndarray
            or a tensor (on the input's device), like the input masks.
        scores: (N,) float32, SAM's predicted IoU of each kept candidate; 0 for
            empty inputs and for masks SAM never returned non-empty.
        empty: (N,) bool, True where the coarse mask was empty (its refined
            mask is empty too; it was not sent to SAM).
        stability: (N,) float32, SAM's stability score of each kept
            candidate (:func:`~.signals.stability_scores`); 0 where
            ``scores`` is 0.
        coarse_iou: (N,) float32, the IoU of each refined mask with its
            coarse mask (:func:`~.signals.pairwise_iou`); 0 for empty inputs.
        prompts: the last round's prompts of the non-empty masks, original
            image frame (None when N is 0 or all masks are empty).

    The three signals (``scores``, ``stability``, ``coarse_iou``) are what
    pseudo-labels can be filtered by (docs/python_api.md).
    """
    masks: Union[np.ndarray, Tensor]
    scores: Union[np.ndarray, Tensor]
    empty: Union[np.ndarray, Tensor]
    stability: Union[np.ndarray, Tensor]
    coarse_iou: Union[np.ndarray, Tensor]
    prompts: Optional[Prompts] = None

    def __len__(self) -> int:
        return len(self.masks)


@dataclass
class SemanticRefineResult:
    """The result of :meth:`SAMRefiner.refine_label_map` for one label map.

    Attributes:
        label_map: (H, W) the refined label map (``refine_semantic``'s output).
        instances: every instance SAM refined (a numpy :class:`RefineResult`
            of M masks, original image frame; each one's ``coarse_iou`` is
            against the fragment it was refined from; ``prompts`` None).
        instance_classes: (M,) int64, the class of each instance.
        classes: the signals of each refined class, a table (column ->
            array, one row per class: :func:`~.signals.class_signals`).
    """
    label_map: np.ndarray
    instances: RefineResult
    instance_classes: np.ndarray
    classes: Dict[str, np.ndarray]


@dataclass
class PreparedImage:
    """An image read and turned into the encoder's input ahead of encoding
    (:meth:`SAMRefiner.prepare_image`, e.g. by a reader thread), taken
    wherever :meth:`SAMRefiner.encode_images`, :meth:`SAMRefiner.refine` and
    :meth:`SAMRefiner.refine_semantic` take an image.

    Attributes:
        rgb: (H, W, 3) uint8 RGB, original image frame.
        pixels: (1, 3, S, S) float, the backend's ``preprocess`` of ``rgb``
            (resized to the encoder frame, normalised, padded), on the
            refiner's device.
    """
    rgb: np.ndarray
    pixels: Tensor

    @property
    def shape(self) -> Tuple[int, ...]:
        """``rgb``'s (H, W, 3)."""
        return self.rgb.shape


class _WithPixels:
    """A backend whose ``preprocess`` returns the pixels prepared ahead for
    the images in ``pixels_of`` (``{id(image): pixels}``) and runs its own
    for the others; everything else is the backend's.  Its ``encode_batch``
    runs on it (``type(backend).encode_batch(_WithPixels(...), ...)``), so
    a prepared image is encoded exactly as the backend encodes its
    ``rgb``."""

    def __init__(self, backend, pixels_of: Dict[int, Tensor]):
        self._backend = backend
        self._pixels_of = pixels_of

    def preprocess(self, image) -> Tensor:
        pixels = self._pixels_of.get(id(image))
        return self._backend.preprocess(image) if pixels is None else pixels

    def __getattr__(self, name: str):
        return getattr(self._backend, name)


def _image_or_prepared(image: Union[ImageLike, PreparedImage], channel_order: str):
    """A :class:`PreparedImage` as it is, anything else as (H, W, 3) uint8
    RGB (:func:`load_rgb_image`)."""
    if isinstance(image, PreparedImage):
        return image
    return load_rgb_image(image, channel_order)


def as_iou_adapter(iou_adapter: Union[dict, IoUAdapter]) -> IoUAdapter:
    """An :class:`IoUAdapter`, or one loaded from ``dict(checkpoint=...)``
    (and optionally ``sha256=``, the digest the file must have)."""
    if isinstance(iou_adapter, IoUAdapter):
        return iou_adapter
    if isinstance(iou_adapter, dict) and 'checkpoint' in iou_adapter and \
            set(iou_adapter) <= {'checkpoint', 'sha256'}:
        return IoUAdapter.load(iou_adapter['checkpoint'], iou_adapter.get('sha256'))
    raise TypeError('iou_adapter must be an IoUAdapter or dict(checkpoint=PATH) '
                    f'(and sha256=HEX), got {iou_adapter!r}')


def fingerprint_of(refiner: Any) -> str:
    """What keys results stored for ``refiner``: its ``fingerprint()`` when
    it has one (:meth:`SAMRefiner.fingerprint`), else its ``repr`` (for any
    other object with a ``refine`` method; a ``repr`` that holds the object's
    address matches no other run)."""
    fingerprint = getattr(refiner, 'fingerprint', None)
    return str(fingerprint()) if callable(fingerprint) else repr(refiner)


@MODELS.register_module()
class SAMRefiner(nn.Module):
    """Refine coarse masks with SAM through noise-tolerant prompts.

    Args:
        sam: a built model of a supported family (SAM, HQ-SAM, SAM 2), or its
            config, e.g. ``dict(type='SAM', arch='vit_h',
            checkpoint='sam_vit_h_4b8939.pth')`` or ``dict(type='SAM',
            family='hq', arch='vit_tiny', checkpoint=...)``; the refiner talks
            to it through its :class:`~mmsamrefiner.refiner.backends.Backend`.
        iters: refinement rounds (each mines prompts from the last masks).
        use_point, use_box, use_mask: which prompts to give SAM.
        add_neg: add the negative point (needs ``use_point``).
        elastic_margin: the elastic box's threshold lambda: a side of the box
            grows when more than this share of the strip outside it looks
            like the mask; 0 (default) keeps tight boxes (the paper: 0.1).
        box_geometry: how the elastic box steps and which strips it tests:
            ``'authors'`` (default): the authors' ``int()`` arithmetic
            (left/top move by ``ceil(step)``, right/bottom by
            ``floor(step)``, never onto row or column 0; right/bottom strips
            include the box's own last column/row and skip the outermost new
            one); ``'symmetric'``: each side moves by ``floor(step)``, tested
            on the strip just outside it along the whole side.  With the
            toy SAM at ``elastic_margin=0.1``, ``tools/benchmark_quality.py``
            measures the same mIoU for both (docs/quality.md).  See
            :func:`~.prompts.elastic_boxes`.
        gamma: span of the Gaussian mask prompt (larger is narrower).
        strength: amplitude of the mask prompt (1 for masks whose box grew).
        max_batch: masks per decoder call; larger batches are chunked.
        device: where SAM runs; default: where it already is.
        encoder_dtype: run the image encoder under autocast in ``'float16'``
            or ``'bfloat16'`` (the embedding is returned as float32; prompt
            encoder and decoder stay float32); None (default): float32.
        encoder_attention: how the attention blocks of a ViT image encoder
            (SAM, HQ-SAM ViT-B/L/H) run: ``'eager'`` (default), the model's
            own module; ``'sdpa'``, the same function through PyTorch's
            fused attention (:mod:`.sdpa_attention`), meant for GPUs (on
            the CPU it is no faster: docs/speed.md).  Installed on ``sam`` in place (weights and
            state dict unchanged); each encoder call puts this refiner's
            choice back, so refiners sharing one SAM each get their own.
            Refused for encoders without such blocks (SAM 2, the toy SAM).
        compile_encoder: run the image encoder through ``torch.compile``
            (compiled on the first image, again for a new batch size); for
            GPUs and long runs (compiling takes a while: about a minute for
            the tests' tiny SAM on a 2-core CPU).
        decoder_attention: how the attention of SAM's (and HQ-SAM's) mask
            decoder runs: ``'sdpa'`` (default), through PyTorch's fused
            attention (:mod:`.decoder_attention`: the same function, faster
            on the CPU as on GPUs); ``'eager'``, the model's own module.
            Switched in place at each decoder call, so refiners sharing one
            SAM each get their own; SAM 2's decoder uses the fused kernel
            already.  Like ``encoder_attention``, not in
            :meth:`result_settings`.
        iou_adapter: a SAMRefiner++ IoU adapter for SAM's IoU head (it changes
            which candidate is kept): ``dict(checkpoint=PATH_OR_URL)`` of a file
            written by ``tools/adapt.py``, or an :class:`IoUAdapter`.  It is
            attached to ``sam`` in place; one made for another SAM
            architecture is refused.
        stm: split-then-merge of :meth:`refine_semantic`: ``'residual'``
            (default) refines, after the authors' split and grouping, what
            the refined instances left out of each class's coarse mask as
            instances of their own, so objects that touch or were grouped
            together are kept; ``'authors'``: the authors' split-then-merge
            alone (unclaimed pixels become background).
        residual_passes: how many times (at most) ``'residual'`` refines
            what is still left out; each pass is one batch for all classes.
        residual_opening: radius (pixels) of the disk that opens what is
            left out before it is split (thinner slivers are not objects).
        residual_min_area: the smallest left-out fragment refined (pixels).

    The defaults are those of the authors' ``sam_refiner``, except ``stm``
    (docs/method.md says why).  SAM's weights are frozen
    (``requires_grad=False``).
    """

    def __init__(self,
                 sam: Union[nn.Module, dict],
                 iters: int = 5,
                 use_point: bool = True,
                 use_box: bool = True,
                 use_mask: bool = True,
                 add_neg: bool = True,
                 elastic_margin: float = 0.0,
                 gamma: float = 4.0,
                 strength: float = 30.0,
                 box_geometry: str = 'authors',
                 max_batch: int = 64,
                 device: Optional[Union[str, torch.device]] = None,
                 encoder_dtype: Optional[str] = None,
                 encoder_attention: str = 'eager',
                 compile_encoder: bool = False,
                 decoder_attention: str = 'sdpa',
                 iou_adapter: Optional[Union[dict, IoUAdapter]] = None,
                 stm: str = 'residual',
                 residual_passes: int = 2,
                 residual_opening: int = 2,
                 residual_min_area: int = 64) -> None:
        super().__init__()
        if stm not in STM_MODES:
            raise ValueError(f'stm must be one of {STM_MODES}, got {stm!r}')
        for name, value, least in (('residual_passes', residual_passes, 0),
                                   ('residual_opening', residual_opening, 0),
                                   ('residual_min_area', residual_min_area, 1)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or \
                    value < least:
                raise ValueError(f'{name} must be an integer >= {least}, got {value!r}')
        self.stm = stm
        self.residual_passes = int(residual_passes)
        self.residual_opening = int(residual_opening)
        self.residual_min_area = int(residual_min_area)
        if encoder_dtype not in (None, 'float16', 'bfloat16'):
            raise ValueError(f"encoder_dtype must be None, 'float16' or 'bfloat16', "
                             f'got {encoder_dtype!r}')
        self.encoder_dtype = encoder_dtype
        if iters < 1:
            raise ValueError(f'iters must be >= 1, got {iters}')
        if max_batch < 1:
            raise ValueError(f'max_batch must be >= 1, got {max_batch}')
        self.sam = as_sam(sam).eval().requires_grad_(False)
        self.backend = backend_of(self.sam)
        if device is not None:
            self.sam.to(device)
        check_encoder_attention(self.backend.image_encoder, encoder_attention)
        self.encoder_attention = encoder_attention
        self._attention_sites = attention_sites(self.backend.image_encoder)
        set_encoder_attention(self.backend.image_encoder, encoder_attention,
                              self._attention_sites)
        self.compile_encoder = bool(compile_encoder)
        if self.compile_encoder:
            self.backend.compile_encoder()
        check_decoder_attention(decoder_attention)
        self.decoder_attention = decoder_attention
        self._decoder_sites = decoder_attention_sites(self.backend.model)
        if iou_adapter is not None:
            as_iou_adapter(iou_adapter).attach(self.sam)
        self.iters = iters
        self.max_batch = max_batch
        self._fingerprint: Optional[str] = None
        self.miner = PromptMiner(
            self.encoder_size, self.low_res_size, use_point=use_point,
            use_box=use_box, use_mask=use_mask, add_neg=add_neg, elastic_margin=elastic_margin,
            gamma=gamma, strength=strength, box_geometry=box_geometry)

    # -- sizes, read from the model ---------------------------------------
    @property
    def encoder_size(self) -> int:
        """Side of SAM's square encoder input (pixels)."""
        return self.backend.encoder_size

    @property
    def embedding_size(self) -> Tuple[int, int]:
        """(h, w) of the image-embedding grid."""
        return self.backend.embedding_size

    @property
    def low_res_size(self) -> Tuple[int, int]:
        """(h, w) of SAM's mask input and low-res mask output."""
        return self.backend.low_res_size

    @property
    def device(self) -> torch.device:
        return self.backend.device

    # -- the steps -----------------------------------------------------------
    @torch.no_grad()
    def encode_image(self, image: ImageLike,
                     channel_order: str = 'rgb') -> ImageEmbedding:
        """Run the image encoder once on an image (path or (H, W, 3) uint8)."""
        return self.encode_images([image], channel_order)[0]

    @torch.no_grad()
    def prepare_image(self, image: ImageLike, channel_order: str = 'rgb') -> PreparedImage:
        """An image (path or (H, W, 3) uint8) read and preprocessed for the
        encoder now, to be encoded later: the part of :meth:`encode_images`
        that needs no encoder (decoding, resizing to the encoder frame,
        normalising, padding), safe to run in another thread."""
        rgb = load_rgb_image(image, channel_order)
        return PreparedImage(rgb, self.backend.preprocess(rgb))

    @torch.no_grad()
    def encode_images(self, images: Sequence[Union[ImageLike, PreparedImage]],
                      channel_order: str = 'rgb') -> List[ImageEmbedding]:
        """Several images (paths, (H, W, 3) uint8 or :class:`PreparedImage`,
        any sizes) in one encoder pass (a batch: faster on GPUs); one
        :class:`ImageEmbedding` each.  A prepared image gives the embedding
        of its ``rgb``."""
        check_channel_order(channel_order)
        if not images:
            return []
        rgbs = [_image_or_prepared(image, channel_order) for image in images]
        dtype = None if self.encoder_dtype is None else getattr(torch, self.encoder_dtype)
        set_encoder_attention(self.backend.image_encoder, self.encoder_attention,
                              self._attention_sites)
        pixels_of = {id(rgb): rgb.pixels for rgb in rgbs if isinstance(rgb, PreparedImage)}
        if not pixels_of:
            return self.backend.encode_batch(rgbs, dtype)
        return type(self.backend).encode_batch(_WithPixels(self.backend, pixels_of), rgbs,
                                               dtype)

    def mine_prompts(self, masks: MaskLike,
                     image_embedding: Optional[Union[ImageEmbedding, Tensor]] = None
                     ) -> Prompts:
        """Prompts for (N, H, W) binary masks, in the original image frame.

        ``image_embedding`` is needed for the elastic box
        (``elastic_margin > 0``).
        """
        masks = to_bool_masks(masks).to(self.device)
        if isinstance(image_embedding, ImageEmbedding):
            check_same_size(masks.shape[-2:], image_embedding.original_size)
            return self.mine(masks, image_embedding)
        input_size = self.backend.input_size(tuple(masks.shape[-2:]))
        return self.miner(masks, image_embedding, input_size=input_size,
                          valid_grid=self.backend.valid_grid(input_size))

    def mine(self, masks: Tensor, image_embedding: ImageEmbedding) -> Prompts:
        """Prompts for (N, H, W) bool non-empty masks on the refiner's device,
        in the frame of ``image_embedding`` (no input checks: the hot path)."""
        return self.miner(masks, image_embedding.embedding, input_size=image_embedding.input_size,
                          valid_grid=self.backend.valid_grid(image_embedding.input_size))

    def decode(self, prompts: Prompts,
               image_embedding: ImageEmbedding) -> Tuple[Tensor, Tensor]:
        """Run the prompt encoder and mask decoder with multimask output.

        Not under ``no_grad``: SAM is frozen, so gradients reach only a
        trainable IoU adapter (SAMRefiner++ training); :meth:`refine` runs it
        without gradients.

        Returns:
            ``(low_res_logits, iou_predictions)``: (N, M, h, w) mask logits at
            the low-res size (encoder-input frame, padding included) and
            (N, M) predicted IoUs.
        """
        height, width = image_embedding.original_size
        in_h, in_w = image_embedding.input_size
        scale = torch.tensor([in_w / width, in_h / height], device=self.device)
        prompts = prompts.to(self.device)
        logits, ious = [], []
        for start in range(0, len(prompts), self.max_batch):
            part = slice(start, start + self.max_batch)
            points = labels = None
            if prompts.points is not None:
                points, labels = prompts.points[part] * scale, prompts.labels[part]
            boxes = None
            if prompts.boxes is not None:
                boxes = prompts.boxes[part] * scale.repeat(2)
            mask_inputs = None
            if prompts.mask_inputs is not None:
                mask_inputs = prompts.mask_inputs[part]
            set_decoder_attention(self._decoder_sites, self.decoder_attention)
            low_res, iou = self.backend.decode(image_embedding, points, labels, boxes,
                                               mask_inputs)
            logits.append(low_res)
            ious.append(iou)
        return torch.cat(logits), torch.cat(ious)

    #: Upscale masks in groups of similar window size (:meth:`upscale`);
    #: False pads each ``max_batch`` chunk to its largest mask's window.  The
    #: masks are the same either way, so it is not a :meth:`result_settings`
    #: entry; a baseline for benchmarks.
    group_windows: bool = True

    @torch.no_grad()
    def upscale(self, low_res_logits: Tensor,
                image_embedding: ImageEmbedding) -> Tensor:
        """(N, h, w) low-res logits -> (N, H, W) bool masks (logit > threshold).

        SAM's ``postprocess_masks`` (bilinear to the encoder square, crop,
        bilinear to the original size) as matrices, evaluated only on the
        window each mask's positive cells can reach (:func:`upscale_to_masks`,
        in groups of similar window size unless :attr:`group_windows` is
        False): the same masks up to float rounding, at a cost that follows
        the masks' size instead of the image's.
        """
        through = self.encoder_size if self.backend.upscale_through_encoder else None
        rows, cols = upscale_bands(self.low_res_size, through, image_embedding.input_size,
                                   image_embedding.original_size, low_res_logits.device)
        height, width = image_embedding.original_size
        flat = torch.zeros((len(low_res_logits) * height + 1) * width, dtype=torch.bool,
                           device=low_res_logits.device)
        for start in range(0, len(low_res_logits), self.max_batch):
            upscale_to_masks(low_res_logits[start:start + self.max_batch], rows, cols,
                             self.backend.mask_threshold, out=flat, start=start,
                             group_windows=self.group_windows)
        return flat[:-width].view(len(low_res_logits), height, width)

    @torch.no_grad()
    def refine_once(self, masks: Tensor, image_embedding: ImageEmbedding
                    ) -> Tuple[Tensor, Tensor, Tensor, Prompts]:
        """One round for (N, H, W) bool non-empty masks on the refiner's device.

        Returns ``(masks, scores, stability, prompts)``: (N, H, W) bool, (N,)
        float predicted IoUs and stability scores of the kept candidates, and
        the prompts that made them.
        """
        prompts = self.mine(masks, image_embedding)
        logits, ious = self.decode(prompts, image_embedding)
        scores, best = ious.max(1)
        best_logits = logits[torch.arange(len(best), device=logits.device), best]
        valid = low_res_valid_size(self.low_res_size, self.encoder_size,
                                   image_embedding.input_size)
        stability = stability_scores(best_logits, self.backend.mask_threshold, valid)
        return self.upscale(best_logits, image_embedding), scores, stability, prompts

    @torch.no_grad()
    def refine(self,
               image: Optional[Union[ImageLike, PreparedImage]],
               masks: MaskLike,
               channel_order: str = 'rgb',
               image_embedding: Optional[ImageEmbedding] = None) -> RefineResult:
        """Refine N coarse masks of one image.

        Args:
            image: (H, W, 3) uint8 array (see ``channel_order``), a path or a
                :class:`PreparedImage`; may be None when ``image_embedding``
                is given.
            masks: (N, H, W) bool or {0, 1} / {0, 255} ndarray or tensor,
                original image frame.
            channel_order: ``'rgb'`` or ``'bgr'`` (MM pipelines carry BGR).
            image_embedding: a precomputed :meth:`encode_image` result.

        Returns:
            :class:`RefineResult`.  A mask SAM returns empty in a round keeps
            its previous mask (so no non-empty coarse mask comes back empty).
        """
        check_channel_order(channel_order)
        as_numpy = isinstance(masks, np.ndarray)
        coarse = to_bool_masks(masks)
        out_device = coarse.device
        if image_embedding is None:
            if image is None:
                raise ValueError('refine needs an image or an image_embedding')
            rgb = _image_or_prepared(image, channel_order)
            check_same_size(coarse.shape[-2:], rgb.shape[:2])
            image_embedding = self.encode_image(rgb)
        else:
            check_same_size(coarse.shape[-2:], image_embedding.original_size)

        coarse = coarse.to(self.device)
        empty = ~any_along(coarse.flatten(1), 1)
        refined = torch.zeros_like(coarse)
        scores = torch.zeros(len(coarse), device=self.device)
        stability = torch.zeros(len(coarse), device=self.device)
        prompts = None
        active = torch.nonzero(~empty).flatten()
        if len(active):
            current = coarse[active]
            current_scores = torch.zeros(len(active), device=self.device)
            current_stability = torch.zeros(len(active), device=self.device)
            for _ in range(self.iters):
                new, new_scores, new_stability, prompts = self.refine_once(
                    current, image_embedding)
                lost = ~any_along(new.flatten(1), 1)  # SAM answered nothing: keep
                replace_masks_(new, current, lost)
                current = new
                current_scores = torch.where(lost, current_scores, new_scores)
                current_stability = torch.where(lost, current_stability, new_stability)
            refined[active] = current
            scores[active] = current_scores
            stability[active] = current_stability

        result = RefineResult(
            refined.to(out_device), scores.float().to(out_device), empty.to(out_device),
            stability.float().to(out_device), pairwise_iou(refined, coarse).to(out_device),
            prompts)
        if as_numpy:
            for name in ('masks', 'scores', 'empty', 'stability', 'coarse_iou'):
                setattr(result, name, getattr(result, name).cpu().numpy())
        return result

    @torch.no_grad()
    def refine_semantic(self,
                        image: Optional[Union[ImageLike, PreparedImage]],
                        label_map: np.ndarray,
                        ignore_index: Optional[int] = 255,
                        classes: Optional[Sequence[int]] = None,
                        background: int = 0,
                        channel_order: str = 'rgb',
                        image_embedding: Optional[ImageEmbedding] = None,
                        min_area: int = 5) -> np.ndarray:
        """Refine a semantic label map by split-then-merge.

        Each class in ``classes`` (default: every class present except
        ``background`` and ``ignore_index``) is split into instances
        (:func:`split_then_merge`: fragments under ``min_area`` pixels are
        dropped, the rest grouped by the authors' rule); all instances are
        refined in one batch.  With ``stm='residual'`` (the default) up to
        ``residual_passes`` more batches follow (:meth:`refine_residuals`):
        what the refined instances left out of each class's mask is refined
        as instances of its own.  :func:`merge_instances` writes all refined
        instances back:

        * pixels of refined classes that no refined instance claims become
          ``background``;
        * where refined instances overlap, the one with the higher predicted
          IoU wins (ties: the lower class id's instance, then the earlier);
        * refined instances only claim pixels that are ``background`` or of a
          refined class: other classes and ``ignore_index`` pixels are kept.

        Args:
            image: as in :meth:`refine`.
            label_map: (H, W) integer class ids, original image frame.
            ignore_index: label of pixels to leave alone (None: no such label).
            classes: class ids to refine.
            background: label of unclaimed pixels.

        Returns:
            (H, W) label map of ``label_map``'s dtype (the ``label_map`` of
            :meth:`refine_label_map`, which also gives the signals).
        """
        return self.refine_label_map(image, label_map, ignore_index, classes, background,
                                     channel_order, image_embedding, min_area).label_map

    @torch.no_grad()
    def refine_label_map(self,
                         image: Optional[ImageLike],
                         label_map: np.ndarray,
                         ignore_index: Optional[int] = 255,
                         classes: Optional[Sequence[int]] = None,
                         background: int = 0,
                         channel_order: str = 'rgb',
                         image_embedding: Optional[ImageEmbedding] = None,
                         min_area: int = 5) -> 'SemanticRefineResult':
        """:meth:`refine_semantic` (same arguments), with every refined
        instance and the signals of each refined class: a
        :class:`SemanticRefineResult`."""
        check_channel_order(channel_order)
        label_map = np.asarray(label_map)
        if label_map.ndim != 2 or not np.issubdtype(label_map.dtype, np.integer):
            raise ValueError('label_map must be an (H, W) integer array, got '
                             f'shape {label_map.shape} dtype {label_map.dtype}')
        if classes is None:
            skip = {background} | ({ignore_index} if ignore_index is not None else set())
            classes = [int(c) for c in np.unique(label_map) if int(c) not in skip]
        instance_masks, instance_classes = split_then_merge(
            label_map, classes, min_area=min_area)
        if image_embedding is None and image is not None:
            rgb = _image_or_prepared(image, channel_order)
            check_same_size(label_map.shape, rgb.shape[:2], 'label_map')
            image_embedding = self.encode_image(rgb) if len(instance_masks) else None
        if len(instance_masks):
            instances = self.refine(None, instance_masks, image_embedding=image_embedding)
            if self.stm == 'residual':
                instances, instance_classes = self.refine_residuals(
                    label_map, classes, instances, instance_classes, image_embedding)
        else:
            none = np.zeros(0, np.float32)
            instances = RefineResult(instance_masks, none, np.zeros(0, bool), none, none)
        refined = merge_instances(label_map, instances.masks, instance_classes,
                                  instances.scores, classes, background=background)
        instances.prompts = None
        return SemanticRefineResult(
            label_map=refined, instances=instances,
            instance_classes=np.asarray(instance_classes, np.int64),
            classes=class_signals(label_map, refined, classes, instance_classes,
                                  instances.scores, instances.stability))

    @torch.no_grad()
    def refine_residuals(self, label_map: np.ndarray, classes: Sequence[int],
                         instances: RefineResult, instance_classes: np.ndarray,
                         image_embedding: ImageEmbedding
                         ) -> Tuple[RefineResult, np.ndarray]:
        """Refine what refined instances left out of a label map's classes.

        Each pass takes :func:`residual_fragments` of the pixels no instance
        so far covers (the disk of ``residual_opening``, fragments of at
        least ``residual_min_area`` pixels) and refines them, all classes in
        one batch.  A fragment that SAM answered with nothing in every round
        is dropped (:meth:`refine` would return it unchanged: SAM saw no
        object there); a fragment already refined in an earlier pass is not
        refined again (its prompts, and so SAM's answer, would be the same).
        Passes stop after ``residual_passes``, or when nothing new is left.

        Args:
            label_map: (H, W) integer class ids.
            classes: the refined classes.
            instances: the (M,) refined instances (numpy :class:`RefineResult`;
                their coarse masks: their fragments).
            instance_classes: (M,) their classes.
            image_embedding: the image's :meth:`encode_image` result.

        Returns:
            ``(instances, classes)``: the instances given, then the new ones
            (each new one's ``coarse_iou`` against its left-out fragment;
            ``prompts`` None).
        """
        fields = ('masks', 'scores', 'empty', 'stability', 'coarse_iou')
        parts = {name: [getattr(instances, name)] for name in fields}
        all_classes = [np.asarray(instance_classes)]
        covered = instances.masks.any(0)
        refined_before = set()
        for _ in range(self.residual_passes):
            residual, residual_classes = residual_fragments(
                label_map, classes, covered, self.residual_opening, self.residual_min_area)
            if not len(residual):
                break
            packed = np.packbits(residual.reshape(len(residual), -1), axis=1)
            keys = [(int(c), row.tobytes()) for c, row in zip(residual_classes, packed)]
            new = np.array([key not in refined_before for key in keys], bool)
            refined_before.update(keys)
            if not new.any():
                break
            residual, residual_classes = residual[new], residual_classes[new]
            result = self.refine(None, residual, image_embedding=image_embedding)
            # refine() keeps a mask SAM never answered, with score 0
            unanswered = (result.scores == 0) & (result.masks == residual).all((1, 2))
            answered = ~unanswered
            for name in fields:
                parts[name].append(getattr(result, name)[answered])
            all_classes.append(residual_classes[answered])
            covered |= parts['masks'][-1].any(0)
        merged = RefineResult(**{name: np.concatenate(parts[name]) for name in fields})
        return merged, np.concatenate(all_classes)

    @property
    def iou_adapter(self) -> Optional[IoUAdapter]:
        """The IoU adapter attached to SAM's IoU head, or None."""
        head = self.backend.iou_head.layers[-1]
        return head.adapter if isinstance(head, AdaptedLinear) else None

    def result_settings(self) -> Dict[str, Any]:
        """Every setting the refined masks and scores depend on besides the
        inputs and the weights, as a JSON-able dict: ``iters``, the prompt
        miner's settings (:meth:`PromptMiner.settings`), ``encoder_dtype``,
        what the SAM is (model class, family, sizes, mask threshold), the
        IoU adapter's ``rank`` and ``scale`` (None without one) and the
        split-then-merge settings of :meth:`refine_semantic` (``stm`` and the
        ``residual_*`` settings, recorded whatever the mode).

        Not in it: ``max_batch``, which only splits the decoder and upscaling
        into chunks (each mask is decoded on its own: the masks do not depend
        on it); ``device``, which only places the work; and
        ``encoder_attention``, ``compile_encoder`` and ``decoder_attention``,
        which compute the same functions in another order of float
        operations: the results differ by float rounding, as between
        devices, and so may
        a mask's pixels where a logit is within rounding of the threshold
        (docs/speed.md gives the measured agreement).  ``encoder_dtype`` is
        in it: bfloat16 and float16 round far more coarsely.
        """
        backend = self.backend
        adapter = self.iou_adapter
        return dict(
            iters=self.iters,
            prompts=self.miner.settings(),
            encoder_dtype=self.encoder_dtype,
            sam=dict(model=type(self.sam).__name__, family=backend.family,
                     encoder_size=backend.encoder_size,
                     embedding_size=list(backend.embedding_size),
                     low_res_size=list(backend.low_res_size),
                     mask_threshold=float(backend.mask_threshold)),
            iou_adapter=None if adapter is None else dict(rank=adapter.rank,
                                                          scale=adapter.scale),
            stm=self.stm, residual_passes=self.residual_passes,
            residual_opening=self.residual_opening,
            residual_min_area=self.residual_min_area)

    def fingerprint(self) -> str:
        """A 32-hex-digit digest of everything the refined masks depend on
        besides the inputs: :meth:`result_settings`, and the *content* of
        SAM's weights and of an attached IoU adapter's
        (:func:`~mmsamrefiner.utils.digest.digest_tensors`; a retrained
        checkpoint at the same path gets another fingerprint).  Refiners that
        differ only in ``max_batch`` or ``device`` share it.

        Large tensors are sampled (about a million evenly spaced values each,
        with their shape), so a ViT-H costs well under a second; computed once
        and cached (SAM is frozen; attaching an adapter goes through
        ``__init__``).
        """
        if self._fingerprint is None:
            adapter = self.iou_adapter
            self._fingerprint = digest_json(dict(
                settings=self.result_settings(),
                sam_weights=digest_tensors(self.sam.state_dict().items()),
                iou_adapter_weights=None if adapter is None else digest_tensors(
                    adapter.state_dict().items())))
        return self._fingerprint

    def __repr__(self) -> str:
        adapter = self.iou_adapter
        adapter = '' if adapter is None else f'iou_adapter=IoUAdapter({adapter.extra_repr()}), '
        return (f'{self.__class__.__name__}(iters={self.iters}, '
                f'max_batch={self.max_batch}, miner={self.miner!r}, {adapter}'
                f'stm={self.stm!r}, '
                f'sam={type(self.sam).__name__}({self.backend.describe()}))')
