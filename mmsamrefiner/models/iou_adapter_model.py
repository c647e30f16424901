# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""The SAMRefiner++ adapter training model for mmengine's Runner.

A frozen :class:`SAMRefiner` (its SAM) plus a trainable :class:`IoUAdapter` on
SAM's IoU head.  Per coarse mask (self-boosted, no labels):

1. the image embedding comes from :class:`EmbeddingCache` (encoded once);
2. SAM decodes the coarse mask's tight box alone (whatever the refiner's
   ``elastic_margin``), with multimask output;
3. the target candidate j is the one with the highest IoU against the coarse
   mask (original image frame);
4. loss ``sum_{i != j} max(0, x_i - x_j + ranking_margin)`` on the adapted
   predicted IoUs x (:func:`margin_ranking_loss`), averaged over the batch.

Validation ranks two sets of candidates (:meth:`predict`): these box-prompt
ones against the coarse mask (the training target), and, where ground truth
is given, those of the prompts used at refinement time (points, box and mask
prompt as the refiner's :class:`PromptMiner` mines them from the coarse mask)
against the ground truth, as the authors' top-1 accuracy.

Only the adapter is a parameter of this module: it alone is trained, saved in
checkpoints and synchronised across ranks.  The refiner is kept outside the
module tree (moved along by :meth:`_apply`), so checkpoints hold kilobytes.
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmengine.model import BaseModel
from torch import Tensor

from mmsamrefiner.refiner.embedding_cache import EmbeddingCache, encoder_key
from mmsamrefiner.refiner.iou_adapter import (
    IoUAdapter,
    candidate_ious,
    margin_ranking_loss,
    ranking_targets,
)
from mmsamrefiner.refiner.prompts import PromptMiner
from mmsamrefiner.refiner.refiner import ImageEmbedding, SAMRefiner
from mmsamrefiner.registry import MODELS, build_in_scope


@MODELS.register_module()
class IoUAdapterModel(BaseModel):
    """SAMRefiner++: train a low-rank adapter on SAM's IoU head.

    Args:
        refiner: a :class:`SAMRefiner` config (its ``sam``, and the settings
            used for validation refinement); it must not carry an adapter.
        rank, scale: of the :class:`IoUAdapter` (paper: rank 4).
        ranking_margin: the margin of the ranking loss (paper: 0.02).
        embedding_cache: ``dict(cache_dir=None, in_memory=True)`` by
            default, with :class:`EmbeddingCache`'s memory bound (the 64 most
            recently used embeddings; ``max_items``).
        val_refine: in validation, when a ground-truth mask is given, also run
            the full refinement with and without the adapter and report the
            refined masks' IoU.
        data_preprocessor: mmengine data preprocessor (default: moves tensors
            to the model's device).

    ``forward(inputs, data_samples, mode)`` takes a batch of
    :class:`~mmsamrefiner.datasets.CoarseMaskDataset` items as mmengine's
    ``pseudo_collate`` gives it, N masks: ``inputs = dict(img_path=[N str],
    coarse_mask=[N (H, W) bool tensors])`` and ``data_samples =
    dict(instance_id=[N str], gt_mask=[N (H, W) bool tensors or None])``.
    """

    def __init__(self,
                 refiner: Union[dict, SAMRefiner],
                 rank: int = 4,
                 scale: float = 1.0,
                 ranking_margin: float = 0.02,
                 embedding_cache: Optional[dict] = None,
                 val_refine: bool = True,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if isinstance(refiner, dict):
            if refiner.get('iou_adapter') is not None:
                raise ValueError('the refiner to adapt must not carry an iou_adapter')
            refiner = build_in_scope(dict(refiner, type=refiner.get('type', 'SAMRefiner')))
        refiner.eval().requires_grad_(False)
        self.__dict__['refiner'] = refiner  # outside the module tree, see above
        self.iou_adapter = IoUAdapter.for_sam(refiner.sam, rank=rank, scale=scale)
        self.iou_adapter.attach(refiner.sam)
        self.ranking_margin = ranking_margin
        self.val_refine = val_refine
        # SAMRefiner++ trains on the tight box alone (no points, no mask
        # prompt); the refiner's elastic_margin is for refinement only.
        self.box_miner = PromptMiner(
            refiner.encoder_size, refiner.low_res_size, use_point=False, use_box=True,
            use_mask=False, add_neg=False, elastic_margin=0.0)
        cache = dict(dict(cache_dir=None, in_memory=True), **(embedding_cache or {}))
        self.embeddings = EmbeddingCache(refiner.encode_image,
                                         encoder_key(refiner.sam, refiner.encoder_dtype),
                                         **cache)

    # -- module plumbing ----------------------------------------------------------
    def _apply(self, fn, *args, **kwargs):
        super()._apply(fn, *args, **kwargs)
        self.refiner._apply(fn, *args, **kwargs)
        return self

    def train(self, mode: bool = True):
        super().train(mode)
        self.refiner.eval()  # SAM stays in inference mode
        return self

    @property
    def device(self) -> torch.device:
        return self.refiner.device

    # -- the steps ----------------------------------------------------------------
    def score_image(self, img_path: str, coarse_masks: Tensor) -> dict:
        """Box-prompt candidates of one image's coarse masks, and their scores.

        Args:
            img_path: the image (its embedding comes from the cache).
            coarse_masks: (n, H, W) bool, original image frame.

        Returns:
            dict of ``iou_predictions`` (n, M) float, predicted IoUs through
            the adapter (with gradient to it; plain SAM's within
            ``iou_adapter.disabled()``); ``coarse_ious`` (n, M) IoU of each
            candidate with its coarse mask; ``candidates`` (n, M, H, W) bool;
            ``coarse_masks``; ``prompts`` (the box prompts: tight boxes,
            (n, 4) xyxy, original image frame); ``embedding``
            (:class:`~mmsamrefiner.refiner.ImageEmbedding`).
        """
        embedding = self.embeddings.get(img_path, self.device)
        coarse_masks = coarse_masks.to(self.device).bool()
        if tuple(coarse_masks.shape[-2:]) != embedding.original_size:
            raise ValueError(f'coarse masks of {img_path} are {tuple(coarse_masks.shape[-2:])}, '
                             f'the image is {embedding.original_size}')
        prompts = self.box_miner(coarse_masks, embedding.embedding)
        low_res, iou_predictions = self.refiner.decode(prompts, embedding)
        with torch.no_grad():
            num, m = low_res.shape[:2]
            candidates = self.refiner.upscale(low_res.flatten(0, 1), embedding)
            candidates = candidates.view(num, m, *candidates.shape[-2:])
        return dict(iou_predictions=iou_predictions, candidates=candidates,
                    coarse_ious=candidate_ious(candidates, coarse_masks),
                    coarse_masks=coarse_masks, prompts=prompts, embedding=embedding)

    @torch.no_grad()
    def score_refinement(self, coarse_masks: Tensor, gt_masks: Tensor,
                         embedding: ImageEmbedding) -> Dict[str, Tensor]:
        """Candidates of the refinement prompts, scored against ground truth.

        The prompts are those of the refiner's first round, mined from the
        coarse masks by the refiner's :class:`PromptMiner` (points, box, mask
        prompt and elastic box as configured), as in the authors' evaluation
        (one round).  The candidates do not depend on the adapter, only their
        predicted IoUs do.

        Args:
            coarse_masks: (n, H, W) bool non-empty, on the refiner's device,
                original image frame.
            gt_masks: (n, H, W) bool, same frame.
            embedding: the image's :class:`ImageEmbedding`.

        Returns:
            dict of (n, M) tensors: ``iou_predictions`` (adapted),
            ``sam_iou_predictions`` (plain SAM) and ``gt_ious`` (IoU of each
            candidate with its ground-truth mask).
        """
        prompts = self.refiner.mine(coarse_masks, embedding)
        low_res, iou_predictions = self.refiner.decode(prompts, embedding)
        with self.iou_adapter.disabled():
            sam_predictions = self.refiner.decode(prompts, embedding)[1]
        num, m = low_res.shape[:2]
        candidates = self.refiner.upscale(low_res.flatten(0, 1), embedding)
        candidates = candidates.view(num, m, *candidates.shape[-2:])
        return dict(iou_predictions=iou_predictions, sam_iou_predictions=sam_predictions,
                    gt_ious=candidate_ious(candidates, gt_masks))

    def score_batch(self, inputs: Dict[str, list]) -> List[Tuple[List[int], dict]]:
        """:meth:`score_image` for each image of a batch of masks: a list of
        (indices of the image's masks in the batch, that image's scores)."""
        groups: Dict[str, List[int]] = OrderedDict()
        for index, img_path in enumerate(inputs['img_path']):
            groups.setdefault(img_path, []).append(index)
        masks = inputs['coarse_mask']
        return [(indices, self.score_image(img_path, torch.stack([masks[i] for i in indices])))
                for img_path, indices in groups.items()]

    @staticmethod
    def gather(scored: List[Tuple[List[int], dict]], key: str) -> Tensor:
        """One (N, ...) tensor of ``key`` in the order of the batch's inputs."""
        rows = [i for indices, _ in scored for i in indices]
        values = torch.cat([group[key] for _, group in scored])
        return values[torch.as_tensor(rows, device=values.device).argsort()]

    def loss(self, inputs: Dict[str, list]) -> Dict[str, Tensor]:
        """``loss_rank`` (trained) and ``top1_coarse_box`` (logged): how often
        the adapted top-scored box-prompt candidate is the target."""
        scored = self.score_batch(inputs)
        iou_predictions = self.gather(scored, 'iou_predictions')
        targets = ranking_targets(self.gather(scored, 'coarse_ious'))
        loss = margin_ranking_loss(iou_predictions, targets, self.ranking_margin)
        top1 = (iou_predictions.detach().argmax(1) == targets).float().mean()
        return dict(loss_rank=loss, top1_coarse_box=top1)

    @torch.no_grad()
    def predict(self, inputs: Dict[str, list],
                data_samples: Optional[Dict[str, list]] = None) -> List[dict]:
        """Per mask, a dict of (M,) tensors.

        * ``box_iou_predictions`` / ``box_sam_iou_predictions``: predicted
          IoUs (adapted / plain SAM) of the box-prompt (training) candidates,
          and ``box_coarse_ious``, their IoUs with the coarse mask;
        * where a gt mask is given, the same for the refinement prompts'
          candidates (:meth:`score_refinement`): ``refine_iou_predictions``,
          ``refine_sam_iou_predictions`` and ``refine_gt_ious``, their IoUs
          with the gt mask;
        * with ``val_refine`` and a gt mask, ``refined_adapted`` /
          ``refined_sam``: (intersection, union) pixel counts of the fully
          refined mask (with / without the adapter) and gt.
        """
        num = len(inputs['img_path'])
        data_samples = data_samples or {}
        gt_masks = data_samples.get('gt_mask') or [None] * num
        outputs = [dict(instance_id=instance_id) for instance_id in
                   data_samples.get('instance_id') or [None] * num]
        for indices, group in self.score_batch(inputs):
            with self.iou_adapter.disabled():
                sam_predictions = self.refiner.decode(group['prompts'], group['embedding'])[1]
            for row, i in enumerate(indices):
                outputs[i].update(box_iou_predictions=group['iou_predictions'][row].cpu(),
                                  box_sam_iou_predictions=sam_predictions[row].cpu(),
                                  box_coarse_ious=group['coarse_ious'][row].cpu())
            with_gt = [k for k, i in enumerate(indices) if gt_masks[i] is not None]
            if not with_gt:
                continue
            gt = torch.stack([gt_masks[indices[k]] for k in with_gt]).to(self.device).bool()
            coarse = group['coarse_masks'][with_gt]
            ranked = self.score_refinement(coarse, gt, group['embedding'])
            refined = {}
            if self.val_refine:
                refined['adapted'] = self.refiner.refine(
                    None, coarse, image_embedding=group['embedding']).masks
                with self.iou_adapter.disabled():
                    refined['sam'] = self.refiner.refine(
                        None, coarse, image_embedding=group['embedding']).masks
            for row, k in enumerate(with_gt):
                out = outputs[indices[k]]
                out.update(refine_iou_predictions=ranked['iou_predictions'][row].cpu(),
                           refine_sam_iou_predictions=ranked['sam_iou_predictions'][row].cpu(),
                           refine_gt_ious=ranked['gt_ious'][row].cpu())
                for name, masks in refined.items():
                    out[f'refined_{name}'] = (int((masks[row] & gt[row]).sum()),
                                              int((masks[row] | gt[row]).sum()))
        return outputs

    def forward(self, inputs: Dict[str, list], data_samples: Optional[Dict[str, list]] = None,
                mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.gather(self.score_batch(inputs), 'iou_predictions')
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

