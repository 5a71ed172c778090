"""``ipguard-validate``: check a listing manifest before anything trains on it.

Default mode is a gate for CI and data hand-offs (exit 1 and every problem on stderr);
``--quarantine`` is for pipelines that must go on with the good rows and hand the bad ones,
with their reasons, back to whoever owns the data.
"""

from __future__ import annotations

import argparse
import sys

from ipguard.data.schema import ManifestError, load_manifest


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipguard-validate",
        description="Validate a listing manifest (CSV, Parquet, JSON lines, or a folder/glob "
        "of part files) against the ipguard data contract.",
    )
    parser.add_argument("manifest", help="manifest file, dataset folder, or quoted glob")
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
        help="do not check that image files exist (paths are still checked)",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        result = load_manifest(
            args.manifest,
            on_error="quarantine" if args.quarantine else "raise",
            require_label=not args.no_label,
            check_images=not args.no_image_check,
            rejects_path=args.quarantine,
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
    except OSError as err:
        print(f"cannot write rejects file: {err}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if args.quarantine:
        print(f"rejected rows written to {args.quarantine}", file=sys.stderr)
    print(result.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
