# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Building Segment Anything Models and loading their checkpoints.

Every family's builder lives here (the runtime adapters that *run* a built
model are in :mod:`.backends`, which import nothing from this module):

A SAM is described by ``dict(type='SAM', family=..., arch=..., checkpoint=...)``:

* ``family``: ``'sam'`` (default, ``segment_anything``), ``'hq'`` (HQ-SAM,
  ``segment-anything-hq``, the ``hq`` extra; archs vit_b/l/h and the light
  ``vit_tiny``) or ``'sam2'`` (SAM 2.1, ``sam2``, the ``sam2`` extra; archs
  hiera_t/s/b+/l, or ``dict(base=..., overrides=[hydra overrides])``);

* ``arch`` names an official architecture (``'vit_b'``, ``'vit_l'``,
  ``'vit_h'``) or is a dict of architecture settings (see
  :data:`SAM_ARCH_DEFAULTS`), e.g. a small SAM for tests;
* ``checkpoint`` is ``None`` (random weights), the name of an official
  checkpoint (``'sam_vit_h'``, ``'sam_hq_vit_tiny'``, ``'sam2.1_hiera_l'``), a
  URL, or a local path; downloads are verified against their published
  digests (or ``sha256=``), and every file is read weights-only
  (:mod:`.checkpoints`).

