"""The settings several jobs share live in one config group each (logger, imbalance,
calibration, policy), so a target set once means the same in every job, and the command line
keeps the keys it always had (``imbalance=none``, ``calibration.method=isotonic``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from hydra.errors import MissingConfigException
from lightning.pytorch.loggers import CSVLogger, MLFlowLogger
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from ipguard.config import compose, config_names
from ipguard.jobs.train import _loggers, train


def test_train_defaults_to_the_fused_model_logged_to_mlflow() -> None:
    cfg = compose("train")
    assert cfg.model._target_ == "ipguard.models.fusion_classifier.FusionClassifier"
    assert cfg.logger.mlflow._target_ == "lightning.pytorch.loggers.MLFlowLogger"
    assert cfg.logger.mlflow.experiment_name == cfg.mlflow.experiment == "ipguard"
    assert cfg.logger.mlflow.tags.task == "train"


def test_the_logger_follows_the_run_settings() -> None:
    cfg = compose("train", ["mlflow.experiment=team-a", "run_name=first", "task_name=x"])
    assert cfg.logger.mlflow.experiment_name == "team-a"
    assert cfg.logger.mlflow.run_name == "first"
    assert cfg.logger.mlflow.tags.task == "x"


def test_logger_none_and_csv_replace_the_mlflow_logger() -> None:
    assert set(config_names("logger")) >= {"mlflow", "csv", "none"}
    assert OmegaConf.to_container(compose("train", ["logger=none"]).logger) == {}
    csv = compose("train", ["logger=csv"]).logger
    assert set(csv) == {"csv"} and csv.csv.save_dir is None


class _Model:
    """Stands in for a LightningModule: the loggers only read its class name."""


def test_the_mlflow_logger_records_to_the_jobs_store_with_the_model_tag(tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    (logger,) = _loggers(compose("train", ["run_name=r1"]), tmp_path, uri, _Model())
    assert isinstance(logger, MLFlowLogger)
    assert logger._tracking_uri == uri
    assert logger._experiment_name == "ipguard" and logger._run_name == "r1"
    assert logger.tags == {"task": "train", "model": "_Model"}


def test_csv_writes_to_the_run_folder_and_none_builds_no_logger(tmp_path: Path) -> None:
    (csv,) = _loggers(compose("train", ["logger=csv"]), tmp_path, "sqlite://", _Model())
    assert isinstance(csv, CSVLogger) and Path(csv.save_dir) == tmp_path
    assert _loggers(compose("train", ["logger=none"]), tmp_path, "sqlite://", _Model()) == []


def test_a_run_without_an_mlflow_logger_is_still_tracked_and_registered(
    demo_small: Any, tmp_path: Path
) -> None:
    cfg = compose(
        "train",
        [
            "logger=csv",
            "debug=fast",
            "model=image",
            "model.backbone=tiny_cnn",
            "onnx=false",
            f"data.manifest={demo_small.manifest_path}",
            f"paths.root_dir={tmp_path}",
        ],
    )
    result = train(cfg)
    assert (result.output_dir / "csv" / "version_0" / "metrics.csv").is_file()
    run = MlflowClient(result.tracking_uri).get_run(result.run_id)
    assert run.data.tags["model"] == "ImageClassifier" and run.data.tags["task"] == "train"
    assert "test_calibrated/auroc" in run.data.metrics
    assert result.registered is not None
    version = MlflowClient(result.tracking_uri).get_model_version(
        result.registered.name, result.registered.version
    )
    assert version.run_id == result.run_id


@pytest.mark.parametrize("option", ["auto", "none", "class_weights", "sampler", "focal"])
def test_imbalance_stays_a_plain_string_chosen_as_a_group_option(option: str) -> None:
    assert option in config_names("imbalance")
    assert compose("train", [f"imbalance={option}"]).imbalance == option


def test_imbalance_defaults_to_auto() -> None:
    assert compose("train").imbalance == "auto"


def test_an_unknown_imbalance_option_is_refused_naming_the_valid_ones() -> None:
    with pytest.raises(MissingConfigException) as caught:
        compose("train", ["imbalance=bogus"])
    for option in ("auto", "class_weights", "focal", "none", "sampler"):
        assert option in str(caught.value)


def test_an_experiment_can_choose_the_imbalance_option() -> None:
    cfg = compose("train", ["imbalance=focal", "experiment=image_baseline"])
    assert cfg.imbalance == "focal"


@pytest.mark.parametrize("job", ["train", "export"])
def test_calibration_is_chosen_by_method_or_by_key(job: str) -> None:
    assert compose(job).calibration.method == "temperature"
    assert compose(job, ["calibration=isotonic"]).calibration.method == "isotonic"
    assert compose(job, ["calibration.method=none"]).calibration.method == "none"
    assert set(config_names("calibration")) == {"temperature", "isotonic", "none"}


def test_train_export_and_evaluate_share_the_policy_targets() -> None:
    policies = {job: compose(job).policy for job in ("train", "export", "evaluate")}
    targets = ("target_precision", "target_recall", "review_capacity", "confidence")
    for job, policy in policies.items():
        assert {k: policy[k] for k in targets} == {
            "target_precision": 0.98,
            "target_recall": 0.95,
            "review_capacity": None,
            "confidence": None,
        }, job
    evaluated = policies["evaluate"]
    assert evaluated.reject_threshold is None and evaluated.approve_threshold is None
    assert compose("evaluate", ["policy.target_precision=0.9"]).policy.target_precision == 0.9


def test_promote_has_no_policy_or_calibration() -> None:
    cfg = compose("promote")
    assert "policy" not in cfg and "calibration" not in cfg


def test_the_optuna_search_runs_on_the_image_model_it_searches() -> None:
    cfg = compose("train", ["hparams_search=optuna"])
    assert cfg.model._target_ == "ipguard.models.image_classifier.ImageClassifier"
    cfg = compose("train", ["hparams_search=optuna", "model=fusion"])
    assert cfg.model._target_ == "ipguard.models.fusion_classifier.FusionClassifier"
