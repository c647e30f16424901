#!/usr/bin/env python
# Copyright (c) mmsamrefiner contributors. All rights reserved.
"""Refine a whole collection of coarse masks, optionally on several GPUs/nodes.

Inputs and outputs keep the formats users have:

* ``--coco ANN.json``: COCO-style instances (polygon or RLE) -> the same json
  with refined RLE segmentations (other fields kept, ``refined_score`` added);
* ``--label-dir DIR``: PNG label maps (palette or grey) -> refined PNG label
  maps, palette kept (split-then-merge);
* ``--mask-dir DIR``: per image a folder of binary instance PNGs
  (``DIR/<image stem>/*.png``) -> the same layout, refined.

Examples::

    python tools/refine.py configs/samrefiner/samrefiner_sam_vit-h.py \\
        --img-dir data/coco/train2017 --coco coarse.json --out refined.json \\
        --eval gt.json
    bash tools/dist_refine.sh configs/samrefiner/samrefiner_sam_vit-h.py 8 \\
        --img-dir ... --coco coarse.json --out refined.json

Nothing is lost: every output is written atomically and each finished image is
recorded with digests of its input, of the settings and weights, and of what it
wrote, so a re-run (after a crash or Ctrl-C) reuses the images whose record
still holds and redoes the others (changed input, settings or output;
``--overwrite`` redoes all).  An image that fails (unreadable or truncated,
malformed annotation, masks of another size) is reported with its reason and
its coarse masks are written unchanged; any other error (out of memory, a
killed worker, a bug) is transient: the next run retries that image.  ``--eval`` and
``--show-dir`` leave out the
failed images (and those whose masks they cannot read or decode) and say how
many and why.  One
run at a time may write an output (a lock in it; the ranks of a run share it).

Hostile or odd inputs: an image id or file stem never names a path (outputs
are named by ``file_key``: ``42.json``, ``a_b-8b5b595a.json`` for ``"a/b"``);
two images whose output names coincide (ids ``1`` and ``"1"``), a malformed
image record (an id that is not an int or a str, a ``file_name`` that is not a
non-empty str) and an output that is, lies inside or contains an input
(symbolic links resolved) are refused before anything is written.  An image
whose ``file_name`` leads outside ``--img-dir`` (``../``, an absolute path)
fails unless ``--allow-outside-img-dir``; one of more than ``--max-pixels``
pixels fails before it is decoded.

Exit status (also in ``--help``): 0 every image refined; 1 the run finished
but some image(s) failed (listed); 2 refused before starting (bad arguments,
an unusable input, output or config: one sentence, nothing written); 3 the run
stopped on an error that is not an image's (a full disk or read-only output:
one sentence; anything else: its traceback), the finished images are kept;
130 interrupted.
"""
import argparse
import errno
import json
import os
import os.path as osp
import sys
import time
import traceback

import torch
from mmengine.config import Config, DictAction
from mmengine.dist import barrier, broadcast_object_list, get_dist_info, init_dist

from mmsamrefiner.apis import refine_collection, summarize
from mmsamrefiner.apis.distributed import init_cpu_processes
from mmsamrefiner.apis.refine_collection import default_workers
from mmsamrefiner.mask_io.coarse_masks import CollectionError
from mmsamrefiner.mask_io.left_out import LeftOut
from mmsamrefiner.mask_io.mask_collections import (
    BinaryMaskCollection,
    CocoCollection,
    LabelMapCollection,
)
from mmsamrefiner.mask_io.records import OutputBusyError, OutputLock, OutputWriteError, writing
from mmsamrefiner.registry import build_in_scope

EXIT_STATUSES = """exit status:
  0    every image was refined
  1    the run finished but some image(s) failed (listed in the summary; their
       coarse masks are written unchanged)
  2    refused before starting: bad arguments, an unusable input, output or
       config (one sentence says what and why; nothing is written)
  3    the run stopped on an error that is not an image's (disk full, a
       read-only output, a bug); the finished images are kept: run the same
       command again to resume
  130  interrupted (Ctrl-C); the finished images are kept"""

