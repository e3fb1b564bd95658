"""``fracbench export`` and ``fracbench import-preds``: meet YOLO, COCO, nnU-Net and ImageFolder tools."""

from __future__ import annotations

import argparse
from pathlib import Path

from fracbench.convert import EXPORT_FORMATS, EXPORT_TASKS, IMPORT_FORMATS, IMPORT_TASKS
from fracbench.vocab import SCORABLE_SPLITS, TASKS


def register(sub: argparse._SubParsersAction) -> None:
    """Add this group's commands to the top-level parser."""
    e = sub.add_parser(
        "export",
        help="write the built dataset with its splits for YOLO, COCO tools, ImageFolder readers or nnU-Net",
        description="Export the built dataset, keeping its frozen leakage-aware splits: yolo (Ultralytics images/ + "
        "labels/ + data.yaml), coco (instances_<split>.json + images/, category 1 = fractured), imagefolder "
        "(<split>/<class>/ for timm, Keras, torchvision) or nnunet (nnU-Net v2 raw dataset with the folds as "
        "splits_final.json). Image bytes are copied as stored; see docs/CONVERT.md.",
    )
    e.add_argument("format", choices=EXPORT_FORMATS, help="layout to write")
    e.add_argument("--data", type=Path, default=None, help="built dataset dir (default: $FRACBENCH_DATA, cache dir)")
    e.add_argument("--out", type=Path, required=True,
                   help="directory to create (nnunet: your nnUNet_raw folder; Dataset501_FracAtlas/ is created in it)")
    e.add_argument("--task", choices=TASKS, default=None,
                   help="annotations to write: yolo localization (default) or segmentation; coco segmentation "
                   "(default, boxes + polygons) or localization (boxes only)")
    e.add_argument("--segment", action="store_true", help="yolo: write YOLO-seg polygons (same as --task segmentation)")
    e.add_argument("--dataset-id", type=int, default=501, help="nnunet: dataset id, DatasetNNN_FracAtlas (default 501)")
    e.add_argument("--manifest", type=Path, default=None,
                   help="nnunet: split manifest CSV the dataset was built with (default: the shipped one it names)")
    e.add_argument("--overwrite", action="store_true", help="replace an existing export")
    e.set_defaults(func=run_export)

    i = sub.add_parser(
        "import-preds",
        help="turn YOLO labels, COCO results, a score CSV or nnU-Net predictions into a fracbench submission",
        description="Convert another tool's predictions into a fracbench.submission/v1 file with every image of the "
        "split once: yolo (Ultralytics labels/ from save_txt=True save_conf=True), coco (a COCO results list; "
        "image ids of `fracbench export coco`, FracAtlas ids or file names), csv (image_id,score) or nnunet (an "
        "nnUNetv2_predict output folder: <case>.png masks, or <case>.npz probabilities from --save_probabilities; "
        "connected components become instances scored by their peak probability, 1.0 from a hard mask). The result "
        "is validated against the split before it is written.",
    )
    i.add_argument("format", choices=IMPORT_FORMATS, help="what PATH holds")
    i.add_argument("path", type=Path, help="yolo: the labels/ directory; coco: results JSON; csv: the CSV; nnunet: the prediction folder")
    i.add_argument("--split", choices=SCORABLE_SPLITS, default="test", help="split predicted (default test)")
    i.add_argument("--task", choices=TASKS, default=None,
                   help="submission task (default: localization for yolo and coco, classification for csv, segmentation "
                   "for nnunet); "
                   "classification from detections scores each image by its most confident box")
    i.add_argument("--out", type=Path, required=True, help="submission JSON to write")
    i.add_argument("--model-name", required=True, help="model.name in the submission")
    i.add_argument("--model-url", default=None, help="model.url (paper or code)")
    i.add_argument("--description", default=None, help="model.description")
    i.add_argument("--threshold", type=float, default=None, help="operating threshold chosen on validation")
    i.add_argument("--data", type=Path, default=None, help="built dataset dir (default: $FRACBENCH_DATA, cache dir)")
    i.add_argument("--annotations", type=Path, default=None,
                   help="coco: COCO file whose images map the results' integer ids to file names "
                   "(default: ids of `fracbench export coco`, IMG0000019 -> 19)")
    i.add_argument("--category-id", type=int, default=None, help="coco: keep only this category (default: all)")
    i.add_argument("--prob-threshold", type=float, default=None, metavar="P",
                   help="nnunet: fracture-probability cut of .npz files (default 0.5, the pixels of nnU-Net's own mask)")
    i.set_defaults(func=run_import)


