"""What ``ipguard-<command> --help`` prints: groups, the keys people set, two examples.

Hydra's own ``--help`` dumps every key of the composed config (hundreds for ``ipguard-train``)
and every config group of the folder, also those a command never reads. A newcomer needs less:
the groups *this* command composes, with their options and the one chosen; the dozen keys
people actually set, with their defaults and meaning; two command lines that work. Each
command's YAML sets ``hydra.help.template: ${ipguard.help:<command>}``; the resolver below
renders it from the composed config itself, so defaults and options cannot drift from the
configs (the keys listed here are checked against them in tests/unit/test_command_help.py).
"""

from __future__ import annotations

from typing import Any

import yaml
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from ipguard.config import CONFIG_DIR, config_names

#: the keys each command's users set most, with a one-line meaning
KEYS: dict[str, tuple[tuple[str, str], ...]] = {
    "train": (
        ("data.manifest", "your listings: CSV, Parquet, JSON lines, a folder or a glob"),
        ("data.brands", "brand catalog (CSV, or a reference catalog folder)"),
        ("data.label_values", "your labels, e.g. {genuine: [ok], infringing: [fake]}"),
        ("data.on_error", "raise | quarantine (bad rows to <run>/rejects.csv)"),
        ("data.split.strategy", "group (seller + near-duplicate photo) | time | random"),
        ("data.split_file", "reuse a saved splits.csv (listing_id,split)"),
        ("data.batch_size", "listings per training step"),
        ("data.num_workers", "DataLoader worker processes"),
        ("data.augment", "none | light | standard | evasion"),
        ("model.lr", "learning rate (the image backbone's, for the fused model)"),
        ("trainer.max_epochs", "epochs"),
        ("trainer.devices", "devices per machine (trainer=gpu / ddp)"),
        ("seed", "one seed for split, init and augmentation"),
        ("ckpt_path", "resume: a checkpoint, or last (this run folder's last.ckpt)"),
        ("register", "register the model in MLflow with the alias below"),
        ("registry.alias", "alias the new version gets"),
        ("policy.target_precision", "reject lane: precision at least this on validation"),
        ("mlflow.tracking_uri", "null: $MLFLOW_TRACKING_URI, else sqlite in paths.root_dir"),
        ("paths.root_dir", "where runs, data and the MLflow store live ($IPGUARD_HOME)"),
    ),
    "evaluate": (
        ("model_uri", "models:/name@alias, models:/name/N, runs:/ID/model, a folder or .ckpt"),
        ("manifest", "labelled listings; null: the model's training manifest, else the demo"),
        ("split", "train | val | test of the training run's split; null: every row"),
        ("split_file", "a splits.csv; null: the one the model's training run logged"),
        ("label_values", "your labels; null: as training read its manifest"),
        ("on_error", "raise | quarantine; null: as training, else raise"),
        ("encoding", "CSV / JSON-lines encoding; null: as training, else UTF-8"),
        ("brands", "brand catalog, for a checkpoint with tabular inputs"),
        ("policy.reject_threshold", "with approve_threshold: replace the model's policy"),
        ("policy.approve_threshold", "with reject_threshold: replace the model's policy"),
        ("n_boot", "bootstrap resamples of the confidence intervals"),
        ("batch_size", "listings per predict call"),
        ("out_dir", "report folder; null: Hydra's run folder"),
        ("mlflow.tracking_uri", "null: $MLFLOW_TRACKING_URI, else sqlite in paths.root_dir"),
    ),
    "export": (
        ("ckpt", "a Lightning checkpoint (.ckpt) to export"),
        ("model_dir", "or an exported model folder (spec.json + weights)"),
        ("brands", "brand catalog (CSV or folder): re-export with a new brand"),
        ("manifest", "labelled listings to fit the calibrator and policy on"),
        ("split", "train | val | test rows of split_file; null: every row"),
        ("split_file", "a run's splits.csv"),
        ("label_values", "your labels, e.g. {genuine: [ok], infringing: [fake]}"),
        ("runtime", "auto (ONNX Runtime where the graph is) | torch | onnx: the pyfunc's default"),
        ("onnx", "also export the network to ONNX (parity-checked)"),
        ("registry.alias", "alias the new version gets"),
        ("policy.target_precision", "reject lane: precision at least this"),
        ("mlflow.tracking_uri", "null: $MLFLOW_TRACKING_URI, else sqlite in paths.root_dir"),
    ),
    "promote": (
        ("name", "registered model name"),
        ("manifest", "the frozen evaluation listings (labelled); or demo_holdout=true"),
        ("demo_holdout", "true: the demo hold-out set as the frozen evaluation set"),
        ("challenger_alias", "the version that may be promoted"),
        ("champion_alias", "the alias that moves when the gate passes"),
        ("rule.metric", "average_precision | auroc | recall_at_reject | precision_at_reject"),
        ("rule.tolerance", "challenger >= champion - tolerance"),
        ("label_values", "your labels, e.g. {genuine: [ok], infringing: [fake]}"),
        ("on_error", "raise | quarantine"),
        ("mlflow.tracking_uri", "null: $MLFLOW_TRACKING_URI, else sqlite in paths.root_dir"),
    ),
    "score": (
        ("model_uri", "the model that scores: models:/name@alias, runs:/, a folder"),
        ("input", "manifest file or folder of files to score (required)"),
        ("output", "folder of Parquet parts (required)"),
        ("keep", "input columns copied to the output, e.g. [seller_id]"),
        ("chunk_size", "rows per Parquet part"),
        ("batch_size", "listings per scorer call"),
        ("runtime", "auto (ONNX Runtime where the graph is) | torch | onnx"),
        ("overwrite", "true: replace the parts another run left in output"),
        ("encoding", "CSV / JSON-lines encoding; null: UTF-8"),
        ("mlflow.tracking_uri", "null: $MLFLOW_TRACKING_URI, else sqlite in paths.root_dir"),
    ),
    "feedback": (
        ("feedback", "reviewers' and appeals' outcomes file (required)"),
        ("traffic", "the scored traffic: an ipguard-score output folder or file (required)"),
        ("output", "the labelled manifest to write: .csv, .parquet, .jsonl (required)"),
        ("base", "the base training manifest: its listings are not duplicated"),
        ("holdout", "the frozen evaluation manifest: its listings never become labels"),
        ("label_values", "the reviewers' decision values -> genuine / infringing"),
        ("base_label_values", "the base manifest's own labels"),
        ("images_root", "where the traffic's image_path values resolve"),
        ("images", "link (photos linked beside output) | refer (no copies)"),
        ("on_error", "quarantine (set aside, counted) | raise"),
        ("encoding", "CSV / JSON-lines encoding; null: UTF-8"),
    ),
    "monitor": (
        ("model_uri", "the model whose reference profile the traffic is compared with"),
        ("traffic", "scored traffic: a file, folder or quoted glob (required)"),
        ("reference", "a window of traffic to compare with instead of the stored profile"),
        ("features", "input features to check; null: every one the profile holds"),
        ("output", "report folder; null: the run folder"),
        ("evidently", "also run Evidently's data-drift preset"),
        ("thresholds.score_psi", "PSI of the score distribution that is drift"),
        ("thresholds.feature_psi", "PSI of an input feature that is drift"),
        ("thresholds.slice_psi", "PSI within one market / language / category"),
        ("thresholds.lane_points", "change of a lane's share, in points"),
        ("thresholds.min_rows", "rows a slice needs on both sides to be compared"),
        ("encoding", "CSV / JSON-lines encoding; null: UTF-8"),
        ("mlflow.tracking_uri", "null: $MLFLOW_TRACKING_URI, else sqlite in paths.root_dir"),
    ),
}

