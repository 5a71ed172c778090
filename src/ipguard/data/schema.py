"""The listing-manifest contract as code.

Real listing data is dirty, and a trust-and-safety team has to be able to trust that a bad row
never crashes a run and is never dropped silently. So validation here has exactly two outcomes
per row: the row is valid (and comes back typed), or it is reported with the file, row, column
and reason, either in a :class:`ManifestError` (``on_error="raise"``) or in a rejects table
(``on_error="quarantine"``), and ``rows_in == rows_valid + rows_rejected`` always holds.

The per-value rules live in a declarative pandera schema (it reports failure cases per row,
vectorised); the rules pandera cannot express (values that do not parse, duplicates naming the
first occurrence, price without currency, image paths) are vectorised checks next to it.

The contract is strict where something depends on a value (ids, labels, prices, codes that
feed features and slices) and forgiving where nothing does: ``infringement_type`` is
descriptive, so a team's own values are kept (normalised) and counted in a warning rather than
rejected. A team's own *label* values can be mapped onto the contract's (``label_values``).
Image files can be decoded as part of validation (``decode_images``); an unusable image is
either reported and kept, as training keeps it, or set aside with its row (``unusable_images``).
"""

from __future__ import annotations

import logging
import os
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ipguard.data import io
from ipguard.data.coercion import coerce_price, coerce_text, coerce_timestamp
from ipguard.data.columns import (
    BOOKKEEPING_COLUMNS,
    BRAND_COLUMNS,
    INFRINGEMENT_TYPES,
    LABELS,
    MANIFEST_COLUMNS,
    REJECT_REASON,
    REQUIRED_BRAND_COLUMNS,
    REQUIRED_COLUMNS,
    SOURCE_FILE,
    SOURCE_ROW,
)
from ipguard.data.errors import MAX_LISTED, ManifestError, Problem, file_problem
from ipguard.data.images import scan_images
from ipguard.data.pandera_import import pa

logger = logging.getLogger(__name__)

IMAGE_DECODE_MODES = ("none", "header", "full")
"""How far validation opens image files: not at all, their header, or a full decode."""
UNUSABLE_IMAGE_ACTIONS = ("keep", "reject")
"""What validation does with a row whose image cannot be used (see ``unusable_images``)."""
# Shipped as data so validation works offline and does not depend on a locale database.
# ISO 4217: active codes, plus HRK/SLL/ZWL/ANG which were withdrawn recently but still appear in
# historical listings. XTS (testing) and XXX (no currency) are deliberately absent: a price in
# them is meaningless.
ISO_4217_CURRENCIES = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN
    BWP BYN BZD CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR
    ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD
    MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR
    PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC SYP SZL
    THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF
    XAG XAU XBA XBB XBC XBD XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 - a code table reads better as text
)
# ISO 3166-1 alpha-2: the 249 officially assigned codes.
ISO_3166_MARKETS = frozenset(
    """
    AD AE AF AG AI AL AM AO AQ AR AS AT AU AW AX AZ BA BB BD BE BF BG BH BI BJ BL BM BN BO BQ
    BR BS BT BV BW BY BZ CA CC CD CF CG CH CI CK CL CM CN CO CR CU CV CW CX CY CZ DE DJ DK DM DO
    DZ EC EE EG EH ER ES ET FI FJ FK FM FO FR GA GB GD GE GF GG GH GI GL GM GN GP GQ GR GS GT GU
    GW GY HK HM HN HR HT HU ID IE IL IM IN IO IQ IR IS IT JE JM JO JP KE KG KH KI KM KN KP KR KW
    KY KZ LA LB LC LI LK LR LS LT LU LV LY MA MC MD ME MF MG MH MK ML MM MN MO MP MQ MR MS MT MU
    MV MW MX MY MZ NA NC NE NF NG NI NL NO NP NR NU NZ OM PA PE PF PG PH PK PL PM PN PR PS PT PW
    PY QA RE RO RS RU RW SA SB SC SD SE SG SH SI SJ SK SL SM SN SO SR SS ST SV SX SY SZ TC TD TF
    TG TH TJ TK TL TM TN TO TR TT TV TW TZ UA UG UM US UY UZ VA VC VE VG VI VN VU WF WS YE YT ZA
    ZM ZW
    """.split()  # noqa: SIM905 - a code table reads better as text
)
# ISO 639-1: the 183 current two-letter codes plus the deprecated "bh" (Bihari) found in old data.
ISO_639_1_LANGUAGES = frozenset(
    """
    aa ab ae af ak am an ar as av ay az ba be bg bh bi bm bn bo br bs ca ce ch co cr cs cu cv cy
    da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu
    hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb
    lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om
    or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw
    ta te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
    """.split()  # noqa: SIM905 - a code table reads better as text
)
# Codes people commonly write instead of the ISO one; used only to make messages helpful.
_MARKET_ALIASES = {"UK": "GB", "EL": "GR"}


