# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""SAMRefiner++'s IoU adapter: a low-rank adapter on SAM's IoU head, and its loss.

SAM's mask decoder scores its candidate masks with an MLP on the IoU token
(``mask_decoder.iou_prediction_head``; HQ-SAM the same; SAM 2's
``sam_mask_decoder.iou_prediction_head``, followed by a sigmoid).  The adapter adds a trainable
low-rank
term to the MLP's last linear layer ``W`` (``hidden -> num_mask_tokens``)::

    scores = W h + b + scale * up(down(h))       down: hidden -> rank, up: rank -> tokens

``up`` starts at zero, so an untrained adapter leaves SAM's scores unchanged.
Everything else in SAM stays frozen: the candidate masks are exactly SAM's and
only the choice among them changes.

The adapter is saved on its own (:meth:`IoUAdapter.save`, a few kilobytes) with
the signature of the SAM it was trained on; :meth:`IoUAdapter.attach` refuses a
SAM of another architecture.
"""
import io
import os.path as osp
from contextlib import contextmanager
from typing import Dict, Iterator, Optional

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mmsamrefiner.utils.atomic import atomic_write_bytes

from .backends import backend_of

ADAPTER_FORMAT = 'mmsamrefiner.IoUAdapter/1'


def sam_signature(sam: nn.Module) -> Dict[str, object]:
    """What tells models apart: the family, the encoder's size (parameter
    count and input side) and the IoU head's last layer."""
    backend = backend_of(sam)
    base = backend.iou_head.layers[-1]
    return dict(family=backend.family,
                encoder_params=sum(p.numel() for p in backend.image_encoder.parameters()),
                encoder_size=backend.encoder_size,
                iou_head_hidden_dim=base.in_features,
                num_mask_tokens=base.out_features)


class AdaptedLinear(nn.Linear):
    """A frozen ``nn.Linear`` plus an adapter's low-rank term.

    It holds the frozen layer's own ``weight`` and ``bias`` parameters, so
    SAM's state dict keeps its official keys; the adapter's weights are not
    part of it (they belong to the :class:`IoUAdapter`).

    Args:
        base: the frozen layer, (in_features -> out_features).
        adapter: the :class:`IoUAdapter` whose term is added.
    """

    def __init__(self, base: nn.Linear, adapter: 'IoUAdapter') -> None:
        nn.Module.__init__(self)
        self.in_features, self.out_features = base.in_features, base.out_features
        self.weight, self.bias = base.weight, base.bias
        # Plain attributes, not submodules (see above).
        self.__dict__['base'] = base
        self.__dict__['adapter'] = adapter

    def _apply(self, fn, *args, **kwargs):
        # ``sam.to(device)`` moves the adapter with the layer it adapts.
        super()._apply(fn, *args, **kwargs)
        self.adapter._apply(fn, *args, **kwargs)
        return self

    def forward(self, hidden: Tensor) -> Tensor:
        """(..., in_features) -> (..., out_features)."""
        out = F.linear(hidden, self.weight, self.bias)
        if self.adapter.enabled:
            out = out + self.adapter.delta(hidden)
        return out