#: the advice after "cannot write FILE: <why>; the N images finished so far are kept:"
WRITE_ADVICE = {
    errno.ENOSPC: 'free space and run the same command again',
    errno.EDQUOT: 'free space within your disk quota and run the same command again',
    errno.EROFS: 'make the file system writable and run the same command again',
    errno.EACCES: 'give yourself write permission there and run the same command again',
    errno.EPERM: 'give yourself write permission there and run the same command again',
}


class Refused(SystemExit):
    """The run is refused before it starts; ``str()`` is one sentence, the
    exit status 2."""


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Refine a collection of coarse masks.',
                                     epilog=EXIT_STATUSES,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='a config with a `refiner` (configs/samrefiner/*.py)')
    parser.add_argument('--img-dir', required=True, help='folder of the images')
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument('--coco', help='COCO-style instance json of coarse masks')
    source.add_argument('--label-dir', help='folder of PNG label maps')
    source.add_argument('--mask-dir', help='folder of per-image folders of binary PNGs')
    parser.add_argument('--out', required=True,
                        help='output json (--coco) or folder (--label-dir, --mask-dir)')
    parser.add_argument('--eval', metavar='GT',
                        help='ground truth in the input format: score coarse and refined')
    parser.add_argument('--show-dir', help='write coarse-vs-refined overlays here')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--encode-batch', type=int, default=1, metavar='N',
                        help='images per image-encoder call (1: one by one; more is faster '
                        'on GPUs)')
    parser.add_argument('--workers', type=int, default=default_workers(), metavar='N',
                        help='threads reading and resizing images ahead of the refiner, with a '
                        'writer thread behind it (default: the CPU count less two, at most 4, here '
                        f'{default_workers()}; 0: each image read, refined and written in turn); '
                        'the outputs are the same for every N')
    parser.add_argument('--ignore-index', type=int, default=255)
    parser.add_argument('--background', type=int, default=0)
    parser.add_argument('--classes', type=int, nargs='+', help='label-map classes to refine')
    parser.add_argument('--overwrite', action='store_true',
                        help='redo every image, even those whose record still holds')
    parser.add_argument('--max-pixels', type=int, default=100_000_000, metavar='N',
                        help='an image (or coarse input) of more pixels fails on its own, '
                        'before it is decoded (default 100000000; 0: no limit)')
    parser.add_argument('--allow-outside-img-dir', action='store_true',
                        help='read images whose file_name leads outside --img-dir (../, an '
                        'absolute path); without it such an image fails')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override config settings, e.g. refiner.elastic_margin=0.1')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm'], default='none')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if args.encode_batch < 1:
        parser.error(f'--encode-batch is images per encoder call, >= 1; got {args.encode_batch}')
    if args.workers < 0:
        parser.error(f'--workers is a number of threads, >= 0 (0: none); got {args.workers}')
    if args.max_pixels < 0:
        parser.error(f'--max-pixels is >= 0 (0: no limit); got {args.max_pixels}')
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _inputs(args):
    """``[(flag, path)]`` of what the run reads."""
    source = (('--coco', args.coco) if args.coco else ('--label-dir', args.label_dir)
              if args.label_dir else ('--mask-dir', args.mask_dir))
    inputs = [('--img-dir', args.img_dir), source]
    return inputs + [('--eval', args.eval)] if args.eval else inputs


def _outputs(args):
    """``[(flag, path)]`` of what the run writes (with --coco also the parts
    folder and the scores file beside the json)."""
    outputs = [('--out', args.out)]
    if args.coco:
        outputs.append(('the parts folder of --out', args.out + '.parts'))
        if args.eval:
            outputs.append(('the scores file of --out', args.out + '.eval.json'))
    return outputs + [('--show-dir', args.show_dir)] if args.show_dir else outputs