@dataclass
class ValidationResult:
    """Typed valid rows, rejected rows with their reasons, and the counts that must add up.

    ``image_check`` says how far image files were opened (one of :data:`IMAGE_DECODE_MODES`);
    ``images_checked`` counts the rows whose image file was opened that far, and
    ``images_unusable`` the rows among them whose image cannot be used, per flag of
    :data:`ipguard.data.images.IMAGE_FLAGS` (whatever else is wrong with the row; with
    ``unusable_images="reject"`` these rows are among the rejected ones).
    ``other_infringement_types`` counts values outside :data:`INFRINGEMENT_TYPES`, which are
    kept.
    """

    valid: pd.DataFrame
    rejects: pd.DataFrame
    rows_in: int
    rows_valid: int
    rows_rejected: int
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    image_check: str = "none"
    images_checked: int = 0
    images_unusable: dict[str, int] = field(default_factory=dict)
    other_infringement_types: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.rows_in != self.rows_valid + self.rows_rejected:
            raise ValueError(
                f"row accounting broken: rows_in={self.rows_in} != rows_valid={self.rows_valid}"
                f" + rows_rejected={self.rows_rejected}"
            )

    @property
    def images_unusable_total(self) -> int:
        return sum(self.images_unusable.values())

    def summary(self) -> str:
        """The one line scripts parse; ``images_unusable=N`` joins it when N > 0."""
        line = (
            f"rows_in={self.rows_in} rows_valid={self.rows_valid} "
            f"rows_rejected={self.rows_rejected}"
        )
        if self.images_unusable_total:
            line += f" images_unusable={self.images_unusable_total}"
        return line


# --- collecting row problems vectorised -------------------------------------------------------


class _RowProblems:
    """Problems found per row, kept columnar so 200k bad rows stay cheap."""

    def __init__(self) -> None:
        self._parts: list[pd.DataFrame] = []

    def add(self, positions: np.ndarray, column: str, reasons: Iterable[str]) -> None:
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size:
            self._parts.append(
                pd.DataFrame({"pos": positions, "column": column, "reason": list(reasons)})
            )

    def add_mask(
        self, mask: pd.Series, column: str, reason: Callable[[object], str], raw: pd.Series
    ) -> None:
        positions = np.flatnonzero(mask.to_numpy(dtype=bool))
        self.add(positions, column, (reason(v) for v in raw.iloc[positions].to_numpy(dtype=object)))

    def frame(self, column_order: Iterable[str]) -> pd.DataFrame:
        if not self._parts:
            return pd.DataFrame(
                {
                    "pos": np.array([], dtype=np.int64),
                    "column": pd.Series([], dtype=object),
                    "reason": pd.Series([], dtype=object),
                }
            )
        found = pd.concat(self._parts, ignore_index=True)
        rank = {c: i for i, c in enumerate(column_order)}
        found["rank"] = found["column"].map(rank).fillna(len(rank))
        return found.sort_values(["pos", "rank"], kind="stable").drop(columns="rank")


def _shown(value: object) -> str:
    """A value as it should appear inside a message: quoted, so stray spaces are visible."""
    if isinstance(value, str):
        return repr(value if len(value) <= 80 else value[:77] + "...")
    return repr(value)


def _code_reason(
    kind: str, expected: str, allowed: frozenset[str], fix: Callable[[str], str]
) -> Callable[[object], str]:
    def reason(value: object) -> str:
        text = str(value)
        message = f"unknown {kind} {_shown(value)}; expected {expected}"
        suggestion = fix(text)
        if suggestion != text and suggestion in allowed:
            message += f" (did you mean {suggestion!r}?)"
        return message

    return reason


def _allowed_reason(kind: str, allowed: tuple[str, ...]) -> Callable[[object], str]:
    listed = ", ".join(allowed)

    def reason(value: object) -> str:
        message = f"unknown {kind} {_shown(value)}; expected one of: {listed}"
        stripped = str(value).strip().lower()
        if stripped != str(value) and stripped in allowed:
            message += f" (did you mean {stripped!r}?)"
        return message

    return reason


_REASONS: dict[str, Callable[[object], str]] = {
    "label": _allowed_reason("label", LABELS),
    "infringement_type": _allowed_reason("infringement_type", INFRINGEMENT_TYPES),
    "currency": _code_reason(
        "currency",
        "an ISO 4217 code in upper case such as 'USD'",
        ISO_4217_CURRENCIES,
        lambda v: v.strip().upper(),
    ),
    "market": _code_reason(
        "market",
        "an ISO 3166-1 alpha-2 country code in upper case such as 'US'",
        ISO_3166_MARKETS,
        lambda v: _MARKET_ALIASES.get(v.strip().upper(), v.strip().upper()),
    ),
    "language": _code_reason(
        "language",
        "an ISO 639-1 two-letter code in lower case such as 'en'",
        ISO_639_1_LANGUAGES,
        lambda v: v.strip().lower().split("-")[0].split("_")[0],
    ),
    "price_negative": lambda v: f"negative price ({v}); expected >= 0",
    "reference_price_negative": lambda v: f"negative reference_price ({v}); expected >= 0",
}


