"""Perceptual hashes survive re-encoding, bad files give None, and grouping is exact."""

from __future__ import annotations

import itertools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageFile

from ipguard.data.images import DEFAULT_MAX_PIXELS, decode_image
from ipguard.data.near_duplicates import (
    DEFAULT_MAX_DISTANCE,
    SIGNATURE_PREFIX,
    _close_signature_pairs,
    _parse_signatures,
    _signature_distance,
    connected_groups,
    image_hash,
    image_hashes,
    near_duplicate_clusters,
    near_duplicate_groups,
)


def _product_photo(seed: int) -> Image.Image:
    """A smooth random picture: like a photo, its pHash barely moves when re-encoded."""
    cells = np.random.default_rng(seed).integers(0, 256, size=(8, 8, 3), dtype=np.uint8)
    return Image.fromarray(cells).resize((128, 128), Image.Resampling.BICUBIC)


def _distance(a: str, b: str) -> int:
    return (int(a, 16) ^ int(b, 16)).bit_count()


def _partition(labels) -> set[frozenset[int]]:
    """Groups as sets of positions, so two labelings compare regardless of numbering."""
    groups: dict[object, set[int]] = {}
    for position, label in enumerate(labels):
        groups.setdefault(label, set()).add(position)
    return {frozenset(g) for g in groups.values()}


