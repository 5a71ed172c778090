"""The command-line tools: exit codes, where problems are printed, what gets written."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from ipguard.commands import import_folder, validate
from ipguard.data.io import read_manifest

HEADER = "listing_id,title,price,currency,image_path,label\n"


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "a.jpg").write_bytes(b"x")
    path = tmp_path / "listings.csv"
    path.write_text(
        HEADER
        + "a,Acme bag,10,USD,img/a.jpg,genuine\n"
        + "b,Acme bag copy,-3,USD,img/a.jpg,infringing\n"
        + "c,Zeta watch,5,USD,img/none.jpg,bogus\n"
    )
    return path


def test_default_mode_exits_1_and_prints_each_problem(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = validate.main([str(manifest)])
    err = capsys.readouterr().err
    assert code == 1
    assert "listings.csv row 2 (line 3), column 'price': negative price (-3.0)" in err
    assert "listings.csv row 3 (line 4), column 'image_path'" in err
    assert "listings.csv row 3 (line 4), column 'label'" in err
    assert "3 problem(s) in 2 row(s)" in err


def test_clean_manifest_exits_0_with_summary(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest.write_text(HEADER + "a,Acme bag,10,USD,img/a.jpg,genuine\n")
    assert validate.main([str(manifest)]) == 0
    assert capsys.readouterr().out.strip() == "rows_in=1 rows_valid=1 rows_rejected=0"


@pytest.mark.parametrize("rejects_name", ["rejects.csv", "rejects.txt"])
def test_quarantine_writes_rejects_and_exits_0(
    manifest: Path, capsys: pytest.CaptureFixture[str], rejects_name: str
) -> None:
    rejects = manifest.parent / rejects_name
    assert validate.main([str(manifest), "--quarantine", str(rejects)]) == 0
    assert capsys.readouterr().out.strip() == "rows_in=3 rows_valid=1 rows_rejected=2"
    written = pd.read_csv(rejects, dtype=str)  # CSV also when the suffix says nothing
    assert written["listing_id"].tolist() == ["b", "c"]


def test_quarantine_in_parquet_by_suffix(manifest: Path) -> None:
    rejects = manifest.parent / "rejects.parquet"
    assert validate.main([str(manifest), "--quarantine", str(rejects)]) == 0
    assert pd.read_parquet(rejects)["listing_id"].tolist() == ["b", "c"]


def test_no_label_and_no_image_check_relax_those_rules(
    manifest: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest.write_text("listing_id,title,image_path\na,Acme bag,img/none.jpg\n")
    assert validate.main([str(manifest)]) == 1
    assert validate.main([str(manifest), "--no-label"]) == 1
    assert validate.main([str(manifest), "--no-label", "--no-image-check"]) == 0


def test_unreadable_manifest_exits_1_naming_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "m.xlsx").write_bytes(b"x")
    assert validate.main([str(tmp_path / "m.xlsx")]) == 1
    assert "m.xlsx: unknown manifest format" in capsys.readouterr().err


def test_help_describes_the_quarantine_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        validate.main(["--help"])
    assert caught.value.code == 0
    assert "--quarantine" in capsys.readouterr().out


def test_import_folder_writes_manifest_and_reports_skipped_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for rel in ("genuine/a.jpg", "infringing/b.png", "infringing/c.gif", "genuine/d.heic"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    out = tmp_path / "manifest.jsonl"
    assert import_folder.main([str(tmp_path), str(out)]) == 0
    captured = capsys.readouterr()
    assert "wrote 3 listings (1 genuine, 2 infringing)" in captured.out
    assert "not imported: genuine/d.heic" in captured.err
    assert sorted(read_manifest(out)["listing_id"]) == [
        "genuine/a.jpg",
        "infringing/b.png",
        "infringing/c.gif",
    ]


def test_import_folder_without_label_folders_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert import_folder.main([str(tmp_path), str(tmp_path / "m.csv")]) == 1
    assert "no label folder" in capsys.readouterr().err