def run_export(args: argparse.Namespace) -> int:
    """Export with a progress bar, then print the counts per split and the notes."""
    from rich.table import Table

    from fracbench.cli import console, progress_bar, safe
    from fracbench.convert.export import export_dataset
    from fracbench.errors import DatasetError

    if args.segment and args.format != "yolo":
        raise DatasetError("--segment is a yolo option; for coco the default task already writes polygons")
    if args.task and args.task not in EXPORT_TASKS[args.format]:
        raise DatasetError(f"the {args.format} export serves task(s) {', '.join(EXPORT_TASKS[args.format])}, not {args.task!r}")
    options = {"dataset_id": args.dataset_id, "manifest": args.manifest} if args.format == "nnunet" else {}
    with progress_bar(label=f"export {args.format}") as bar:
        job = bar.add_task("export", total=None)
        summary = export_dataset(
            args.format, args.out, data=args.data, task=args.task, overwrite=args.overwrite, segment=args.segment,
            progress=lambda done, total: bar.update(job, completed=done, total=total), **options,
        )
    console.print(f"wrote {safe(str(summary.out))} ({summary.format} layout, task {summary.task})", highlight=False, soft_wrap=True)
    table = Table()
    for col in ("split", "images", "fractured"):
        table.add_column(col, justify="left" if col == "split" else "right")
    for split, n in summary.images.items():
        table.add_row(split, f"{n:,}", f"{summary.fractured.get(split, 0):,}")
    table.add_row("all", f"{sum(summary.images.values()):,}", f"{sum(summary.fractured.values()):,}", style="bold")
    console.print(table)
    if summary.objects:
        console.print(f"{summary.objects:,} annotation objects written", highlight=False)
    for note in summary.notes:
        console.print(f"- {safe(note)}", highlight=False, soft_wrap=True)
    return 0


def run_import(args: argparse.Namespace) -> int:
    """Convert, validate, write the submission and say how to score it."""
    from fracbench.cli import console, err_console, safe
    from fracbench.convert.import_preds import import_predictions, write_submission
    from fracbench.errors import SubmissionError

    if args.task and args.task not in IMPORT_TASKS[args.format]:
        raise SubmissionError(f"a {args.format} file gives task(s) {', '.join(IMPORT_TASKS[args.format])}, not {args.task!r}")
    doc, summary = import_predictions(
        args.format, args.path, split=args.split, task=args.task, model_name=args.model_name, data=args.data,
        annotations=args.annotations, category_id=args.category_id, model_url=args.model_url,
        description=args.description, threshold=args.threshold, prob_threshold=args.prob_threshold,
    )
    write_submission(doc, args.out)
    what = "scores" if summary.task == "classification" else f"{summary.objects:,} objects"
    console.print(
        f"[green]✓[/green] wrote {safe(str(args.out))}: valid {summary.task} submission for the {summary.split} split, "
        f"{summary.images:,} images ({summary.with_predictions:,} with predictions), {what}",
        highlight=False, soft_wrap=True,
    )
    for note in summary.notes:
        err_console.print(f"[yellow]note:[/yellow] {safe(note)}", highlight=False, soft_wrap=True)
    console.print(f"score with: fracbench score {safe(str(args.out))} --split {summary.split}", highlight=False)
    return 0