#: two command lines each that work on a fresh clone (after `make train` for the others)
EXAMPLES: dict[str, tuple[str, ...]] = {
    "train": (
        "ipguard-train model=image trainer=gpu",
        "ipguard-train data=manifest data.manifest=listings.csv "
        "'data.label_values={genuine: [ok], infringing: [fake]}'",
    ),
    "evaluate": (
        "ipguard-evaluate model_uri=models:/ipguard-listing@challenger split=test",
        "ipguard-evaluate model_uri=models:/ipguard-image/3 manifest=frozen_eval.csv",
    ),
    "export": (
        "ipguard-export ckpt=runs/train/DATE/checkpoints/last.ckpt manifest=listings.csv",
        "ipguard-export model_dir=runs/train/DATE/model brands=brand_catalog_v2/",
    ),
    "promote": (
        "ipguard-promote demo_holdout=true",
        "ipguard-promote manifest=frozen_eval.csv rule.metric=auroc",
    ),
    "score": (
        "ipguard-score input=catalogue/ output=scores/",
        "ipguard-score model_uri=models:/ipguard-listing@champion input=new.csv "
        "output=scores/ keep=[seller_id]",
    ),
    "feedback": (
        "ipguard-feedback feedback=outcomes.csv traffic=scores/ output=feedback/week05.csv",
        "ipguard-feedback feedback=outcomes.csv traffic=scores/ output=feedback/week05.csv "
        "base=listings.csv holdout=frozen_eval.csv",
    ),
    "monitor": (
        "ipguard-monitor traffic=scores/",
        "ipguard-monitor model_uri=models:/ipguard-listing@champion traffic=scores/ "
        "thresholds.score_psi=0.1",
    ),
}