A checkpoint that does not fit the family and architecture is refused with a
message that names both (and the family/architecture the checkpoint seems to
be made for).
"""
import copy
from functools import partial
from typing import Dict, Optional, Union

import torch
from segment_anything.modeling import (
    ImageEncoderViT,
    MaskDecoder,
    PromptEncoder,
    Sam,
    TwoWayTransformer,
)

from mmsamrefiner.registry import MODELS, build_in_scope

from .checkpoints import (
    OFFICIAL_CHECKPOINTS,
    PACKAGE_CHECKPOINT_DIR,  # noqa: F401 - where the toy SAM lives
    CheckpointError,
    load_checkpoint_file,
)
from .conv_encoder import ConvImageEncoder

#: Settings shared by all official SAMs; an ``arch`` dict overrides any of them.
SAM_ARCH_DEFAULTS: Dict[str, object] = dict(
    encoder='vit',  # 'vit': segment_anything's ImageEncoderViT; 'conv': ConvImageEncoder
    img_size=1024,  # input side of the image encoder (pixels, square, padded)
    patch_size=16,  # ViT patch size: the embedding grid is img_size // patch_size
    prompt_embed_dim=256,  # channels of the image embedding and prompt tokens
    window_size=14,
    mlp_ratio=4.0,
    decoder_depth=2,
    decoder_mlp_dim=2048,
    decoder_num_heads=8,
    iou_head_depth=3,
    iou_head_hidden_dim=256,
    mask_in_chans=16,
    num_multimask_outputs=3,
)

#: The image encoders of the official SAM checkpoints.
SAM_ARCHS: Dict[str, Dict[str, object]] = {
    'vit_b': dict(embed_dim=768, depth=12, num_heads=12, global_attn_indexes=(2, 5, 8, 11)),
    'vit_l': dict(embed_dim=1024, depth=24, num_heads=16, global_attn_indexes=(5, 11, 17, 23)),
    'vit_h': dict(embed_dim=1280, depth=32, num_heads=16, global_attn_indexes=(7, 15, 23, 31)),
    # The toy SAM shipped in the package (tools/train_toy_sam.py): a test and
    # demo model trained on generated scenes, not a substitute for SAM.  Its
    # image encoder is convolutional (stride 8: a 32x32 embedding, 128x128
    # low-res masks); prompt encoder and mask decoder are SAM's own.
    'toy': dict(encoder='conv', img_size=256, prompt_embed_dim=64,
                conv_widths=(24, 32, 64, 96, 128), conv_depths=(0, 1, 2, 2, 2),
                conv_stride=8, decoder_mlp_dim=256, decoder_num_heads=4,
                iou_head_hidden_dim=64),
}

#: Settings of a convolutional image encoder (``encoder='conv'``).
CONV_ENCODER_KEYS = ('conv_widths', 'conv_depths', 'conv_stride')
#: Settings of a ViT image encoder (``encoder='vit'``) without defaults.
VIT_ENCODER_KEYS = ('embed_dim', 'depth', 'num_heads', 'global_attn_indexes')

#: arch -> where the official checkpoint is published (:data:`OFFICIAL_CHECKPOINTS`), and
#: the toy SAM shipped in the package.
SAM_CHECKPOINT_URLS: Dict[str, str] = dict(
    {c.arch: c.url for c in OFFICIAL_CHECKPOINTS.values() if c.family == 'sam'},
    toy='mmsamrefiner://toy_sam.pth')


PIXEL_MEAN = (123.675, 116.28, 103.53)  # RGB, as the official SAMs (and HQ-SAM)
PIXEL_STD = (58.395, 57.12, 57.375)


def resolve_sam_arch(arch: Union[str, dict]) -> Dict[str, object]:
    """Full architecture settings for an arch name or a dict of settings.

    Raises:
        ValueError: an unknown arch name, unknown settings in a dict, or a
            dict that lacks its encoder's required settings.
        TypeError: ``arch`` is neither a name nor a dict.
    """
    if isinstance(arch, str):
        if arch not in SAM_ARCHS:
            raise ValueError(f'unknown SAM arch {arch!r}; expected one of '
                           f'{sorted(SAM_ARCHS)} or a dict of settings')
        settings = dict(SAM_ARCH_DEFAULTS, **SAM_ARCHS[arch])
    elif isinstance(arch, dict):
        unknown = (set(arch) - set(SAM_ARCH_DEFAULTS) - set(VIT_ENCODER_KEYS)
                   - set(CONV_ENCODER_KEYS) - {'base'})
        if unknown:
            raise ValueError(f'unknown SAM arch settings {sorted(unknown)}')
        base = SAM_ARCHS.get(arch.get('base', ''), {})
        settings = dict(SAM_ARCH_DEFAULTS, **base, **arch)
        settings.pop('base', None)
        required = CONV_ENCODER_KEYS if settings['encoder'] == 'conv' else VIT_ENCODER_KEYS
        missing = set(required) - set(settings)
        if missing:
            raise ValueError(f'SAM arch dict lacks {sorted(missing)}')
    else:
        raise TypeError(f'SAM arch must be a name or a dict, got {type(arch)}')
    return settings


def arch_name(arch: Union[str, dict]) -> str:
    """A short printable name for an arch (the name, or its key settings)."""
    if isinstance(arch, str):
        return arch
    s = resolve_sam_arch(arch)
    if s['encoder'] == 'conv':
        return (f"custom(conv_widths={tuple(s['conv_widths'])}, "
                f"img_size={s['img_size']})")
    return (f"custom(embed_dim={s['embed_dim']}, depth={s['depth']}, "
            f"img_size={s['img_size']})")


def build_sam_model(arch: Union[str, dict]) -> Sam:
    """A randomly initialised :class:`Sam` of the given architecture."""
    s = resolve_sam_arch(arch)
    dim = s['prompt_embed_dim']
    if s['encoder'] == 'conv':
        embed_grid = s['img_size'] // s['conv_stride']
        image_encoder = ConvImageEncoder(
            img_size=s['img_size'], out_chans=dim, widths=tuple(s['conv_widths']),
            depths=tuple(s['conv_depths']), stride=s['conv_stride'])
    elif s['encoder'] == 'vit':
        embed_grid = s['img_size'] // s['patch_size']
        image_encoder = ImageEncoderViT(
            img_size=s['img_size'],
            patch_size=s['patch_size'],
            embed_dim=s['embed_dim'],
            depth=s['depth'],
            num_heads=s['num_heads'],
            mlp_ratio=s['mlp_ratio'],
            out_chans=dim,
            qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=True,
            window_size=s['window_size'],
            global_attn_indexes=tuple(s['global_attn_indexes']),
        )
    else:
        raise ValueError(f"unknown SAM image encoder {s['encoder']!r}; expected 'vit' or 'conv'")
    sam = Sam(
        image_encoder=image_encoder,
        prompt_encoder=PromptEncoder(
            embed_dim=dim,
            image_embedding_size=(embed_grid, embed_grid),
            input_image_size=(s['img_size'], s['img_size']),
            mask_in_chans=s['mask_in_chans'],
        ),
        mask_decoder=MaskDecoder(
            num_multimask_outputs=s['num_multimask_outputs'],
            transformer=TwoWayTransformer(
                depth=s['decoder_depth'],
                embedding_dim=dim,
                mlp_dim=s['decoder_mlp_dim'],
                num_heads=s['decoder_num_heads'],
            ),
            transformer_dim=dim,
            iou_head_depth=s['iou_head_depth'],
            iou_head_hidden_dim=s['iou_head_hidden_dim'],
        ),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD),
    )
    return sam.eval()


def describe_unreadable_checkpoint(path: str, error: BaseException) -> str:
    """Why torch could not read ``path``, in words (for the messages of
    :func:`read_state_dict` and :meth:`IoUAdapter.load`): empty, text, not a
    torch file, or Python objects torch will not load safely (mmengine's)."""
    try:
        with open(path, 'rb') as f:
            head = f.read(64)
    except OSError:
        head = None
    if head == b'':
        return 'the file is empty'
    if head is not None and not head.startswith((b'PK\x03\x04', b'\x80')):
        try:
            text = head.decode('utf-8')
        except UnicodeDecodeError:
            return 'it is not a PyTorch file (neither a zip archive nor a pickle)'
        first = text.strip().splitlines()[0][:40] if text.strip() else ''
        return f'it is a text file (it begins {first!r}), not a PyTorch file'
    globals_ = []
    try:
        globals_ = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # noqa: BLE001
        # Only to word the message: on a file it cannot parse, torch raises
        # whatever its zip or pickle reader hits (RuntimeError, UnpicklingError,
        # EOFError, ...), and the message then quotes ``error`` instead.
        pass
    if any(name.startswith('mmengine.') for name in globals_):
        mm = sorted(name for name in globals_ if name.startswith('mmengine.'))
        return (f'it holds mmengine objects (e.g. {mm[0]}): it looks like '
                'an mmengine runner checkpoint (epoch_*.pth, iter_*.pth)')
    first = str(error).strip().splitlines()[0][:200] if str(error).strip() else ''
    return f'torch cannot read it ({type(error).__name__}: {first})'


def read_state_dict(checkpoint: str, sha256: Optional[str] = None) -> Dict[str, torch.Tensor]:
    """Read a SAM state dict from a name, URL or path
    (:func:`~.checkpoints.load_checkpoint_file`, weights only).

    Official checkpoints are a bare state dict; mmengine-style files holding it
    under ``'state_dict'`` or ``'model'`` are accepted too.  A URL that cannot
    be fetched (no network) fails naming it and what to do instead; a download
    that does not have its published digest (or ``sha256``) fails with
    :class:`~.checkpoints.CheckpointError`; a file that is not a PyTorch
    checkpoint (text, empty, a runner checkpoint, Python objects that
    weights-only loading refuses) fails with a ``ValueError`` saying so.
    """
    try:
        loaded = load_checkpoint_file(checkpoint, sha256)
    except (OSError, CheckpointError):  # FileNotFoundError, no network, a digest mismatch
        raise
    except Exception as error:  # noqa: BLE001
        # torch.load reports a file it will not read with the error of the step
        # that failed (UnpicklingError, RuntimeError, EOFError, ValueError,
        # AttributeError, ...); each means "not a SAM checkpoint", said here as
        # one ValueError with the reason (the lines above let OSError through).
        raise ValueError(f'the SAM checkpoint {checkpoint!r} cannot be loaded: '
                         f'{describe_unreadable_checkpoint(checkpoint, error)}; pass the '
                         "weights of SAM, HQ-SAM or SAM 2 (e.g. checkpoint='sam_vit_h' or "
                         'sam_vit_h_4b8939.pth)') from error
    for key in ('state_dict', 'model'):
        if isinstance(loaded, dict) and isinstance(loaded.get(key), dict):
            loaded = loaded[key]
            break
    if not isinstance(loaded, dict):
        raise TypeError(f'checkpoint {checkpoint!r} does not hold a state dict '
                        f'(got {type(loaded).__name__})')
    return loaded


def guess_family(state_dict: Dict[str, torch.Tensor]) -> str:
    """'sam', 'hq' or 'sam2', from a state dict's keys."""
    if any(k.startswith('sam_mask_decoder.') for k in state_dict):
        return 'sam2'
    if any(k.startswith('mask_decoder.hf_') for k in state_dict):
        return 'hq'
    return 'sam'


def guess_sam_arch(state_dict: Dict[str, torch.Tensor]) -> Optional[str]:
    """The official arch whose encoder width and depth match a state dict."""
    if 'image_encoder.neck.1.weight' in state_dict and any(
            k.startswith('image_encoder.stages.') for k in state_dict):
        return 'toy' if len(state_dict) == len(build_sam_model('toy').state_dict()) \
            else 'custom(conv encoder)'
    proj = state_dict.get('image_encoder.patch_embed.proj.weight')
    if proj is None:
        return None
    depth = len({k.split('.')[2] for k in state_dict
                 if k.startswith('image_encoder.blocks.')})
    for name, spec in SAM_ARCHS.items():
        if 'embed_dim' in spec and spec['embed_dim'] == proj.shape[0] and spec['depth'] == depth:
            return name
    return f'custom(embed_dim={proj.shape[0]}, depth={depth})'


def load_sam_state_dict(sam: torch.nn.Module, state_dict: Dict[str, torch.Tensor],
                        arch: Union[str, dict], source: str, family: str = 'sam') -> None:
    """Load ``state_dict`` into ``sam``, refusing one made for another
    family or arch."""
    own = sam.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(v.shape)}'
        for k, v in own.items() if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or unexpected or mismatched:
        problems = []
        if mismatched:
            problems.append(f'{len(mismatched)} tensors of another shape '
                            f'(e.g. {mismatched[0]})')
        if missing:
            problems.append(f'{len(missing)} missing keys (e.g. {missing[0]!r})')
        if unexpected:
            problems.append(f'{len(unexpected)} unexpected keys '
                            f'(e.g. {unexpected[0]!r})')
        their_family = guess_family(state_dict)
        guess = guess_sam_arch(state_dict) if their_family != 'sam2' else None
        if their_family != family:
            hint = f'; it looks like a checkpoint of family {their_family!r}'
            hint += f' ({guess!r})' if guess else ''
        else:
            hint = f'; it looks like a checkpoint for {guess!r}' if guess else ''
        name = arch_name(arch) if family != 'sam2' else str(arch)
        which = f'SAM arch {name!r}' + (f' of family {family!r}' if family != 'sam' else '')
        raise ValueError(f'checkpoint {source!r} does not fit {which}: '
                         + ', '.join(problems) + hint)
    sam.load_state_dict(state_dict, strict=True)


