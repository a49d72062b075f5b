"""Networks built from a folder of weights (``hub``), by this package and by timm.

``from_pretrained("local-dir:DIR" | "hf-hub:owner/name")`` rebuilds the network a folder's
``config.json`` describes and loads its weights. ``register_with_timm`` gives timm an entrypoint
per registered model name (``resnet50_bam``, ``wrn28_8_bam``, ...), so that after
``import bam_lightning`` timm users load the same folders the way they load timm's own:
``timm.create_model("hf-hub:owner/name", pretrained=True)``; ``timm.list_models("*bam*")`` lists them.
"""

import importlib.util
from pathlib import Path
from typing import Any

from torch import nn

from ..errors import InputError, nearest
from .hub import CONFIG, SUFFIX, load_weights, read_config
from .registry import create_model, list_models

MODEL_ARGS = ("attention", "attention_kwargs", "placement", "backbone_kwargs")  # config.json's model_args: create_model's


def architecture(name: str) -> str:
    """The architecture name of our model ``name`` in a folder's config and in timm's registry."""
    return name + SUFFIX


def model_of(config: dict[str, Any], source: str) -> tuple[str, dict[str, Any]]:
    """Our model name and ``create_model``'s options for a folder's config, each checked."""
    known = [architecture(name) for name in list_models()]
    arch = config["architecture"]
    if arch not in known:
        raise InputError(
            f"{source}: {CONFIG} names architecture {arch!r}, which bam_lightning does not build{nearest(arch, known)}:"
            f" choose one of {', '.join(known)}"
        )
    args = config.get("model_args", {})
    unknown = sorted(set(args) - set(MODEL_ARGS))
    if unknown:
        raise InputError(f"{source}: {CONFIG}'s model_args {unknown} are not options of bam_lightning's {arch}")
    return arch.removesuffix(SUFFIX), args


def from_pretrained(source: str, cache_dir: str | Path | None = None) -> nn.Module:
    """The network saved in the folder ``source`` names, with its weights, in eval mode."""
    config = read_config(source, cache_dir)
    name, args = model_of(config, source)
    backbone_kwargs = args.get("backbone_kwargs") or {}
    options = {key: value for key, value in args.items() if key != "backbone_kwargs"}
    return create_model(name, config["num_classes"], pretrained=source, **options, **backbone_kwargs).eval()


def _entrypoint(name: str) -> Any:
    """timm's entrypoint for our model ``name``: called by ``timm.create_model`` with the folder's ``model_args``."""

    def build(
        pretrained: bool = False,
        pretrained_cfg: dict[str, Any] | str | None = None,
        pretrained_cfg_overlay: dict[str, Any] | None = None,
        cache_dir: str | Path | None = None,
        num_classes: int | None = None,
        attention: str | None = "bam",
        attention_kwargs: dict[str, Any] | None = None,
        placement: str | None = None,
        backbone_kwargs: dict[str, Any] | None = None,
        pretrained_model_args: dict[str, Any] | None = None,  # timm's record of the folder's model_args, applied already
        **kwargs: Any,
    ) -> nn.Module:
        cfg = {**(pretrained_cfg if isinstance(pretrained_cfg, dict) else {}), **(pretrained_cfg_overlay or {})}
        source = {"local-dir": f"local-dir:{cfg.get('file')}", "hf-hub": f"hf-hub:{cfg.get('hf_hub_id')}"}.get(cfg.get("source"))
        if pretrained and source is None:
            raise InputError(
                f"{architecture(name)} has no weights of its own: timm.create_model('hf-hub:owner/name') or 'local-dir:DIR'"
            )
        classes = num_classes or cfg.get("num_classes") or 1000
        backbone = {**(backbone_kwargs or {}), **kwargs}
        model = create_model(name, classes, attention, attention_kwargs, placement, **backbone)  # type: ignore[arg-type]
        if pretrained:
            load_weights(model, source, cfg.get("num_classes", classes), cache_dir)
        model.pretrained_cfg = cfg  # what timm.data.resolve_data_config reads the preprocessing from
        model.num_classes = classes
        return model

    build.__name__ = build.__qualname__ = architecture(name)
    build.__module__ = __name__
    return build


def register_with_timm() -> None:
    """Every registered model name as a timm architecture (``architecture``), where timm is installed (an optional extra)."""
    if importlib.util.find_spec("timm") is None:
        return
    from timm.models import register_model

    for name in list_models():
        entrypoint = _entrypoint(name)
        globals()[entrypoint.__name__] = entrypoint  # timm lists a module's entrypoints in its __all__: they are its names
        register_model(entrypoint)