def render_help(command: str, root: DictConfig) -> str:
    """The help text of ``ipguard-<command>`` for its composed config ``root`` (with the
    ``hydra`` node, as Hydra holds it while it prints help)."""
    choices = _choices(root)
    lines = [f"ipguard-{command}: {_purpose(command)}", "", "== Config groups (group=option) =="]
    for group in sorted(choices):
        options = config_names(group) if (CONFIG_DIR / group).is_dir() else []
        chosen = choices[group]
        lines.append(f"  {group}={'|'.join(options)}  (now: {chosen})")
    lines += ["", "== Most used keys (key=value; default, meaning) =="]
    for key, meaning in _keys(command, root):
        lines.append(f"  {key}={_default(root, key)}")
        lines.append(f"      {meaning}")
    lines += ["", "== Examples =="]
    lines += [f"  {example}" for example in EXAMPLES.get(command, ())]
    lines += [
        "",
        "Every key of the composed config can be set the same way (no `+` needed for any "
        "documented option):",
        f"  ipguard-{command} --cfg job [overrides]   print the composed config, run nothing",
        f"  ipguard-{command} --hydra-help            Hydra's own flags (-m sweeps, --config-dir)",
        "  docs/configs.md                           every group and key",
    ]
    # Hydra fills the template with string.Template: a literal dollar must be doubled
    return "\n".join(lines).replace("$", "$$") + "\n"


def _purpose(command: str) -> str:
    return {
        "train": "train, calibrate, test and register a model",
        "evaluate": "the evaluation report of a model on labelled listings",
        "export": "package a trained model as an MLflow pyfunc and register it",
        "promote": "move @champion to the challenger if the gate passes",
        "score": "score a whole manifest into Parquet parts",
        "feedback": "reviewers' outcomes joined with scored traffic into a labelled manifest",
        "monitor": "scored traffic against the model's reference; exit 3 on drift",
    }.get(command, "see docs/configs.md")


def _choices(root: DictConfig) -> dict[str, str]:
    """The groups the command composed and the option chosen (Hydra's runtime.choices)."""
    found = OmegaConf.select(root, "hydra.runtime.choices", default=None)
    if found is None:
        return {}
    plain = OmegaConf.to_container(found, resolve=False)
    assert isinstance(plain, dict)
    return {str(k): str(v) for k, v in plain.items() if not str(k).startswith("hydra/")}


def _keys(command: str, root: DictConfig) -> list[tuple[str, str]]:
    """The curated keys present in this composition; a command without a list shows its
    top-level settings."""
    curated = KEYS.get(command)
    if curated is None:
        app = OmegaConf.to_container(root, resolve=False)
        assert isinstance(app, dict)
        curated = tuple(
            (str(k), "") for k, v in app.items() if k != "hydra" and not isinstance(v, dict)
        )
    return [(key, meaning) for key, meaning in curated if _present(root, key)]


def _present(root: DictConfig, key: str) -> bool:
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(root, parent, default=None) if parent else root
    # keys(), not `in`: `in` resolves an interpolation, which would generate the demo data
    return node is not None and OmegaConf.is_dict(node) and leaf in node.keys()  # noqa: SIM118


def _default(root: DictConfig, key: str) -> str:
    """The value as configured, unresolved: the demo's interpolations read as words."""
    parent, _, leaf = key.rpartition(".")
    node = OmegaConf.select(root, parent) if parent else root
    raw: Any = OmegaConf.to_container(node, resolve=False)[leaf]  # type: ignore[index]
    if isinstance(raw, str) and raw.startswith("${ipguard.demo_") and "catalog" in raw:
        return "<the demo's catalog for the demo listings, else none>"
    if isinstance(raw, str) and raw.startswith(("${ipguard.demo", "${ipguard.debug")):
        return "<the demo listings, generated on first use>"
    if isinstance(raw, str) and raw.startswith("${"):  # e.g. paths.root_dir: $IPGUARD_HOME
        try:
            raw = OmegaConf.select(root, key, throw_on_resolution_failure=True)
        except OmegaConfBaseException:  # only the running job can resolve it
            return raw
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return str(raw).lower()
    if isinstance(raw, (dict, list)):  # one line, as it is typed: {genuine: [ok], ...}
        return yaml.safe_dump(raw, default_flow_style=True, width=1000).strip()
    return str(raw)