def _brute_force_groups(hashes: list[str | None], max_distance: int) -> list[int]:
    """Reference answer: compare every pair, join with a plain union-find."""
    parent = list(range(len(hashes)))

    def find(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j in itertools.combinations(range(len(hashes)), 2):
        a, b = hashes[i], hashes[j]
        if a is not None and b is not None and _distance(a, b) <= max_distance:
            parent[find(i)] = find(j)
    return [find(i) for i in range(len(hashes))]


def test_image_hash_is_64_bit_hex(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    _product_photo(0).save(path)
    digest = image_hash(path)
    assert digest is not None
    assert len(digest) == 16
    int(digest, 16)  # parses as hex


def test_resized_reencoded_copy_is_a_near_duplicate_and_other_photos_are_not(
    tmp_path: Path,
) -> None:
    original = _product_photo(1)
    original.save(tmp_path / "original.png")
    original.resize((112, 112), Image.Resampling.BILINEAR).save(tmp_path / "copy.jpg", quality=85)
    for seed in range(2, 6):
        _product_photo(seed).save(tmp_path / f"other{seed}.png")

    hashes = image_hashes(
        [tmp_path / "original.png", tmp_path / "copy.jpg"]
        + [tmp_path / f"other{seed}.png" for seed in range(2, 6)]
    )

    assert _distance(hashes[0], hashes[1]) <= 4
    assert all(_distance(hashes[0], other) > 4 for other in hashes[2:])
    groups = near_duplicate_groups(hashes, max_distance=4)
    assert groups[0] == groups[1]
    assert len(set(groups[2:].tolist()) | {groups[0]}) == 5


@pytest.mark.parametrize(
    "content",
    [
        None,  # file does not exist
        b"",
        b"this is a text file, not an image",
        b"\x89PNG\r\n\x1a\n" + b"\x00" * 40,  # PNG signature, broken chunks
        b"\xff\xd8\xff\xe0" + b"\x00" * 20,  # JPEG header, nothing after it
    ],
    ids=["missing", "empty", "text", "broken-png", "truncated-jpeg-header"],
)
def test_image_hash_returns_none_for_unreadable_files(
    tmp_path: Path, content: bytes | None
) -> None:
    path = tmp_path / "bad.png"
    if content is not None:
        path.write_bytes(content)
    assert image_hash(path) is None


def test_image_hash_returns_none_for_a_truncated_jpeg(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Pillow's default; another module switching it on globally would make half images decode.
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", False)
    path = tmp_path / "photo.jpg"
    _product_photo(7).save(path, quality=90)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    assert image_hash(path) is None


def test_image_hash_returns_none_for_a_directory(tmp_path: Path) -> None:
    assert image_hash(tmp_path) is None


def test_exif_rotated_photo_matches_a_copy_with_the_rotation_baked_in(tmp_path: Path) -> None:
    photo = _product_photo(8)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    photo.save(tmp_path / "tagged.jpg", quality=95, exif=exif)
    photo.transpose(Image.Transpose.ROTATE_270).save(tmp_path / "baked.jpg", quality=95)
    photo.save(tmp_path / "untagged.jpg", quality=95)

    tagged, baked, untagged = image_hashes(
        [tmp_path / "tagged.jpg", tmp_path / "baked.jpg", tmp_path / "untagged.jpg"]
    )
    assert _distance(tagged, baked) <= 2
    assert _distance(tagged, untagged) > 4  # so the match above is the rotation being applied


def test_transparent_cutout_matches_its_copy_flattened_on_white(tmp_path: Path) -> None:
    cutout = Image.new("RGBA", (128, 128), (0, 0, 0, 0))
    cutout.paste(_product_photo(9).resize((64, 96)), (32, 16))
    cutout.save(tmp_path / "cutout.png")
    flattened = Image.new("RGB", cutout.size, "white")
    flattened.paste(cutout, mask=cutout)
    flattened.save(tmp_path / "flattened.jpg", quality=90)
    assert _distance(*image_hashes([tmp_path / "cutout.png", tmp_path / "flattened.jpg"])) <= 2


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "BMP", "TIFF", "PPM", "ICO", "PCX"])
def test_image_hash_reads_exactly_the_formats_the_listing_decoder_reads(
    tmp_path: Path, fmt: str
) -> None:
    path = tmp_path / f"photo.{fmt.lower()}"
    _product_photo(10).resize((64, 64)).save(path, format=fmt)
    assert (image_hash(path) is not None) == decode_image(path).ok


def test_image_hash_returns_none_for_an_image_larger_than_the_models_accept(
    tmp_path: Path,
) -> None:
    side = int(DEFAULT_MAX_PIXELS**0.5) + 1
    path = tmp_path / "huge.png"
    Image.new("1", (side, side)).save(path)
    assert image_hash(path) is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes need a POSIX system")
def test_image_hash_returns_none_for_a_named_pipe_instead_of_blocking(tmp_path: Path) -> None:
    path = tmp_path / "pipe.jpg"
    os.mkfifo(path)
    assert image_hash(path) is None


def test_image_hashes_keeps_order_maps_none_to_none_and_threads_agree(tmp_path: Path) -> None:
    paths: list[Path | None] = []
    for seed in range(6):
        path = tmp_path / f"{seed}.png"
        _product_photo(seed).save(path)
        paths.append(path)
    paths.insert(2, None)
    paths.append(tmp_path / "missing.png")

    serial = image_hashes(paths)
    threaded = image_hashes(paths, workers=3)

    assert serial == threaded
    assert serial[2] is None and serial[-1] is None
    assert serial[3] == image_hash(paths[3])
    assert len(set(h for h in serial if h is not None)) == 6


def test_image_hashes_rejects_negative_workers() -> None:
    with pytest.raises(ValueError, match="workers must be >= 0, found -1"):
        image_hashes([], workers=-1)


def test_missing_hashes_each_get_their_own_group() -> None:
    same = "0f0f0f0f0f0f0f0f"
    groups = near_duplicate_groups([None, same, None, same, float("nan")])
    assert groups[1] == groups[3]
    assert len({groups[0], groups[2], groups[4], groups[1]}) == 4


def test_group_ids_count_up_in_order_of_first_appearance() -> None:
    a, b = "0000000000000000", "ffffffffffffffff"
    assert near_duplicate_groups([b, a, b, None, a]).tolist() == [0, 1, 0, 2, 1]


def test_groups_are_transitive_through_a_chain_of_small_steps() -> None:
    # Each hash is 3 bits from the next, so the ends are 9 bits apart yet share a group.
    chain = [0, 0b111, 0b111111, 0b111111111]
    groups = near_duplicate_groups([f"{v:016x}" for v in chain], max_distance=3)
    assert len(set(groups.tolist())) == 1


@pytest.mark.parametrize("max_distance", range(1, 11))
def test_pairs_at_exactly_max_distance_with_differences_spread_over_all_bits_are_grouped(
    max_distance: int,
) -> None:
    # The hardest case for band indexing: one differing bit in every stretch of 64/d bits, so
    # only a pigeonhole with d + 1 bands still finds a band where the two hashes agree.
    spread = sum(1 << int((i + 0.5) * 64 / max_distance) for i in range(max_distance))
    for base in (0, 2**64 - 1, 0x5A5A5A5A5A5A5A5A):
        pair = [f"{base:016x}", f"{base ^ spread:016x}"]
        assert _distance(*pair) == max_distance
        assert near_duplicate_groups(pair, max_distance=max_distance).tolist() == [0, 0]
        assert near_duplicate_groups(pair, max_distance=max_distance - 1).tolist() == [0, 1]


def test_malformed_hash_error_names_its_position_and_value() -> None:
    with pytest.raises(ValueError, match=r"hashes\[1\].*16-digit hex.*'xyz'"):
        near_duplicate_groups(["0000000000000000", "xyz"])
    with pytest.raises(ValueError, match=r"hashes\[0\].*'zz00000000000000'"):
        near_duplicate_groups(["zz00000000000000"])


def test_negative_max_distance_is_rejected() -> None:
    with pytest.raises(ValueError, match="max_distance must be >= 0, found -1"):
        near_duplicate_groups(["0000000000000000"], max_distance=-1)


def test_max_distance_of_64_puts_every_hash_in_one_group() -> None:
    hashes = ["0000000000000000", "ffffffffffffffff", None]
    groups = near_duplicate_groups(hashes, max_distance=64)
    assert groups[0] == groups[1] != groups[2]


@st.composite
def _clustered_hashes(draw) -> list[str | None]:
    """Hashes scattered around a few centres, so near pairs are common (random ones rarely are)."""
    centres = draw(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=5))
    items = draw(
        st.lists(
            st.one_of(
                st.none(),
                st.tuples(
                    st.sampled_from(centres),
                    st.lists(st.integers(0, 63), max_size=7),
                ),
            ),
            max_size=40,
        )
    )
    hashes: list[str | None] = []
    for item in items:
        if item is None:
            hashes.append(None)
            continue
        value, flips = item
        for bit in flips:
            value ^= 1 << bit
        hashes.append(f"{value:016x}")
    return hashes