def _inside(path: str, folder: str) -> bool:
    """Whether the real path ``path`` is ``folder`` or lies inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _overlap(output: str, input_: str) -> str:
    """How ``output`` meets ``input_`` (symbolic links resolved): ``'is'``,
    ``'is inside'``, ``'contains'``, or ``''`` when they are apart."""
    output, input_ = osp.realpath(output), osp.realpath(input_)
    if output == input_:
        return 'is'
    if _inside(output, input_):
        return 'is inside'
    return 'contains' if _inside(input_, output) else ''


def check_arguments(args) -> None:
    """Refuse (before anything is read or written) a missing config or
    ``--eval``, and an output that is, lies inside or contains an input."""
    if not osp.isfile(args.config):
        raise Refused(f'refine.py: the config {args.config} does not exist; give a config with '
                      'a `refiner` (configs/samrefiner/*.py)')
    if args.eval and not osp.exists(args.eval):
        raise Refused(f'refine.py: --eval {args.eval} does not exist; give the ground truth in '
                      'the input format')
    for out_flag, output in _outputs(args):
        for in_flag, input_ in _inputs(args):
            how = _overlap(output, input_)
            if how:
                raise Refused(f'refine.py: {out_flag} {output} {how} {in_flag} {input_}, an '
                              'input; outputs must not be written where inputs are read: give '
                              f'{out_flag.split()[-1]} another path')


def open_collection(args):
    """The collection of the chosen format (its coarse input and its refined
    output), checked as a whole; refuses with one sentence an input that is
    not a collection of that format, or whose images' output names
    coincide."""
    try:
        if args.coco:
            if osp.isdir(args.out):
                raise Refused(f'refine.py: --out {args.out} is a folder; with --coco it is '
                              'the refined json file to write')
            collection = CocoCollection.open(args.coco, args.img_dir, args.out,
                                             allow_outside_img_dir=args.allow_outside_img_dir)
        elif args.label_dir:
            collection = LabelMapCollection.open(args.label_dir, args.img_dir, args.out)
        else:
            collection = BinaryMaskCollection.open(args.mask_dir, args.img_dir, args.out)
        collection.check()
        return collection
    except (CollectionError, FileNotFoundError) as error:
        raise Refused(f'refine.py: {error}') from None


def lock_output(args, collection, rank: int):
    """Rank 0 locks the output for the run (creating it: an unwritable --out is
    found here, before the model loads); every rank exits if that fails."""
    lock, error = None, None
    if rank == 0:
        try:
            lock = OutputLock(collection.root).acquire()
        except OutputBusyError as busy:
            error = str(busy)
        except OSError as failed:
            error = (f'cannot write to --out {args.out}: {failed.strerror or failed} '
                     f'({failed.filename or collection.root}); choose a writable place')
    message = [error]
    broadcast_object_list(message, src=0)
    if message[0]:
        raise Refused(f'refine.py: {message[0]}')
    return lock


def build_refiner(args):
    try:
        cfg = Config.fromfile(args.config)
        if args.cfg_options:
            cfg.merge_from_dict(args.cfg_options)
    except Exception as error:  # noqa: BLE001
        # Broad on purpose: a config is Python code, so reading it raises
        # whatever its code raises (SyntaxError, NameError, ImportError, ...);
        # each is refused in one sentence.
        raise Refused(f'refine.py: cannot read the config {args.config} '
                      f'({type(error).__name__}: {error})') from error
    if 'refiner' not in cfg:
        raise Refused(f'refine.py: {args.config} has no `refiner`; use one of '
                      'configs/samrefiner/')
    device = args.device
    if device.startswith('cuda') and args.launcher != 'none':
        device = f'cuda:{int(os.environ["LOCAL_RANK"])}'
    try:
        refiner = build_in_scope(cfg.refiner.to_dict())
    except (ValueError, FileNotFoundError) as error:  # bad checkpoints: the package's messages
        raise Refused(f'refine.py: cannot build the refiner of {args.config}: '
                      f'{error}') from error
    return refiner.to(device).eval()


def setup_distributed(args) -> None:
    """Join the process group: NCCL through mmengine on GPUs; gloo from
    torchrun's environment on CPUs (mmengine's launcher assumes CUDA)."""
    if args.launcher != 'none' and args.device.startswith('cuda'):
        init_dist(args.launcher, backend='nccl')
    else:
        init_cpu_processes(args.launcher)


def run(args) -> dict:
    """Refine (this rank's share), merge on rank 0; returns rank 0's report.

    Raises:
        Refused: before anything is written (see :func:`check_arguments`,
            :func:`open_collection`, :func:`lock_output`, :func:`build_refiner`).
        OutputWriteError: an output cannot be written; its ``finished``: the
            images finished so far (kept for the next run).
    """
    check_arguments(args)
    setup_distributed(args)
    rank, world_size = get_dist_info()
    collection = open_collection(args)
    lock = lock_output(args, collection, rank)
    try:
        return _refine_and_report(args, collection, rank, world_size)
    except OutputWriteError as error:
        if getattr(error, 'finished', None) is None:  # while merging, scoring, drawing
            error.finished = len(collection.records.all([i.key for i in collection.items()]))
        raise
    finally:
        if lock is not None:
            lock.release()


def _refine_and_report(args, collection, rank, world_size) -> dict:
    refiner = build_refiner(args)
    start = time.perf_counter()
    with torch.inference_mode():
        summary = refine_collection(
            refiner, collection, rank=rank, world_size=world_size,
            semantic_options=dict(ignore_index=args.ignore_index, classes=args.classes,
                                  background=args.background),
            encode_batch=args.encode_batch, overwrite=args.overwrite,
            max_pixels=args.max_pixels, workers=args.workers)
    barrier()
    report = dict(rank_summary=summary, seconds=time.perf_counter() - start)
    if rank != 0:
        return report
    keys = [item.key for item in collection.items()]
    collection.finish(keys)
    records = collection.records.all(keys)
    print('\n' + summarize(records), flush=True)
    report['records'] = records
    if args.eval:
        from mmsamrefiner.evaluation.report import evaluate_collection, format_table
        left_out = LeftOut(records)
        scores = evaluate_collection(collection, args.eval, left_out,
                                     ignore_index=args.ignore_index)
        print(format_table(scores), flush=True)
        _print_left_out(left_out, 'eval')
        eval_file = collection.eval_file()
        with writing(eval_file), open(eval_file, 'w') as f:
            json.dump(dict(scores, left_out=left_out.reasons()) if left_out else scores, f,
                      indent=1)
        print(f'wrote {eval_file}')
        report['eval'] = scores
        report['eval_left_out'] = left_out.reasons()
    if args.show_dir:
        from mmsamrefiner.visualization.collection import show_collection
        left_out = show_collection(collection, args.show_dir, LeftOut(records),
                                   ignore_index=args.ignore_index,
                                   background=args.background)
        print(f'wrote overlays to {args.show_dir}')
        _print_left_out(left_out, 'overlays')
        report['show_left_out'] = left_out.reasons()
    return report


def _print_left_out(left_out, what: str) -> None:
    message = left_out.message(what)
    if message:
        print(message, flush=True)


def write_error_message(error: OutputWriteError) -> str:
    """One sentence: which file, why, what is kept, what to do."""
    count = getattr(error, 'finished', None)
    kept = ('the images finished so far are kept' if count is None else
            f'the {count} image{"" if count == 1 else "s"} finished so far '
            f'{"is" if count == 1 else "are"} kept')
    advice = WRITE_ADVICE.get(error.errno, 'fix that and run the same command again')
    return f'refine.py: cannot write {error.filename}: {error.strerror}; {kept}: {advice}'


def main(argv=None):
    """Run the tool; the exit status is one of :data:`EXIT_STATUSES`."""
    args = parse_args(argv)
    try:
        report = run(args)
    except KeyboardInterrupt:
        print('\ninterrupted: finished images are recorded; run the same command again to '
              'resume', file=sys.stderr)
        raise SystemExit(130)
    except Refused as refused:
        print(refused, file=sys.stderr)
        raise SystemExit(2) from None
    except OutputWriteError as error:
        print(write_error_message(error), file=sys.stderr)
        raise SystemExit(3) from None
    except Exception:  # noqa: BLE001
        # Broad on purpose: any other error is not an image's (those are
        # recorded by refine_collection); it is shown whole, then the exit
        # status says the finished images are kept.
        traceback.print_exc()
        print("refine.py: the run stopped on the error above, which is not an image's; the "
              'images finished so far are kept: run the same command again once it is fixed '
              '(exit status 3)', file=sys.stderr)
        raise SystemExit(3) from None
    failed = [r for r in report.get('records', []) if r['status'] == 'failed']
    if failed:
        print(f'{len(failed)} image(s) failed (listed above); exit status 1', file=sys.stderr)
        raise SystemExit(1)


if __name__ == '__main__':
    main()
