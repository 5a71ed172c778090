"""Compose ipguard's Hydra configs from Python, exactly as the CLI does.

Data scientists call :func:`compose` in a notebook and get the same config object that
``ipguard-train`` builds, without ``@hydra.main`` and without touching the working directory.
The configs ship inside the wheel (``ipguard/configs``), so this works for an installed package.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import import_module
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

CONFIG_DIR = Path(__file__).parent / "configs"


def _demo(module: str, name: str) -> Callable[..., Any]:
    """A resolver that imports the demo generator it calls on first use: composing a config
    for a team's own data never loads the demo's renderers."""

    def resolve(*args: Any) -> Any:
        return getattr(import_module(f"ipguard.demo.{module}"), name)(*args)

    return resolve


def _demo_folder_only(name: str) -> Callable[..., Any]:
    """A resolver of what follows a *demo* manifest (its catalogs): ``None`` without importing
    the demo when no demo stamp lies beside the manifest, as for a team's own listings."""
    demo = _demo("listings", name)

    def resolve(manifest: Any) -> Any:
        if manifest is None or not (Path(str(manifest)).parent / "demo.json").is_file():
            return None
        return demo(manifest)

    return resolve


def _demo_brands() -> Callable[..., Any]:
    """``${ipguard.demo_catalog:MANIFEST[,REFERENCES]}``: the demo's brand catalog CSV, or with
    ``REFERENCES`` true its reference catalog folder; ``None`` for a team's own manifest. One
    resolver with a flag, so an experiment picks the folder by setting a new key instead of
    writing over ``data.brands`` (a merge resolves the interpolation it replaces)."""
    catalog = _demo_folder_only("demo_catalog")
    references = _demo_folder_only("demo_reference_catalog")

    def resolve(manifest: Any, reference_folder: Any = False) -> Any:
        return (references if reference_folder else catalog)(manifest)

    return resolve


def _register_resolvers() -> None:
    # ``abspath`` makes tracking URIs and data folders independent of the current directory,
    # which Jupyter kernels, DDP workers and Hydra multiruns all change in different ways.
    if not OmegaConf.has_resolver("ipguard.abspath"):
        OmegaConf.register_new_resolver(
            "ipguard.abspath", lambda p: str(Path(str(p)).expanduser().resolve())
        )
    # The demo data appears where a config first reads it: ``data.manifest`` (train),
    # ``manifest`` (evaluate, promote) resolve to the demo manifest, generating it on first
    # use, unless a user's manifest replaced the interpolation; the brand catalog follows the
    # manifest (the demo's for the demo, none for a user's).
    if not OmegaConf.has_resolver("ipguard.demo_manifest"):
        OmegaConf.register_new_resolver("ipguard.demo_manifest", _demo("listings", "demo_manifest"))
    if not OmegaConf.has_resolver("ipguard.demo_catalog"):
        OmegaConf.register_new_resolver("ipguard.demo_catalog", _demo_brands())
    # the brands' reference catalog folder (photos, logos, prices, sellers, aliases) of a demo
    # manifest, None for a user's
    if not OmegaConf.has_resolver("ipguard.demo_reference_catalog"):
        OmegaConf.register_new_resolver(
            "ipguard.demo_reference_catalog", _demo_folder_only("demo_reference_catalog")
        )
    # the demo video manifest (short videos and livestreams), generated on first use, as above
    if not OmegaConf.has_resolver("ipguard.demo_video_manifest"):
        OmegaConf.register_new_resolver(
            "ipguard.demo_video_manifest", _demo("videos", "demo_video_manifest")
        )
    # each command's --help (hydra.help.template: ${ipguard.help:<command>}), rendered from
    # the composed config by ipguard.command_help, imported only when help is printed
    if not OmegaConf.has_resolver("ipguard.help"):
        OmegaConf.register_new_resolver("ipguard.help", _command_help)
    # debug=fast's small demo data: 62 clips for a video data module, else 240 listings
    if not OmegaConf.has_resolver("ipguard.debug_manifest"):
        OmegaConf.register_new_resolver("ipguard.debug_manifest", _debug_manifest)


def _command_help(command: str, *, _root_: DictConfig) -> str:
    return import_module("ipguard.command_help").render_help(str(command), _root_)


def _debug_manifest(data_target: str, data_dir: str) -> str | None:
    if str(data_target).endswith("VideoDataModule"):
        small = import_module("ipguard.demo.videos").ensure_demo_videos(
            Path(data_dir) / "demo-videos-small", n=60, seed=0, livestreams=2,
            livestream_seconds=20.0,
        )  # fmt: skip
        return str(small.manifest_path)
    return _demo("listings", "demo_manifest")(Path(data_dir) / "demo-small", 240)


_register_resolvers()


def compose(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """Return the composed config ``config_name`` with Hydra-style ``overrides`` applied.

    Only the Hydra search path is global state; it is set up and torn down here so a notebook
    can call this any number of times.
    """
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONFIG_DIR), version_base="1.3"):
        return hydra_compose(config_name=config_name, overrides=list(overrides))


def config_names(group: str) -> list[str]:
    """Names a config group offers (``model`` -> ``["fusion", "image", ...]``), for discovery."""
    folder = CONFIG_DIR / group
    if not folder.is_dir():
        raise ValueError(f"unknown config group {group!r}; groups: {sorted(_groups())}")
    return sorted(p.stem for p in folder.glob("*.yaml"))


def _groups() -> list[str]:
    return [p.name for p in CONFIG_DIR.iterdir() if p.is_dir()]
