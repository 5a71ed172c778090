"""The command-line tools: exit codes, where problems are printed, what gets written."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ipguard.commands import import_folder, validate
from ipguard.data.io import read_manifest

HEADER = "listing_id,title,price,currency,image_path,label\n"


def write_jpeg(path: Path, size: int = 16) -> Path:
    """A real (tiny) photo: ipguard-validate decodes every image by default."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (size, size), (200, 30, 30)).save(path, format="JPEG")
    return path


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    write_jpeg(tmp_path / "img" / "a.jpg")
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


# --- decoding every image ---------------------------------------------------------------------

FIXTURE_IMAGES = Path(__file__).resolve().parents[1] / "fixtures" / "images"
UNUSABLE = {  # row -> (file, what ipguard-validate must say)
    3: ("truncated.jpg", "image_unreadable"),
    5: ("empty.jpg", "image_unreadable"),
    8: ("not_an_image.png", "image_unreadable"),
    10: ("bomb.png", "image_too_large"),
}


@pytest.fixture
def dirty_photos(tmp_path: Path) -> Path:
    """Eleven listings: seven real photos, a truncated download, an empty file, an HTML page
    saved as .png and a decompression bomb (a header declaring 30000x30000 pixels)."""
    images = tmp_path / "images"
    for i in range(1, 12):
        write_jpeg(images / f"{i}.jpg", size=12 + i)
    noise = np.random.default_rng(0).integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise).save(buffer, format="JPEG")  # pixel data, not header, dominates
    whole = buffer.getvalue()
    (images / "truncated.jpg").write_bytes(whole[: len(whole) // 2])  # header intact
    (images / "empty.jpg").write_bytes(b"")
    (images / "not_an_image.png").write_bytes(b"<html><body>404 Not Found</body></html>")
    (images / "bomb.png").write_bytes((FIXTURE_IMAGES / "huge_header.png").read_bytes())
    lines = [HEADER.strip()]
    for row in range(1, 12):
        name = UNUSABLE.get(row, (f"{row}.jpg",))[0]
        lines.append(f"L{row},Acme bag {row},10,USD,images/{name},genuine")
    path = tmp_path / "listings.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_every_image_is_decoded_and_each_unusable_one_is_named_with_row_and_reason(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main([str(dirty_photos)]) == 0  # kept: training scores them without image
    captured = capsys.readouterr()
    assert captured.out.strip() == "rows_in=11 rows_valid=11 rows_rejected=0 images_unusable=4"
    warned = [line for line in captured.err.splitlines() if "image unusable" in line]
    assert len(warned) == 4
    for (row, (name, flag)), line in zip(sorted(UNUSABLE.items()), warned, strict=True):
        assert line.startswith(
            f"warning: listings.csv row {row} (line {row + 1}), column 'image_path': "
            f"image unusable ({flag}): image file "
        )
        assert name in line
    assert "truncated" in warned[0] and "empty (0 bytes)" in warned[1]
    assert "not a recognised image" in warned[2] and "900000000 pixels" in warned[3]
    assert "images: 11 decoded, 4 unusable (image_too_large 1, image_unreadable 3)" in captured.err


def test_no_decode_only_checks_that_the_files_exist(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main([str(dirty_photos), "--no-decode"]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "rows_in=11 rows_valid=11 rows_rejected=0"
    assert "image unusable" not in captured.err and "decoded" not in captured.err


def test_header_only_check_misses_the_truncated_download(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main([str(dirty_photos), "--decode", "header"]) == 0
    assert capsys.readouterr().out.strip().endswith("images_unusable=3")


def test_quarantine_keeps_rows_with_unusable_images_by_default(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejects = dirty_photos.parent / "rejects.csv"
    assert validate.main([str(dirty_photos), "--quarantine", str(rejects)]) == 0
    out = capsys.readouterr().out.strip()
    assert out == "rows_in=11 rows_valid=11 rows_rejected=0 images_unusable=4"
    assert pd.read_csv(rejects).empty  # written, and empty: nothing was set aside


def test_quarantine_with_reject_sets_those_rows_aside_with_their_reason(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rejects = dirty_photos.parent / "rejects.csv"
    code = validate.main(
        [str(dirty_photos), "--quarantine", str(rejects), "--unusable-images", "reject"]
    )
    assert code == 0
    counts = dict(item.split("=") for item in capsys.readouterr().out.split())
    assert counts == {
        "rows_in": "11",
        "rows_valid": "7",
        "rows_rejected": "4",
        "images_unusable": "4",
    }
    assert int(counts["rows_in"]) == int(counts["rows_valid"]) + int(counts["rows_rejected"])
    written = pd.read_csv(rejects, dtype=str)
    assert written["_source_row"].astype(int).tolist() == sorted(UNUSABLE)
    flags = [UNUSABLE[int(r)][1] for r in written["_source_row"]]
    for reason, flag in zip(written["reject_reason"], flags, strict=True):
        assert reason.startswith(f"column 'image_path': image unusable ({flag}): image file ")
        assert reason.endswith("set aside (unusable_images=reject)")


def test_reject_without_quarantine_fails_the_gate(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main([str(dirty_photos), "--unusable-images", "reject"]) == 1
    err = capsys.readouterr().err
    assert "4 problem(s) in 4 row(s); manifest rejected" in err


def test_no_image_check_skips_decoding_too(
    dirty_photos: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert validate.main([str(dirty_photos), "--no-image-check"]) == 0
    assert capsys.readouterr().out.strip() == "rows_in=11 rows_valid=11 rows_rejected=0"


def test_team_labels_and_encoding_options(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.csv"
    path.write_bytes("listing_id;title;label\na;Tênis;ok\nb;Relógio;fake\n".encode("cp1252"))
    assert validate.main([str(path)]) == 1
    assert "m.csv line 2: not UTF-8 text" in capsys.readouterr().err
    labels = '{"genuine": ["ok"], "infringing": ["fake"]}'
    assert validate.main([str(path), "--encoding", "cp1252", "--label-values", labels]) == 0
    assert capsys.readouterr().out.strip() == "rows_in=2 rows_valid=2 rows_rejected=0"
    with pytest.raises(SystemExit) as caught:  # a usage error, as argparse reports them
        validate.main([str(path), "--label-values", "{oops"])
    assert caught.value.code == 2
    assert "--label-values: not valid JSON" in capsys.readouterr().err
    assert validate.main([str(path), "--encoding", "cp1252", "--label-values", '{"ok": []}']) == 2
    assert "label_values: unknown label 'ok'" in capsys.readouterr().err