# -- HQ-SAM (segment-anything-hq, the 'hq' extra) ---------------------------
HQ_INSTALL_HINT = ("HQ-SAM needs the 'hq' extra: pip install -e '.[hq]' "
                   '(segment-anything-hq==0.3 and timm, which it imports)')


def import_hq():
    """The ``segment_anything_hq`` package, or an ImportError saying how to install it."""
    try:
        import segment_anything_hq
    except ImportError as error:
        raise ImportError(f'{HQ_INSTALL_HINT}; missing: {error.name}') from error
    return segment_anything_hq


#: HQ-SAM's official checkpoints (Hugging Face ``lkeab/hq-sam``), by arch.
HQ_CHECKPOINT_URLS = {c.arch: c.url for c in OFFICIAL_CHECKPOINTS.values() if c.family == 'hq'}

#: TinyViT of the light HQ-SAM (``vit_tiny``; its encoder input is fixed at 1024).
TINY_VIT = dict(img_size=1024, in_chans=3, num_classes=1000, embed_dims=[64, 128, 160, 320],
                depths=[2, 2, 6, 2], num_heads=[2, 4, 5, 10], window_sizes=[7, 7, 14, 7],
                mlp_ratio=4.0, drop_rate=0.0, drop_path_rate=0.0, use_checkpoint=False,
                mbconv_expand_ratio=4.0, local_conv_size=3, layer_lr_decay=0.8)


