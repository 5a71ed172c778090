"""``ipguard-import-folder``: write a manifest for a genuine/ + infringing/ image folder."""

from __future__ import annotations

import argparse
import sys

from ipguard.data.errors import ManifestError
from ipguard.data.folder import IGNORED_ATTR, manifest_from_folder


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ipguard-import-folder",
        description="Build a listing manifest from ROOT/genuine/** and ROOT/infringing/** images.",
    )
    parser.add_argument("root", help="folder holding genuine/ and infringing/")
    parser.add_argument(
        "out_manifest",
        help="manifest to write (.csv, .parquet or .jsonl), inside ROOT or a folder above it",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        frame = manifest_from_folder(args.root, args.out_manifest)
    except ManifestError as err:
        for problem in err.problems:
            print(problem, file=sys.stderr)
        return 1
    except (OSError, ValueError) as err:
        print(f"cannot write {args.out_manifest}: {err}", file=sys.stderr)
        return 1
    for entry in frame.attrs.get(IGNORED_ATTR, []):
        print(f"not imported: {entry}", file=sys.stderr)
    counts = frame["label"].value_counts()
    print(
        f"wrote {len(frame)} listings ({counts.get('genuine', 0)} genuine, "
        f"{counts.get('infringing', 0)} infringing) to {args.out_manifest}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
