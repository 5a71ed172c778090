"""``ipguard-validate``: check a listing manifest before anything trains on it.

Default mode is a gate for CI and data hand-offs (exit 1 and every problem on stderr);
``--quarantine`` is for pipelines that must go on with the good rows and hand the bad ones,
with their reasons, back to whoever owns the data.

Every image is decoded by default, in threads, exactly as training and serving decode it, so a
truncated download, an empty file, an HTML page saved as ``.jpg`` or a decompression bomb is
named with its row before a run finds out. Such a row is kept by default (training scores it
without its image, as serving does) and counted in the summary line as ``images_unusable=N``;
``--unusable-images reject`` makes it a row problem instead (an error, or a reject with
``--quarantine``).
"""

from __future__ import annotations

import argparse
import json
import sys

from ipguard.data.errors import ManifestError
from ipguard.data.reference_catalog import read_brand_catalog
from ipguard.data.schema import IMAGE_DECODE_MODES, load_manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipguard-validate",
        description="Validate a listing manifest (CSV, Parquet, JSON lines, or a folder/glob "
        "of part files) against the ipguard data contract.",
    )
    parser.add_argument("manifest", nargs="?", help="manifest file, dataset folder, or quoted glob")
    parser.add_argument(
        "--brands",
        metavar="PATH",
        default=None,
        help="also (or only) check a brand catalog: a brands CSV, a catalog folder or a folder "
        "per brand; prints brands=.. photos=.. logos=.. sellers=.. aliases=.. images_unusable=..",
    )
    parser.add_argument(
        "--quarantine",
        metavar="REJECTS_FILE",
        help="write rejected rows with their reasons here (format by suffix, CSV otherwise) "
        "and exit 0 instead of failing",
    )
    parser.add_argument(
        "--no-label", action="store_true", help="do not require a label column (unlabelled data)"
    )
    parser.add_argument(
        "--no-image-check",
        action="store_true",
        help="do not check that image files exist, nor decode them (paths are still checked)",
    )
    parser.add_argument(
        "--decode",
        choices=IMAGE_DECODE_MODES,
        default="full",
        help="how far to open each image: full (default) decodes it as training does; header "
        "reads only its header (fast, but misses truncated pixel data); none skips it",
    )
    parser.add_argument(
        "--no-decode",
        dest="decode",
        action="store_const",
        const="none",
        help="only check that image files exist (same as --decode none)",
    )
    parser.add_argument(
        "--unusable-images",
        choices=("keep", "reject"),
        default="keep",
        help="a row whose image cannot be used: keep it, reported and scored without its image "
        "as in training (default), or reject it as a row problem",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        metavar="N",
        help="threads that decode images (default: one per CPU, at most 8)",
    )
    parser.add_argument(
        "--encoding",
        default=None,
        help="text encoding of CSV / JSON-lines files, e.g. cp1252 (default: UTF-8; a "
        "byte-order mark is honoured)",
    )
    parser.add_argument(
        "--label-values",
        metavar="JSON",
        default=None,
        help='the team\'s own label values, e.g. \'{"genuine": ["ok"], "infringing": ["fake"]}\'',
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.workers is not None and args.workers < 0:
        parser.error(f"--workers must be >= 0, got {args.workers}")
    try:
        label_values = json.loads(args.label_values) if args.label_values else None
    except json.JSONDecodeError as err:
        parser.error(f"--label-values: not valid JSON ({err.msg}); expected an object of lists")
    if args.manifest is None and args.brands is None:
        parser.error("expected a manifest, --brands PATH, or both")
    check_images = not args.no_image_check
    if args.brands is not None:
        status = _check_catalog(args.brands, decode=check_images and args.decode != "none")
        if status or args.manifest is None:
            return status
    try:
        result = load_manifest(
            args.manifest,
            on_error="quarantine" if args.quarantine else "raise",
            require_label=not args.no_label,
            check_images=check_images,
            rejects_path=args.quarantine,
            label_values=label_values,
            decode_images=args.decode if check_images else "none",
            unusable_images=args.unusable_images,
            image_workers=args.workers,
            encoding=args.encoding,
        )
    except ManifestError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        bad_rows = {(p.file, p.row) for p in err.problems if p.row is not None}
        print(
            f"{len(err.problems)} problem(s) in {len(bad_rows)} row(s); manifest rejected",
            file=sys.stderr,
        )
        return 1
    except ValueError as err:  # an option the library refuses (label_values, encoding ...)
        print(f"ipguard-validate: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        print(f"cannot write rejects file: {err}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if result.image_check != "none":
        line = _image_line(result.image_check, result.images_checked, result.images_unusable)
        print(line, file=sys.stderr)
    if args.quarantine:
        print(f"rejected rows written to {args.quarantine}", file=sys.stderr)
    print(result.summary())
    return 0


def _check_catalog(path: str, *, decode: bool) -> int:
    """Check a brand catalog: every error on stderr (exit 1), or its set-aside images as
    warnings and its summary line on stdout."""
    try:
        catalog = read_brand_catalog(path, check_images=decode)
    except ManifestError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        print(f"{len(err.problems)} problem(s); brand catalog rejected", file=sys.stderr)
        return 1
    except FileNotFoundError as err:
        print(f"ipguard-validate: {err}", file=sys.stderr)
        return 1
    for problem in catalog.problems:
        print(f"warning: {problem}", file=sys.stderr)
    print(" ".join(f"{name}={count}" for name, count in catalog.summary().items()))
    return 0


def _image_line(mode: str, checked: int, unusable: dict[str, int]) -> str:
    how = "decoded" if mode == "full" else "header-checked"
    reasons = ", ".join(f"{flag} {n}" for flag, n in unusable.items())
    return f"images: {checked} {how}, {sum(unusable.values())} unusable" + (
        f" ({reasons})" if reasons else ""
    )


if __name__ == "__main__":
    raise SystemExit(main())