def build_hq_sam_model(settings: dict, tiny_vit: bool = False) -> torch.nn.Module:
    """A randomly initialised HQ-SAM from its own modules.

    Args:
        settings: full SAM architecture settings (``resolve_sam_arch``); for
            ``tiny_vit`` only the prompt/decoder ones are used.
        tiny_vit: the light HQ-SAM's TinyViT encoder instead of a ViT.
    """
    hq = import_hq()
    modeling = hq.modeling
    dim = settings['prompt_embed_dim']
    if tiny_vit:
        encoder = modeling.TinyViT(**TINY_VIT)
        img_size, vit_dim = TINY_VIT['img_size'], TINY_VIT['embed_dims'][2]
    else:
        img_size, vit_dim = settings['img_size'], settings['embed_dim']
        encoder = modeling.ImageEncoderViT(
            img_size=img_size, patch_size=settings['patch_size'],
            embed_dim=settings['embed_dim'], depth=settings['depth'],
            num_heads=settings['num_heads'], mlp_ratio=settings['mlp_ratio'], out_chans=dim,
            qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True,
            window_size=settings['window_size'],
            global_attn_indexes=tuple(settings['global_attn_indexes']))
    grid = img_size // settings['patch_size']
    sam = modeling.Sam(
        image_encoder=encoder,
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=dim, image_embedding_size=(grid, grid),
            input_image_size=(img_size, img_size), mask_in_chans=settings['mask_in_chans']),
        mask_decoder=modeling.MaskDecoderHQ(
            num_multimask_outputs=settings['num_multimask_outputs'],
            transformer=modeling.TwoWayTransformer(
                depth=settings['decoder_depth'], embedding_dim=dim,
                mlp_dim=settings['decoder_mlp_dim'], num_heads=settings['decoder_num_heads']),
            transformer_dim=dim, iou_head_depth=settings['iou_head_depth'],
            iou_head_hidden_dim=settings['iou_head_hidden_dim'], vit_dim=vit_dim),
        pixel_mean=list(PIXEL_MEAN),
        pixel_std=list(PIXEL_STD))
    return sam.eval()