def label_mapping(
    label_values: Mapping[str, str | Iterable[str]] | None,
) -> dict[str, str]:
    """A team's own label values -> contract labels, keyed stripped and case-folded.

    ``{"genuine": ["ok", "legit"], "infringing": ["fake"]}`` lets a manifest labelled ``ok`` /
    ``fake`` train as is. The contract's own ``genuine`` / ``infringing`` stay valid. Raises
    ``ValueError`` naming ``label_values`` for an unknown label, a blank value, or a value
    given for both labels (which would make the label depend on the order of a dict).
    """
    if label_values is None:
        return {}
    if not isinstance(label_values, Mapping):
        raise ValueError(
            "label_values: expected a mapping of label -> list of values, such as "
            f"{{'genuine': ['ok'], 'infringing': ['fake']}}; found {type(label_values).__name__}"
        )
    mapping: dict[str, str] = {}
    for label, values in label_values.items():
        if label not in LABELS:
            raise ValueError(
                f"label_values: unknown label {label!r}; expected keys from {', '.join(LABELS)}"
            )
        for value in [values] if isinstance(values, str) else list(values or []):
            if not isinstance(value, str) or not value.strip():
                raise ValueError(
                    f"label_values.{label}: expected non-blank text values, found {value!r}"
                )
            key = value.strip().casefold()
            other = next((x for x in LABELS if x != label), label)
            if mapping.get(key, label) != label or key == other:
                raise ValueError(
                    f"label_values: {value!r} is given for both {label!r} and {other!r}; "
                    "expected each value to mean one label"
                )
            mapping[key] = label
    return mapping


def _label_reason(mapping: Mapping[str, str]) -> Callable[[object], str]:
    """The unknown-label message once a team's values are mapped: lists those values too."""
    listed = "; ".join(
        f"{label}: {', '.join(sorted(k for k, v in mapping.items() if v == label))}"
        for label in LABELS
        if label in mapping.values()
    )
    plain = _allowed_reason("label", LABELS)

    def reason(value: object) -> str:
        return f"{plain(value)}, or a value of label_values ({listed})"

    return reason


def _missing_reason(column: str) -> str:
    if column == "label":
        return f"missing label; expected one of: {', '.join(LABELS)}"
    return f"missing required value; expected a non-blank {column}"


# --- the declarative part --------------------------------------------------------------------


def _text_column(*checks: pa.Check, required: bool = False) -> pa.Column:
    return pa.Column(str, list(checks), nullable=not required)


@lru_cache(maxsize=2)
def manifest_schema(require_label: bool = True) -> pa.DataFrameSchema:
    """The pandera schema for a *typed* manifest (after :func:`coerce_text` and friends)."""
    return pa.DataFrameSchema(
        {
            "listing_id": _text_column(required=True),
            "title": _text_column(required=True),
            "description": _text_column(),
            "brand": _text_column(),
            "category": _text_column(),
            "market": _text_column(pa.Check.isin(ISO_3166_MARKETS, error="market")),
            "language": _text_column(pa.Check.isin(ISO_639_1_LANGUAGES, error="language")),
            "price": pa.Column(float, pa.Check.ge(0, error="price_negative"), nullable=True),
            "currency": _text_column(pa.Check.isin(ISO_4217_CURRENCIES, error="currency")),
            "seller_id": _text_column(),
            "image_path": _text_column(),
            "listed_at": pa.Column(nullable=True),
            "label": _text_column(pa.Check.isin(LABELS, error="label"), required=require_label),
            # descriptive only: any text is kept (see _other_infringement_types)
            "infringement_type": _text_column(),
        },
        strict=False,
        name="listing manifest",
    )


@lru_cache(maxsize=1)
def brand_schema() -> pa.DataFrameSchema:
    """The pandera schema for a typed brand catalog."""
    return pa.DataFrameSchema(
        {
            "brand": _text_column(required=True),
            "reference_price": pa.Column(
                float, pa.Check.ge(0, error="reference_price_negative"), nullable=True
            ),
            "currency": _text_column(pa.Check.isin(ISO_4217_CURRENCIES, error="currency")),
        },
        strict=False,
        name="brand catalog",
    )


def _schema_problems(
    schema: pa.DataFrameSchema,
    typed: pd.DataFrame,
    raw: pd.DataFrame,
    found: _RowProblems,
    reasons: Mapping[str, Callable[[object], str]] | None = None,
) -> list[str]:
    """Run pandera lazily and turn its failure cases into row problems.

    Returns the descriptions of failures that are not about a row (so the caller can raise).
    ``reasons`` overrides the messages of :data:`_REASONS` for this call.
    """
    known = {**_REASONS, **(reasons or {})}
    try:
        schema.validate(typed, lazy=True)
        return []
    except pa.errors.SchemaErrors as err:
        cases = err.failure_cases
    frame_level: list[str] = []
    row_cases = cases[cases["index"].notna()]
    for (column, check), group in row_cases.groupby(["column", "check"], sort=False):
        positions = group["index"].to_numpy(dtype=np.int64)
        raw_values = (
            raw[column].iloc[positions].to_numpy(dtype=object)
            if column in raw
            else group["failure_case"].to_numpy()
        )
        if check == "not_nullable":
            reasons: Iterable[str] = [_missing_reason(column)] * len(positions)
        elif check in known:
            reasons = [known[check](v) for v in group["failure_case"].to_numpy()]
        else:
            reasons = [f"failed check {check} with value {_shown(v)}" for v in raw_values]
        found.add(positions, column, reasons)
    for _, case in cases[cases["index"].isna()].iterrows():
        frame_level.append(f"column {case['column']!r}: failed check {case['check']}")
    return frame_level