class IoUAdapter(nn.Module):
    """A LoRA-style adapter for the last layer of SAM's IoU-prediction MLP.

    Args:
        in_features: input width of that layer (SAM's ``iou_head_hidden_dim``).
        out_features: its output width (SAM's number of mask tokens, 4).
        rank: rank of the low-rank term (4, as the paper).
        scale: factor on the low-rank term.
        signature: :func:`sam_signature` of the SAM it is made for (set by
            :meth:`for_sam`); checked when attaching.
    """

    def __init__(self, in_features: int, out_features: int, rank: int = 4,
                 scale: float = 1.0, signature: Optional[Dict[str, int]] = None) -> None:
        super().__init__()
        if rank < 1:
            raise ValueError(f'rank must be >= 1, got {rank}')
        self.rank, self.scale = rank, float(scale)
        self.signature = dict(signature or {})
        self.down = nn.Linear(in_features, rank, bias=False)
        self.up = nn.Linear(rank, out_features, bias=False)
        nn.init.kaiming_uniform_(self.down.weight, a=5 ** 0.5)
        nn.init.zeros_(self.up.weight)
        self.enabled = True

    @classmethod
    def for_sam(cls, sam: nn.Module, rank: int = 4, scale: float = 1.0) -> 'IoUAdapter':
        """A fresh (zero-effect) adapter sized for ``sam``."""
        signature = sam_signature(sam)
        return cls(signature['iou_head_hidden_dim'], signature['num_mask_tokens'],
                   rank=rank, scale=scale, signature=signature)

    def delta(self, hidden: Tensor) -> Tensor:
        """The low-rank term ``scale * up(down(hidden))``, (..., out_features)."""
        return self.scale * self.up(self.down(hidden))

    # -- placing it in SAM ------------------------------------------------------
    def attach(self, sam: nn.Module) -> nn.Module:
        """Put the adapter on ``sam``'s IoU head (in place); returns ``sam``.

        Raises:
            ValueError: ``sam`` is not the architecture the adapter was made
                for, or already carries an adapter.
        """
        layers = backend_of(sam).iou_head.layers
        if isinstance(layers[-1], AdaptedLinear):
            raise ValueError('this SAM already carries an IoU adapter')
        own = sam_signature(sam)
        if self.signature and own != self.signature:
            diff = ', '.join(f'{k}: adapter {self.signature.get(k)} vs SAM {v}'
                             for k, v in own.items() if self.signature.get(k) != v)
            raise ValueError('the IoU adapter was trained for another SAM '
                             f'architecture ({diff})')
        if (self.down.in_features, self.up.out_features) != (
                own['iou_head_hidden_dim'], own['num_mask_tokens']):
            raise ValueError(
                f'the IoU adapter maps {self.down.in_features} -> {self.up.out_features} '
                f"but the IoU head ends with {own['iou_head_hidden_dim']} -> "
                f"{own['num_mask_tokens']}")
        self.signature = own
        self.to(layers[-1].weight.device)
        layers[-1] = AdaptedLinear(layers[-1], self)
        return sam

    @staticmethod
    def detach(sam: nn.Module) -> Optional['IoUAdapter']:
        """Take the adapter off ``sam`` (in place); returns it (None if none)."""
        layers = backend_of(sam).iou_head.layers
        if not isinstance(layers[-1], AdaptedLinear):
            return None
        adapted = layers[-1]
        base = adapted.base
        base.weight, base.bias = adapted.weight, adapted.bias  # as moved meanwhile
        layers[-1] = base
        return adapted.adapter

    @contextmanager
    def disabled(self) -> Iterator[None]:
        """Within the block, the SAM it is attached to scores as plain SAM."""
        enabled, self.enabled = self.enabled, False
        try:
            yield
        finally:
            self.enabled = enabled

    # -- files -------------------------------------------------------------------
    def to_file_dict(self) -> dict:
        """What :meth:`save` writes: settings, SAM signature and the weights."""
        return dict(format=ADAPTER_FORMAT, rank=self.rank, scale=self.scale,
                    in_features=self.down.in_features, out_features=self.up.out_features,
                    sam_signature=dict(self.signature),
                    state_dict={k: v.detach().cpu() for k, v in self.state_dict().items()})

    def save(self, path: str) -> None:
        """Write the adapter alone (not SAM) to ``path`` (atomic)."""
        buffer = io.BytesIO()
        torch.save(self.to_file_dict(), buffer)
        atomic_write_bytes(path, buffer.getvalue())

    @classmethod
    def from_file_dict(cls, data: dict, source: str = '<dict>') -> 'IoUAdapter':
        if not isinstance(data, dict) or data.get('format') != ADAPTER_FORMAT:
            raise ValueError(f'{source} is not an IoU adapter file written by '
                             f'IoUAdapter.save (format {ADAPTER_FORMAT!r})')
        adapter = cls(data['in_features'], data['out_features'], rank=data['rank'],
                      scale=data['scale'], signature=data.get('sam_signature'))
        adapter.load_state_dict(data['state_dict'])
        return adapter

    @classmethod
    def load(cls, checkpoint: str, sha256: Optional[str] = None) -> 'IoUAdapter':
        """Read an adapter file (a path or a URL, weights only:
        :func:`~.checkpoints.load_checkpoint_file`); ``sha256``: the digest
        the file must have."""
        from .checkpoints import CheckpointError, load_checkpoint_file
        from .sam import describe_unreadable_checkpoint
        if '://' not in checkpoint and not osp.isfile(checkpoint):
            raise FileNotFoundError(f'no IoU adapter file at {checkpoint!r}')
        hint = ('pass the adapter file tools/adapt.py writes (<work_dir>/iou_adapter.pth, '
                'IoUAdapter.save)')
        try:
            data = load_checkpoint_file(checkpoint, sha256)
        except CheckpointError:
            raise
        except Exception as error:  # noqa: BLE001
            # As in read_state_dict: torch.load's error names the step that
            # failed (UnpicklingError, RuntimeError, EOFError, ...), and each
            # means "not an adapter file"; a URL's OSError (no network) passes.
            if isinstance(error, OSError) and '://' in checkpoint:
                raise
            raise ValueError(f'the IoU adapter {checkpoint!r} cannot be loaded: '
                             f'{describe_unreadable_checkpoint(checkpoint, error)}; {hint}') \
                from error
        if (isinstance(data, dict) and data.get('format') != ADAPTER_FORMAT
                and 'state_dict' in data and ({'meta', 'message_hub', 'optimizer'} & set(data))):
            raise ValueError(f'the IoU adapter {checkpoint!r} is an mmengine runner checkpoint '
                             f'(it has {", ".join(sorted(set(data) - {"state_dict"})[:4])}), not '
                             f'an adapter file; {hint}')
        return cls.from_file_dict(data, checkpoint)

    def extra_repr(self) -> str:
        return (f'in_features={self.down.in_features}, '
                f'out_features={self.up.out_features}, rank={self.rank}, '
                f'scale={self.scale}')