# -- SAM 2 (sam2, the 'sam2' extra) ------------------------------------------
SAM2_INSTALL_HINT = ("SAM 2 needs the 'sam2' extra: SAM2_BUILD_CUDA=0 pip install "
                     "--no-build-isolation -e '.[sam2]' (sam2==1.1.0, built against the "
                     'installed torch >= 2.5.1; leave out SAM2_BUILD_CUDA=0 to build its CUDA '
                     'extension)')

#: arch name -> the hydra config inside the sam2 package (SAM 2.1 models).
SAM2_CONFIGS = {
    'hiera_t': 'configs/sam2.1/sam2.1_hiera_t.yaml',
    'hiera_s': 'configs/sam2.1/sam2.1_hiera_s.yaml',
    'hiera_b+': 'configs/sam2.1/sam2.1_hiera_b+.yaml',
    'hiera_l': 'configs/sam2.1/sam2.1_hiera_l.yaml',
}
#: The official SAM 2.1 checkpoints (``{'model': state_dict}``).
SAM2_CHECKPOINT_URLS = {c.arch: c.url for c in OFFICIAL_CHECKPOINTS.values()
                        if c.family == 'sam2'}


def import_sam2():
    """The ``sam2`` package, or an ImportError saying how to install it."""
    try:
        import sam2
        from sam2.build_sam import build_sam2  # noqa: F401
    except ImportError as error:
        raise ImportError(f'{SAM2_INSTALL_HINT}; missing: {error.name}') from error
    return sam2


def build_sam2_model(arch) -> torch.nn.Module:
    """A randomly initialised SAM 2 from its own hydra config.

    ``arch``: a name of :data:`SAM2_CONFIGS`, or ``dict(base=NAME,
    overrides=[hydra overrides...])`` (e.g. a small model for tests).
    """
    import_sam2()
    from hydra import compose
    from hydra.utils import instantiate
    from omegaconf import OmegaConf
    name, overrides = (arch, []) if isinstance(arch, str) else (arch['base'],
                                                                 list(arch.get('overrides', [])))
    if name not in SAM2_CONFIGS:
        raise ValueError(f'unknown SAM 2 arch {name!r}; expected one of {sorted(SAM2_CONFIGS)}')
    cfg = compose(config_name=SAM2_CONFIGS[name], overrides=overrides)
    OmegaConf.resolve(cfg)
    return instantiate(cfg.model, _recursive_=True).eval()