# --- the checks pandera cannot express -------------------------------------------------------


def _duplicate_problems(
    ids: pd.Series,
    files: np.ndarray,
    rows: np.ndarray,
    found: _RowProblems,
    column: str = "listing_id",
) -> None:
    present = ids.notna()
    duplicate = (ids.duplicated(keep="first") & present).to_numpy(dtype=bool)
    if not duplicate.any():
        return
    first = ids[present].drop_duplicates(keep="first")
    first_pos = pd.Series(first.index.to_numpy(), index=first.to_numpy())
    positions = np.flatnonzero(duplicate)
    dup_ids = ids.iloc[positions].to_numpy(dtype=object)
    earlier = first_pos.loc[dup_ids].to_numpy()
    reasons = []
    for pos, value, prev in zip(positions, dup_ids, earlier, strict=True):
        where = (
            f"row {rows[prev]}" if files[prev] == files[pos] else f"{files[prev]} row {rows[prev]}"
        )
        reasons.append(f"duplicate {column} {_shown(value)}; first seen at {where}")
    found.add(positions, column, reasons)


_DRIVE = re.compile(r"^[A-Za-z]:")


def _path_escapes(path: str, column: str = "image_path") -> str | None:
    """Why an image or video path may not be used, judged on its text alone (or ``None``).

    Manifests travel between Windows and POSIX machines, so both spellings of absolute
    (``/x``, ``\\x``, ``C:x``) and of parent (``..\\x``) count wherever this runs.
    """
    relative = "expected a path relative to the manifest folder"
    if path.startswith(("/", "\\")) or os.path.isabs(path):
        return f"{column} {_shown(path)} is absolute; {relative}"
    if _DRIVE.match(path):
        return f"{column} {_shown(path)} is absolute (it names a drive); {relative}"
    if ".." in path:
        normal = os.path.normpath(path.replace("\\", "/"))
        if normal == ".." or normal.startswith("../"):
            return f"{column} {_shown(path)} escapes the manifest folder; expected a path inside it"
    return None


def _image_problems(
    paths: pd.Series, root: Path, check_images: bool, found: _RowProblems
) -> dict[str, str | None]:
    """Problems of image paths (escaping, absolute, not found); returns the verdict per path."""
    present = paths.dropna()
    verdicts: dict[str, str | None] = {}
    if present.empty:
        return verdicts
    for path in present.unique():
        reason = _path_escapes(path)
        if reason is None and check_images and not os.path.isfile(os.path.join(root, path)):
            reason = f"image file {_shown(path)} not found (looked for {os.path.join(root, path)})"
        verdicts[path] = reason
    reasons = present.map(verdicts)
    bad = reasons.notna()
    found.add(present.index[bad].to_numpy(), "image_path", reasons[bad].tolist())
    return verdicts


@dataclass
class _ImageFindings:
    """Rows whose image file opened badly: positions, flags and reasons, kept columnar."""

    mode: str = "none"
    checked: int = 0
    positions: np.ndarray = field(default_factory=lambda: np.array([], dtype=np.int64))
    flags: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return dict(sorted(Counter(self.flags).items()))


def _unusable_images(
    paths: pd.Series,
    root: Path,
    verdicts: Mapping[str, str | None],
    mode: str,
    workers: int | None,
) -> _ImageFindings:
    """Open every image whose path passed the path checks, each distinct file once, in threads."""
    if mode == "none":
        return _ImageFindings()
    usable_paths = [path for path, verdict in verdicts.items() if verdict is None]
    checks = scan_images(
        [os.path.join(root, path) for path in usable_paths], decode=mode == "full", workers=workers
    )
    by_path = dict(zip(usable_paths, checks, strict=True))
    present = paths.dropna()
    present = present[present.map(lambda p: p in by_path).astype(bool)]
    bad = present[present.map(lambda p: not by_path[p].ok).astype(bool)]
    return _ImageFindings(
        mode=mode,
        checked=len(present),
        positions=bad.index.to_numpy(dtype=np.int64),
        flags=[str(by_path[p].flag) for p in bad],
        reasons=[f"image unusable ({by_path[p].flag}): {by_path[p].detail}" for p in bad],
    )


def _other_infringement_types(
    values: pd.Series, where: str
) -> tuple[dict[str, int], list[Problem]]:
    """Values outside the documented four, counted: kept, but a typo should still be seen."""
    outside = values[values.notna() & ~values.isin(INFRINGEMENT_TYPES)]
    counts = {str(k): int(v) for k, v in outside.value_counts(sort=True).items()}
    if not counts:
        return counts, []
    shown = ", ".join(f"{k} ({v})" for k, v in list(counts.items())[:MAX_LISTED])
    if len(counts) > MAX_LISTED:
        shown += f", ... and {len(counts) - MAX_LISTED} more values"
    reason = (
        f"{len(outside)} rows with values outside {', '.join(INFRINGEMENT_TYPES)}: {shown}; "
        "kept as written (stripped, lower case), as nothing trains on this column"
    )
    logger.warning("%s: infringement_type: %s", where, reason)
    return counts, [file_problem(where, reason, column="infringement_type")]