def ranking_targets(coarse_ious: Tensor) -> Tensor:
    """SAMRefiner++'s training targets: per mask, the candidate that best
    matches its coarse mask.

    Args:
        coarse_ious: (N, M) IoU of each of SAM's M candidates with the coarse
            mask (:func:`candidate_ious`).

    Returns:
        (N,) int64 in [0, M): the candidate of the highest IoU (ties: the
        lower index).
    """
    return coarse_ious.argmax(1)


def candidate_ious(candidate_masks: Tensor, masks: Tensor) -> Tensor:
    """(N, M) IoU of each of M candidates (N, M, H, W) with (N, H, W) masks."""
    candidates = candidate_masks.flatten(2).float()
    target = masks.flatten(1).float()[:, None]
    inter = (candidates * target).sum(-1)
    union = candidates.sum(-1) + target.sum(-1) - inter
    return inter / union.clamp(min=1)


def margin_ranking_loss(iou_predictions: Tensor, targets: Tensor,
                        margin: float = 0.02) -> Tensor:
    """SAMRefiner++'s loss: the target candidate must out-score the others.

    ``loss_n = sum_{i != j} max(0, x_i - x_j + margin)`` with ``j = targets[n]``
    and ``x = iou_predictions[n]``, averaged over the N masks.

    Args:
        iou_predictions: (N, M) predicted IoUs.
        targets: (N,) int64 target candidate indices.
    """
    if iou_predictions.ndim != 2 or targets.shape != iou_predictions.shape[:1]:
        raise ValueError(f'expected (N, M) predictions and (N,) targets, got '
                         f'{tuple(iou_predictions.shape)} and {tuple(targets.shape)}')
    target_scores = iou_predictions.gather(1, targets[:, None])
    hinge = F.relu(iou_predictions - target_scores + margin)
    others = torch.ones_like(hinge, dtype=torch.bool).scatter_(1, targets[:, None], False)
    return (hinge * others).sum(1).mean()