FAMILIES = ('sam', 'hq', 'sam2')


def build_family_model(family: str, arch: Union[str, dict]) -> torch.nn.Module:
    """A randomly initialised model of ``family`` and ``arch``."""
    if family == 'sam':
        return build_sam_model(arch)
    if family == 'hq':
        if arch == 'vit_tiny':
            return build_hq_sam_model(dict(SAM_ARCH_DEFAULTS), tiny_vit=True)
        return build_hq_sam_model(resolve_sam_arch(arch))
    if family == 'sam2':
        return build_sam2_model(arch)
    raise ValueError(f'unknown SAM family {family!r}; expected one of {FAMILIES}')


@MODELS.register_module(name='SAM')
def build_sam(arch: Union[str, dict] = 'vit_h',
              checkpoint: Optional[str] = None,
              family: str = 'sam',
              sha256: Optional[str] = None) -> torch.nn.Module:
    """Build a SAM, optionally with weights: ``dict(type='SAM', ...)``.

    Args:
        arch: family ``'sam'``: ``'vit_b'``, ``'vit_l'``, ``'vit_h'``,
            ``'toy'`` or a dict of architecture settings (keys of
            :data:`SAM_ARCH_DEFAULTS` plus ``embed_dim``, ``depth``,
            ``num_heads``, ``global_attn_indexes``); ``'hq'``: the same ViT
            names and dicts, or ``'vit_tiny'``; ``'sam2'``: ``'hiera_t'``,
            ``'hiera_s'``, ``'hiera_b+'``, ``'hiera_l'`` or
            ``dict(base=NAME, overrides=[...])``.
        checkpoint: ``None`` for random weights; the name of an official
            checkpoint (:data:`~.checkpoints.OFFICIAL_CHECKPOINTS`:
            ``'sam_vit_h'``, ``'sam_hq_vit_b'``, ``'sam2.1_hiera_t'``, ...),
            downloaded once into torch hub's cache and verified against its
            published digest; a URL (an official one is verified the same
            way); ``mmsamrefiner://NAME`` for a checkpoint shipped in the
            package; or a local path.  Read weights-only
            (:func:`~.checkpoints.load_checkpoint_file`).
        family: ``'sam'``, ``'hq'`` or ``'sam2'``; the last two need the
            extras of the same names (the error says how to install them).
        sha256: the SHA-256 (hex) the checkpoint file must have; for URLs
            other than the official ones (and any file to pin).

    Returns:
        The model (``segment_anything``, ``segment_anything_hq`` or ``sam2``
        module) in eval mode, on the CPU.
    """
    official = OFFICIAL_CHECKPOINTS.get(checkpoint) if isinstance(checkpoint, str) else None
    if official is not None and isinstance(arch, str) and \
            (official.family, official.arch) != (family, arch):
        raise ValueError(f'checkpoint {checkpoint!r} is the official checkpoint of family '
                         f'{official.family!r}, arch {official.arch!r}, not of family {family!r}, '
                         f'arch {arch!r}: give dict(type=\'SAM\', family={official.family!r}, '
                         f'arch={official.arch!r}, checkpoint={checkpoint!r})')
    sam = build_family_model(family, copy.deepcopy(arch))
    if checkpoint is not None:
        load_sam_state_dict(sam, read_state_dict(checkpoint, sha256), arch, checkpoint, family)
    return sam


def as_sam(sam: Union[torch.nn.Module, dict]) -> torch.nn.Module:
    """Return ``sam`` itself, or build it from a config dict."""
    if isinstance(sam, torch.nn.Module):
        return sam
    if isinstance(sam, dict):
        return build_in_scope(dict(sam, type=sam.get('type', 'SAM')))
    raise TypeError('sam must be a built SAM / HQ-SAM / SAM 2 model or a config dict like '
                    f"dict(type='SAM', arch='vit_b'), got {type(sam).__name__}")