# --- provenance --------------------------------------------------------------------------------


def _provenance(frame: pd.DataFrame, source: str | None) -> tuple[np.ndarray, np.ndarray]:
    """Where each row came from: (file names, 1-based row numbers), made up if not recorded."""
    n = len(frame)
    fallback = source or "<dataframe>"
    if SOURCE_FILE in frame:
        files = frame[SOURCE_FILE].astype(object).where(frame[SOURCE_FILE].notna(), fallback)
        files = files.astype(str).to_numpy(dtype=object)
    else:
        files = np.full(n, fallback, dtype=object)
    positions = np.arange(1, n + 1, dtype=np.int64)
    if SOURCE_ROW in frame:
        rows = pd.to_numeric(frame[SOURCE_ROW], errors="coerce")
        rows = rows.where(rows.notna(), pd.Series(positions, index=frame.index))
        rows = rows.to_numpy(dtype=np.int64)
    else:
        rows = positions
    return files, rows


def _frame_source(files: np.ndarray, source: str | None) -> str:
    unique = pd.unique(files) if len(files) else np.array([source or "<dataframe>"])
    if len(unique) == 1:
        return str(unique[0])
    return f"{unique[0]} (and {len(unique) - 1} more files)"


def _check_columns(frame: pd.DataFrame, required: Iterable[str], where: str) -> None:
    """File-level problems: these make every row unusable, so they are raised in any mode."""
    columns = [str(c) for c in frame.columns]
    problems = [
        file_problem(where, "column appears more than once; expected unique names", column=name)
        for name in sorted({c for c in columns if columns.count(c) > 1})
    ]
    for name in required:
        if name in columns:
            continue
        reason = f"missing required column {name!r}; found columns {columns}"
        close = [c for c in columns if c.strip().lower() == name]
        if close:
            reason += f" (did you mean {close[0]!r}? names are exact and case-sensitive)"
        problems.append(file_problem(where, reason, column=name))
    if problems:
        raise ManifestError(problems)


# --- validation ----------------------------------------------------------------------------------