@settings(max_examples=150, deadline=None)
@given(hashes=_clustered_hashes(), max_distance=st.integers(0, 12))
def test_near_duplicate_groups_match_brute_force(
    hashes: list[str | None], max_distance: int
) -> None:
    fast = near_duplicate_groups(hashes, max_distance=max_distance)
    assert _partition(fast.tolist()) == _partition(_brute_force_groups(hashes, max_distance))


@settings(max_examples=100, deadline=None)
@given(
    n=st.integers(1, 30),
    edges=st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)), max_size=40),
)
def test_connected_groups_match_a_graph_search(n: int, edges: list[tuple[int, int]]) -> None:
    edges = [(a, b) for a, b in edges if a < n and b < n]
    neighbours: dict[int, set[int]] = {i: set() for i in range(n)}
    for a, b in edges:
        neighbours[a].add(b)
        neighbours[b].add(a)
    expected = [-1] * n
    for start in range(n):
        if expected[start] == -1:
            stack = [start]
            while stack:
                node = stack.pop()
                if expected[node] == -1:
                    expected[node] = start
                    stack.extend(neighbours[node])

    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    assert _partition(connected_groups(n, left, right).tolist()) == _partition(expected)


def test_connected_groups_rejects_edges_outside_the_nodes() -> None:
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        connected_groups(3, np.array([0]), np.array([3]))


# --- photo signatures and bounded clusters ---------------------------------------------------


@pytest.fixture(scope="module")
def studio(tmp_path_factory: pytest.TempPathFactory):
    """300 catalogue listings (studio shots, several per item, some re-uploads), with truth."""
    from ipguard.demo.catalogue import make_catalogue

    catalogue = make_catalogue(
        tmp_path_factory.mktemp("studio"), n_listings=300, n_sellers=40, seed=11
    )
    manifest = pd.read_csv(catalogue.manifest_path, dtype=str, keep_default_na=False)
    truth = pd.read_csv(catalogue.truth_path, dtype=str, keep_default_na=False)
    files = manifest.merge(truth, on="listing_id").drop_duplicates("image_path")
    return catalogue, files.reset_index(drop=True)


def _l1(a: str, b: str) -> int:
    x, y = _parse_signatures([a, b])
    return int(_signature_distance(x, y))