def _typed_manifest(
    raw: pd.DataFrame, found: _RowProblems, labels: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """Contract columns typed (absent optional ones added as missing), extra columns kept.

    ``labels`` maps a team's own label values (stripped, case-folded) to contract labels;
    ``infringement_type`` is normalised (stripped, lower case) since any value is kept.
    """
    n = len(raw)
    columns: dict[str, pd.Series] = {}
    for name in MANIFEST_COLUMNS:
        if name not in raw:
            columns[name] = _absent(name, n)
            continue
        values = raw[name]
        if name == "price":
            typed, bad = coerce_price(values)
            found.add_mask(
                bad,
                name,
                lambda v: (
                    f"price {_shown(v)} is not a finite number; expected a plain decimal "
                    "such as 12.50 (currency goes in 'currency')"
                ),
                values,
            )
        elif name == "listed_at":
            typed = _typed_timestamp(values, name, found)
        else:
            typed = _typed_text(values, name, found)
            if name == "infringement_type":
                typed = typed.str.strip().str.lower()
            elif name == "label" and labels:
                mapped = typed.str.strip().str.casefold().map(labels)
                typed = mapped.where(mapped.notna(), typed)
        columns[name] = typed.reset_index(drop=True)
    return _with_extras(raw, columns, MANIFEST_COLUMNS)


def typed_columns(
    raw: pd.DataFrame,
    columns: Iterable[str],
    found: _RowProblems,
    *,
    timestamps: Iterable[str] = (),
) -> pd.DataFrame:
    """A contract's columns typed as text or UTC timestamps (absent ones all missing), each
    value that cannot be typed a row problem of its column, and the extra columns kept as read
    (other than the bookkeeping ones); for contracts beside the manifest's
    (feedback files) that need no other coercion."""
    n, stamped, columns = len(raw), set(timestamps), list(columns)
    typed: dict[str, pd.Series] = {}
    for name in columns:
        values = raw[name] if name in raw else pd.Series([None] * n, dtype=object)
        column = _typed_timestamp if name in stamped else _typed_text
        typed[name] = column(values, name, found).reset_index(drop=True)
    return _with_extras(raw, typed, columns)


def _typed_text(values: pd.Series, name: str, found: _RowProblems) -> pd.Series:
    typed, bad = coerce_text(values)
    found.add_mask(bad, name, lambda v: f"expected text, found a {type(v).__name__} value", values)
    return typed


def _typed_timestamp(values: pd.Series, name: str, found: _RowProblems) -> pd.Series:
    typed, bad = coerce_timestamp(values)
    found.add_mask(
        bad,
        name,
        lambda v: (
            f"{name} {_shown(v)} is not a parseable timestamp; expected ISO 8601 such as "
            "2024-03-01T12:00:00Z"
        ),
        values,
    )
    return typed


def _with_extras(
    raw: pd.DataFrame, typed: dict[str, pd.Series], contract: Iterable[str]
) -> pd.DataFrame:
    """``typed`` and then ``raw``'s other columns as read, bookkeeping columns left out."""
    skip = {*contract, *BOOKKEEPING_COLUMNS}
    columns = dict(typed)
    for name in raw.columns:
        if name not in skip:
            columns[name] = raw[name].reset_index(drop=True)
    return pd.DataFrame(columns, index=pd.RangeIndex(len(raw)))


LineFinder = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""Maps (file names, row numbers) to the physical line of each row, -1 where unknown."""


def _absent(name: str, n: int) -> pd.Series:
    """An all-missing contract column, typed like a present one would be."""
    if name == "price":
        return pd.Series(np.full(n, np.nan), dtype="float64")
    if name == "listed_at":
        return pd.Series(pd.NaT, index=pd.RangeIndex(n), dtype="datetime64[us, UTC]")
    return pd.Series([None] * n, dtype="str")


ImageDecode = Literal["none", "header", "full"]
UnusableImages = Literal["keep", "reject"]


def validate_manifest(
    df: pd.DataFrame,
    *,
    root: str | Path,
    on_error: Literal["raise", "quarantine"] = "raise",
    require_label: bool = True,
    check_images: bool = True,
    source: str | None = None,
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    decode_images: ImageDecode = "none",
    unusable_images: UnusableImages = "keep",
    image_workers: int | None = None,
) -> ValidationResult:
    """Check every row against the manifest contract and return typed valid rows.

    ``root`` is the folder relative ``image_path`` values resolve against. ``source`` names the
    data in messages when ``df`` carries no ``_source_file`` column. Missing required columns
    are raised in either mode; row problems are raised all together (``"raise"``) or returned
    as rejects (``"quarantine"``).

    ``label_values`` maps a team's own label values onto the contract's (:func:`label_mapping`).
    ``decode_images`` opens every image file whose path is valid: ``"full"`` decodes it as
    training would, ``"header"`` reads only its header (cheap; blind to truncated pixel data),
    ``"none"`` (default) leaves files to ``check_images``' existence check. An unusable image
    is then a warning and its row is kept (``unusable_images="keep"``: it is scored without
    its image, as in training) or a row problem (``"reject"``). ``image_workers`` threads open
    the files (``None``: up to 8).
    """
    return _validate(
        df,
        root=Path(root),
        on_error=on_error,
        require_label=require_label,
        check_images=check_images,
        source=source,
        find_lines=None,
        label_values=label_values,
        decode_images=decode_images,
        unusable_images=unusable_images,
        image_workers=image_workers,
    )


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, allowed))}, got {value!r}")


def _validate(
    df: pd.DataFrame,
    *,
    root: Path,
    on_error: str,
    require_label: bool,
    check_images: bool,
    source: str | None,
    find_lines: LineFinder | None,
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    decode_images: str = "none",
    unusable_images: str = "keep",
    image_workers: int | None = None,
) -> ValidationResult:
    if on_error not in ("raise", "quarantine"):
        raise ValueError(f"on_error must be 'raise' or 'quarantine', got {on_error!r}")
    _check_choice("decode_images", decode_images, IMAGE_DECODE_MODES)
    _check_choice("unusable_images", unusable_images, UNUSABLE_IMAGE_ACTIONS)
    labels = label_mapping(label_values)
    raw = df.reset_index(drop=True)
    files, rows = _provenance(raw, source)
    where = _frame_source(files, source)
    required = REQUIRED_COLUMNS + (("label",) if require_label else ())
    _check_columns(raw, required, where)

    found = _RowProblems()
    typed = _typed_manifest(raw, found, labels)
    reasons = {"label": _label_reason(labels)} if labels else None
    frame_level = _schema_problems(manifest_schema(require_label), typed, raw, found, reasons)
    if frame_level:
        raise ManifestError([file_problem(where, text) for text in frame_level])
    _duplicate_problems(typed["listing_id"], files, rows, found)
    orphan_price = typed["price"].notna() & typed["currency"].isna()
    found.add_mask(
        orphan_price,
        "currency",
        lambda v: f"price {v} given without currency; expected an ISO 4217 code such as 'USD'",
        raw["price"] if "price" in raw else typed["price"],
    )
    verdicts = _image_problems(typed["image_path"], root, check_images, found)
    images = _unusable_images(typed["image_path"], root, verdicts, decode_images, image_workers)
    image_warnings: list[Problem] = []
    if unusable_images == "reject":
        found.add(
            images.positions,
            "image_path",
            [f"{r}; set aside (unusable_images=reject)" for r in images.reasons],
        )
    elif len(images.positions):
        kept = _RowProblems()
        kept.add(
            images.positions,
            "image_path",
            [f"{r}; kept, scored without its image (unusable_images=keep)" for r in images.reasons],
        )
        image_warnings = _problem_list(kept.frame(MANIFEST_COLUMNS), raw, files, rows, find_lines)

    valid, rejects, problems = split_rows(
        raw, typed, files, rows, found.frame(MANIFEST_COLUMNS), find_lines, on_error=on_error
    )
    other_types, type_warnings = _other_infringement_types(typed["infringement_type"], where)
    return ValidationResult(
        valid=valid,
        rejects=rejects,
        rows_in=len(raw),
        rows_valid=len(valid),
        rows_rejected=len(rejects),
        problems=problems,
        warnings=_extra_column_warnings(raw, where) + type_warnings + image_warnings,
        image_check=images.mode,
        images_checked=images.checked,
        images_unusable=images.counts(),
        other_infringement_types=other_types,
    )


def split_rows(
    raw: pd.DataFrame,
    typed: pd.DataFrame,
    files: np.ndarray,
    rows: np.ndarray,
    problem_rows: pd.DataFrame,
    find_lines: LineFinder | None,
    *,
    on_error: str,
) -> tuple[pd.DataFrame, pd.DataFrame, list[Problem]]:
    """The valid rows (typed, each with its source file and row) and the rejects (as written,
    with their reasons), and the problems as records; with ``on_error="raise"`` any problem
    raises :class:`ManifestError` instead. Listing and video manifests end alike."""
    problems = _problem_list(problem_rows, raw, files, rows, find_lines)
    if problems and on_error == "raise":
        raise ManifestError(problems)
    typed[SOURCE_FILE] = pd.Series(files, dtype="str")
    typed[SOURCE_ROW] = rows
    rejected = np.zeros(len(raw), dtype=bool)
    rejected[problem_rows["pos"].to_numpy(dtype=np.int64)] = True
    rejects = _rejects_frame(raw, files, rows, rejected, problem_rows)
    return typed.loc[~rejected].reset_index(drop=True), rejects, problems


def _problem_list(
    problem_rows: pd.DataFrame,
    raw: pd.DataFrame,
    files: np.ndarray,
    rows: np.ndarray,
    find_lines: LineFinder | None = None,
) -> list[Problem]:
    """Row problems as records, with each offending value as it was written in the input."""
    positions = problem_rows["pos"].to_numpy(dtype=np.int64)
    columns = problem_rows["column"].to_numpy(dtype=object)
    values = np.full(len(positions), None, dtype=object)
    for column, index in problem_rows.groupby("column", sort=False).indices.items():
        if column in raw:
            picked = raw[column].iloc[positions[index]].to_numpy(dtype=object)
            values[index] = [None if _is_missing(v) else str(v) for v in picked]
    if find_lines is not None and len(positions):
        found_lines = find_lines(files[positions], rows[positions])
        lines = [None if line < 0 else int(line) for line in found_lines]
    else:
        lines = [None] * len(positions)
    return [
        Problem(str(files[pos]), int(rows[pos]), column, value, reason, line)
        for pos, column, value, reason, line in zip(
            positions, columns, values, problem_rows["reason"].to_numpy(), lines, strict=True
        )
    ]


def _is_missing(value: object) -> bool:
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def _rejects_frame(
    raw: pd.DataFrame,
    files: np.ndarray,
    rows: np.ndarray,
    rejected: np.ndarray,
    problem_rows: pd.DataFrame,
) -> pd.DataFrame:
    """Rejected rows with their original values, provenance and every reason, one row each."""
    data = raw.drop(columns=[c for c in BOOKKEEPING_COLUMNS if c in raw])
    rejects = data.loc[rejected].reset_index(drop=True)
    rejects[SOURCE_FILE] = pd.Series(files[rejected], dtype="str")
    rejects[SOURCE_ROW] = rows[rejected]
    texts = [
        f"column {column!r}: {reason}"
        for column, reason in zip(problem_rows["column"], problem_rows["reason"], strict=True)
    ]
    positions = problem_rows["pos"].to_numpy(dtype=np.int64)  # sorted by _RowProblems.frame
    starts = np.flatnonzero(np.r_[True, positions[1:] != positions[:-1]]) if texts else []
    ends = [*starts[1:], len(texts)] if texts else []
    joined = ["; ".join(texts[a:b]) for a, b in zip(starts, ends, strict=True)]
    rejects[REJECT_REASON] = pd.Series(joined, dtype="str")
    return rejects


def _extra_column_warnings(raw: pd.DataFrame, where: str) -> list[Problem]:
    known = set(MANIFEST_COLUMNS) | set(BOOKKEEPING_COLUMNS) | {REJECT_REASON}
    extras = [str(c) for c in raw.columns if c not in known]
    if extras:
        logger.warning("%s: columns %s are not in the manifest contract; kept as is", where, extras)
    return [
        file_problem(where, "not a manifest contract column; kept as is", column=name)
        for name in extras
    ]


# --- reading + validating in one step ---------------------------------------------------------


def load_manifest(
    path: str | Path,
    *,
    on_error: Literal["raise", "quarantine"] = "raise",
    require_label: bool = True,
    check_images: bool = True,
    rejects_path: str | Path | None = None,
    label_values: Mapping[str, str | Iterable[str]] | None = None,
    decode_images: ImageDecode = "none",
    unusable_images: UnusableImages = "keep",
    image_workers: int | None = None,
    encoding: str | None = None,
) -> ValidationResult:
    """Read a manifest, validate it, and write the rejects (always, even if none) when asked.

    Messages carry the physical line of each bad row for CSV and JSON-lines files.
    ``encoding`` is that of CSV and JSON-lines files (``None``: UTF-8, see
    :func:`ipguard.data.io.read_manifest`); the other options are :func:`validate_manifest`'s.
    """
    _check_choice("decode_images", decode_images, IMAGE_DECODE_MODES)
    _check_choice("unusable_images", unusable_images, UNUSABLE_IMAGE_ACTIONS)
    label_mapping(label_values)  # a bad mapping is a config error: say so before reading
    frame = io.read_manifest(path, encoding=encoding)
    root = io.manifest_root(path)
    result = _validate(
        frame,
        root=root,
        on_error=on_error,
        require_label=require_label,
        check_images=check_images,
        source=None,
        find_lines=_line_finder(root, frame[SOURCE_FILE].value_counts().to_dict(), encoding),
        label_values=label_values,
        decode_images=decode_images,
        unusable_images=unusable_images,
        image_workers=image_workers,
    )
    if rejects_path is not None:
        io.write_table(result.rejects, rejects_path, default_format="csv")
    return result


def _line_finder(
    root: Path, rows_per_file: dict[str, int], encoding: str | None = None
) -> LineFinder:
    """Physical lines for rows, read only when there are problems to place.

    A file's line map is used only if it has exactly as many records as rows were read, so a
    disagreement between the two parsers can never put a wrong line into a message.
    """

    def find(files: np.ndarray, rows: np.ndarray) -> np.ndarray:
        lines = np.full(len(rows), -1, dtype=np.int64)
        for name in pd.unique(files):
            known = io.record_lines(root / str(name), encoding=encoding)
            if known is None or len(known) != rows_per_file.get(name, -1):
                continue
            mine = np.flatnonzero(files == name)
            wanted = rows[mine]
            inside = (wanted >= 1) & (wanted <= len(known))
            lines[mine[inside]] = known[wanted[inside] - 1]
        return lines

    return find


# --- brand catalog ---------------------------------------------------------------------------


def _duplicate_brand_problems(typed: pd.DataFrame, rows: np.ndarray, found: _RowProblems) -> None:
    """A second row for the same (brand, currency) pair, naming the row it repeats."""
    key = typed[["brand", "currency"]].astype(object).where(typed[["brand", "currency"]].notna())
    named = typed["brand"].notna().to_numpy(dtype=bool)
    duplicate = key.duplicated(keep="first").to_numpy(dtype=bool) & named
    if not duplicate.any():
        return
    first_row: dict[tuple[object, object], int] = {}
    for pos in np.flatnonzero(named):
        first_row.setdefault(_brand_key(key, pos), int(rows[pos]))
    positions = np.flatnonzero(duplicate)
    reasons = []
    for pos in positions:
        brand, currency = _brand_key(key, pos)
        same = "with no currency either" if currency is None else f"for currency {currency!r}"
        reasons.append(
            f"duplicate brand {_shown(brand)}; first seen at row {first_row[(brand, currency)]} "
            f"{same}; expected one reference price per brand and currency"
        )
    found.add(positions, "brand", reasons)


def _brand_key(key: pd.DataFrame, pos: int) -> tuple[object, object]:
    brand, currency = key.iloc[pos]
    return brand, None if _is_missing(currency) else currency


def validate_brands(df: pd.DataFrame, *, source: str = "brands.csv") -> pd.DataFrame:
    """Check a brand catalog and return it typed; raise :class:`ManifestError` on any problem.

    A catalog holds one reference price per brand *and currency*: a marketplace in several
    markets lists a brand with a row per currency (``Zentaro,160,USD`` and
    ``Zentaro,2700,MXN``), so ``(brand, currency)`` is the unique key. ``brand`` is required;
    ``reference_price`` is optional (a brand with no known price still feeds brand-similarity
    features) but, when given, must be a finite number >= 0 with an ISO 4217 ``currency``.
    Other columns (reference images ...) are kept.
    """
    raw = df.reset_index(drop=True)
    files, rows = _provenance(raw, source)
    _check_columns(raw, REQUIRED_BRAND_COLUMNS, _frame_source(files, source))
    found = _RowProblems()
    n = len(raw)
    columns: dict[str, pd.Series] = {}
    for name in BRAND_COLUMNS:
        values = raw[name] if name in raw else pd.Series([None] * n, dtype=object)
        if name == "reference_price":
            typed, bad = coerce_price(values)
            found.add_mask(
                bad,
                name,
                lambda v: (
                    f"reference_price {_shown(v)} is not a finite number; "
                    "expected a plain decimal such as 49.99"
                ),
                values,
            )
        else:
            typed, bad = coerce_text(values)
            found.add_mask(
                bad, name, lambda v: f"expected text, found a {type(v).__name__} value", values
            )
        columns[name] = typed.reset_index(drop=True)
    for name in raw.columns:
        if name not in BRAND_COLUMNS:
            columns[name] = raw[name]
    typed_frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
    frame_level = _schema_problems(brand_schema(), typed_frame, raw, found)
    _duplicate_brand_problems(typed_frame, rows, found)
    orphan = typed_frame["reference_price"].notna() & typed_frame["currency"].isna()
    found.add_mask(
        orphan,
        "currency",
        lambda v: f"reference_price {v} given without currency; expected an ISO 4217 code",
        typed_frame["reference_price"],
    )
    where = _frame_source(files, source)
    problems = [file_problem(where, text) for text in frame_level]
    problem_rows = found.frame(BRAND_COLUMNS)
    problems += _problem_list(problem_rows, raw, files, rows)
    if problems:
        raise ManifestError(problems)
    return typed_frame