def _reuploads(original: Image.Image, out: Path) -> list[Path]:
    """A photo as other sellers re-upload it: re-encoded, resized, cropped, or all three."""
    w, h = original.size
    edits = {
        "q65.jpg": (original, {"quality": 65}),
        "small.jpg": (original.resize((round(w * 0.8), round(h * 0.8))), {"quality": 85}),
        "large.png": (original.resize((round(w * 1.3), round(h * 1.3))), {}),
        "crop.jpg": (original.crop((3 * w // 100, 3 * h // 100, w, h)), {"quality": 90}),
        "all.jpg": (
            original.crop((0, 2 * h // 100, w - 2 * w // 100, h)).resize((w * 9 // 10,) * 2),
            {"quality": 70},
        ),
    }
    paths = []
    for name, (image, options) in edits.items():
        image.save(out / name, **options)
        paths.append(out / name)
    return paths


def test_signature_is_the_prefix_and_base64_of_768_cell_bytes(tmp_path: Path) -> None:
    _product_photo(0).save(tmp_path / "photo.png")
    signature = image_hash(tmp_path / "photo.png", kind="signature")
    assert signature is not None and signature.startswith(SIGNATURE_PREFIX)
    assert _parse_signatures([signature]).shape == (1, 768)
    assert image_hashes([tmp_path / "photo.png", None], kind="signature") == [signature, None]


@pytest.mark.parametrize("content", [None, b"", b"not an image", b"\xff\xd8\xff\xe0" + b"\0" * 20])
def test_signature_is_none_for_unreadable_files(tmp_path: Path, content: bytes | None) -> None:
    path = tmp_path / "bad.jpg"
    if content is not None:
        path.write_bytes(content)
    assert image_hash(path, kind="signature") is None


def test_unknown_hash_kind_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        image_hashes([tmp_path / "x.jpg"], kind="md5")  # type: ignore[arg-type]


def test_nearly_all_reuploads_of_studio_photos_stay_in_their_clusters(
    studio, tmp_path: Path
) -> None:
    # Measured on catalogues of 3,000 listings: 99% of such copies lie within the default
    # distance; the rest are products whose edges a crop cuts (a strap running off the frame).
    catalogue, files = studio
    originals = files[files["reupload"] == ""].head(20)
    together, distances = 0, []
    for k, row in enumerate(originals.itertuples()):
        folder = tmp_path / str(k)
        folder.mkdir()
        with Image.open(catalogue.root / row.image_path) as image:
            copies = _reuploads(image.convert("RGB"), folder)
        hashes = image_hashes([catalogue.root / row.image_path, *copies], kind="signature")
        labels = near_duplicate_clusters(hashes).labels
        together += int((labels[1:] == labels[0]).sum())
        distances += [_l1(hashes[0], h) for h in hashes[1:]]
    assert together >= 0.95 * len(distances), sorted(distances)[-5:]
    assert np.median(distances) < DEFAULT_MAX_DISTANCE["signature"] / 2


def test_generated_reuploads_share_a_cluster_with_their_original(studio) -> None:
    catalogue, files = studio
    hashes = image_hashes([catalogue.root / p for p in files["image_path"]], kind="signature")
    labels = near_duplicate_clusters(hashes).labels
    per_photo = pd.Series(labels).groupby(files["photo_id"].to_numpy()).nunique()
    copied = files.loc[files["reupload"] != "", "photo_id"].unique()
    assert len(copied) >= 5
    assert (per_photo[copied] == 1).mean() >= 0.85


def test_signatures_tell_different_studio_items_apart_where_phash_does_not(studio) -> None:
    catalogue, files = studio
    paths = [catalogue.root / p for p in files["image_path"]]
    items = files["photo_id"].map(
        files[files["reupload"] == ""].drop_duplicates("photo_id").set_index("photo_id")["item_id"]
    )
    i, j = np.triu_indices(len(files), 1)
    other_item = (items.to_numpy()[i] != items.to_numpy()[j]) & items.notna().to_numpy()[i]

    phash = np.array([int(h, 16) for h in image_hashes(paths)], dtype=np.uint64)
    phash_close = np.bitwise_count(phash[i] ^ phash[j]) <= 4
    signatures = image_hashes(paths, kind="signature")
    cells = _parse_signatures(signatures)
    distance = _signature_distance(cells[i[other_item]], cells[j[other_item]])
    signature_close = distance <= DEFAULT_MAX_DISTANCE["signature"]
    assert phash_close[other_item].sum() >= 20  # ~1 in 300 pairs of different items
    assert signature_close.sum() <= 2


def test_photo_without_a_plain_backdrop_is_described_whole_and_still_matches(
    tmp_path: Path,
) -> None:
    original = _product_photo(3)  # a smooth picture filling the frame: no backdrop to find
    original.save(tmp_path / "original.png")
    original.resize((100, 100)).save(tmp_path / "copy.jpg", quality=80)
    _product_photo(4).save(tmp_path / "other.png")
    names = ("original.png", "copy.jpg", "other.png")
    hashes = image_hashes([tmp_path / n for n in names], kind="signature")
    assert near_duplicate_clusters(hashes).labels.tolist() == [0, 0, 1]


def test_clusters_do_not_chain_where_transitive_groups_do() -> None:
    # Each hash is 3 bits from the next: transitive grouping joins all four (see above); a
    # bounded cluster holds only what is within 3 bits of its first member.
    chain = [f"{v:016x}" for v in (0, 0b111, 0b111111, 0b111111111)]
    clusters = near_duplicate_clusters(chain, max_distance=3)
    assert clusters.labels.tolist() == [0, 0, 1, 1]
    assert clusters.kind == "phash" and clusters.linked == 2 and clusters.close_pairs == 3


def test_a_photo_joins_the_first_leader_it_is_close_to() -> None:
    # b is close to both leaders a and c; it was seen after a, so it joins a.
    a, c = 0, 0b11111111
    b = 0b1111
    clusters = near_duplicate_clusters([f"{v:016x}" for v in (a, c, b)], max_distance=4)
    assert clusters.labels.tolist() == [0, 1, 0]


def _brute_force_leaders(hashes: list[str | None], max_distance: int) -> list[int]:
    """Reference answer: distinct hashes in order of appearance join the first close leader."""
    leaders: list[str] = []
    leader_of: dict[str, str] = {}
    out = []
    for k, text in enumerate(hashes):
        if text is None:
            out.append(-1 - k)
            continue
        if text not in leader_of:
            close = [lead for lead in leaders if _distance(lead, text) <= max_distance]
            leader_of[text] = close[0] if close else text
            if not close:
                leaders.append(text)
        out.append(hash(leader_of[text]))
    return out


@settings(max_examples=150, deadline=None)
@given(hashes=_clustered_hashes(), max_distance=st.integers(0, 12))
def test_phash_clusters_match_a_brute_force_leader_clustering(
    hashes: list[str | None], max_distance: int
) -> None:
    fast = near_duplicate_clusters(hashes, max_distance=max_distance).labels
    assert _partition(fast.tolist()) == _partition(_brute_force_leaders(hashes, max_distance))


def test_signature_clusters_find_every_pair_a_brute_force_search_finds(studio) -> None:
    catalogue, files = studio
    hashes = image_hashes([catalogue.root / p for p in files["image_path"]], kind="signature")
    cells = _parse_signatures(list(dict.fromkeys(hashes)))
    distance = DEFAULT_MAX_DISTANCE["signature"]
    left, right, _, compared = _close_signature_pairs(cells, distance)
    expected = {
        (a, b)
        for a in range(len(cells))
        for b in np.flatnonzero(_signature_distance(cells[a], cells[a + 1 :]) <= distance) + a + 1
    }
    assert len(expected) >= 30
    assert set(zip(left.tolist(), right.tolist(), strict=True)) == expected
    assert compared < 0.2 * len(cells) * (len(cells) - 1) / 2


def test_every_cluster_member_is_within_the_distance_of_its_leader(studio) -> None:
    catalogue, files = studio
    hashes = image_hashes([catalogue.root / p for p in files["image_path"]], kind="signature")
    clusters = near_duplicate_clusters(hashes, max_distance=500)
    assert clusters.linked >= 50
    leader_of = {}
    for label, text in zip(clusters.labels.tolist(), hashes, strict=True):
        leader = leader_of.setdefault(label, text)
        assert _l1(leader, text) <= 500


def test_clusters_are_deterministic_and_identical_hashes_share_one(studio) -> None:
    catalogue, files = studio
    hashes = image_hashes([catalogue.root / p for p in files["image_path"]], kind="signature")
    doubled = hashes + hashes[:50]
    first = near_duplicate_clusters(doubled).labels
    assert first.tolist() == near_duplicate_clusters(doubled).labels.tolist()
    assert (first[len(hashes) :] == first[:50]).all()


def test_missing_hashes_are_clusters_of_their_own_for_both_kinds(tmp_path: Path) -> None:
    _product_photo(5).save(tmp_path / "p.png")
    signature = image_hash(tmp_path / "p.png", kind="signature")
    for present in (signature, "0f0f0f0f0f0f0f0f"):
        labels = near_duplicate_clusters([None, present, float("nan"), present]).labels
        assert labels.tolist() == [0, 1, 2, 1]
    assert near_duplicate_clusters([None, None]).kind is None


def test_mixed_or_malformed_hashes_are_errors_naming_the_position(tmp_path: Path) -> None:
    _product_photo(6).save(tmp_path / "p.png")
    signature = image_hash(tmp_path / "p.png", kind="signature")
    with pytest.raises(ValueError, match="one kind of hash"):
        near_duplicate_clusters(["0000000000000000", signature])
    with pytest.raises(ValueError, match=r"hashes\[1\]: expected a 16-digit hex.*'sig1:abc'"):
        near_duplicate_clusters([signature, "sig1:abc"])
    with pytest.raises(ValueError, match="max_distance must be >= 0"):
        near_duplicate_clusters(["0000000000000000"], max_distance=-1)
