"""``bam export --format hf``: what goes in the folder beside the weights, ``config.json`` and the model card.

The config is timm's (``timm.models.save_for_hf`` writes the same keys): ``architecture`` (our model
name with ``_bam``, ``models.pretrained.architecture``), ``num_classes``, ``num_features``,
``label_names``, ``model_args`` (what ``create_model`` rebuilds the network from) and
``pretrained_cfg``, the preprocessing the network was trained with. That is read off the run's
own datamodule (its ``config.yaml``): the eval transform's resize, centre crop and interpolation
give timm's ``crop_pct`` and ``interpolation``, its ``Normalize`` the mean and std. Without a
``config.yaml`` the rule of ``attention.fallback_datamodule`` stands in. The card says how to
load the folder, what the network is and costs, how it was trained and scored, and whom to cite.
"""

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn
from torchvision import transforms as T

from ..data.base import input_statistics
from ..models import count_macs, count_parameters
from ..models.pretrained import architecture
from .compare import scalars

CITATION = """@inproceedings{park2018bam,
  title     = {{BAM}: Bottleneck Attention Module},
  author    = {Park, Jongchan and Woo, Sanghyun and Lee, Joon-Young and Kweon, In So},
  booktitle = {British Machine Vision Conference (BMVC)},
  year      = {2018}
}"""


@dataclass
class Exported:
    """A network to write as a folder, and what its config and card say about it."""

    network: nn.Module
    name: str  # our model name (``resnet50``), the architecture without ``_bam``
    model_args: dict[str, Any]  # create_model's options: attention, attention_kwargs, placement, backbone_kwargs
    num_classes: int
    size: int  # the side of the square images it was trained on
    datamodule: Any  # whose eval transform the images went through
    labels: list[str] | None = None
    origin: str = ""  # the card's words on where the weights come from
    recipe: str = ""  # the run's config.yaml, or nothing
    results: dict[str, float] = field(default_factory=dict)  # test metrics logged in the run's folder


def preprocessing(datamodule: Any, size: int) -> dict[str, Any]:
    """timm's preprocessing fields for images that ``datamodule``'s eval transform for any image prepares."""
    steps = getattr(datamodule.predict_transform, "transforms", [])
    resize = next((step for step in steps if isinstance(step, T.Resize)), None)
    crop = next((step for step in steps if isinstance(step, T.CenterCrop)), None)
    resized = None if resize is None else resize.size if isinstance(resize.size, int) else min(resize.size)
    mean, std = input_statistics(datamodule) or ((0.0, 0.0, 0.0), (1.0, 1.0, 1.0))  # data that is not normalised
    return {
        "input_size": [3, size, size],
        "interpolation": resize.interpolation.value if resize is not None else "bilinear",
        "crop_pct": round(size / resized, 4) if resized and crop is not None else 1.0,
        "crop_mode": "center",
        "mean": [float(value) for value in mean],
        "std": [float(value) for value in std],
    }


def _first(network: nn.Module, kind: type[nn.Module], last: bool = False) -> tuple[str, nn.Module]:
    found = [(name, module) for name, module in network.named_modules() if isinstance(module, kind)]
    return found[-1 if last else 0]


def hub_config(exported: Exported) -> dict[str, Any]:
    """The folder's ``config.json``."""
    classifier, head = _first(exported.network, nn.Linear, last=True)
    first_conv, _ = _first(exported.network, nn.Conv2d)
    config: dict[str, Any] = {
        "architecture": architecture(exported.name),
        "num_classes": exported.num_classes,
        "num_features": head.in_features,
    }
    if exported.labels:
        config["label_names"] = list(exported.labels)
    config["model_args"] = exported.model_args
    config["pretrained_cfg"] = {
        **preprocessing(exported.datamodule, exported.size),
        "num_classes": exported.num_classes,
        "first_conv": first_conv,
        "classifier": classifier,
    }
    return config


def run_results(run: Path | None) -> dict[str, float]:
    """The last value of each ``test/`` metric logged in a run's folder (``bam test`` of that run), none without one."""
    logged = scalars(run) if run is not None else {}
    return {tag: values[max(values)][1] for tag, values in sorted(logged.items()) if tag.startswith("test/")}


def run_recipe(run: Path | None) -> str:
    """The run's ``config.yaml``, its whole recipe, or nothing where the checkpoint was kept outside its run."""
    config = run / "config.yaml" if run is not None else None
    return config.read_text() if config is not None and config.is_file() else ""


def model_card(exported: Exported, config: dict[str, Any], license: str) -> str:
    """The folder's ``README.md``: the Hub reads its front matter (license, library, tags) and shows the rest."""
    cfg, arch = config["pretrained_cfg"], config["architecture"]
    attention = exported.model_args.get("attention")
    params = count_parameters(exported.network)
    macs = count_macs(exported.network, exported.size)
    resized = round(exported.size / cfg["crop_pct"])
    front = yaml.safe_dump({"license": license, "library_name": "timm", "tags": ["image-classification", "timm", "bam"]})
    results = (
        "| metric | value |\n|---|---|\n" + "".join(f"| {tag} | {value:.4g} |\n" for tag, value in exported.results.items())
        if exported.results
        else "No test metrics were logged in the run's folder (`bam test --ckpt_path ...` of the run logs them).\n"
    )
    attention_kwargs = exported.model_args.get("attention_kwargs") or ""
    row = f"| {exported.name} | {attention} {attention_kwargs} | {exported.num_classes} | {params:,} | {macs / 1e9:.3g} G |"
    recipe = "Not recorded with these weights.\n"
    if exported.recipe:
        recipe = f"The run's `config.yaml`:\n\n```yaml\n{exported.recipe.rstrip()}\n```\n"
    return f"""---
{front}---
# {arch}

{exported.origin}

## Use

```python
import bam_lightning  # registers its architectures with timm
import timm

model = timm.create_model("hf-hub:OWNER/NAME", pretrained=True).eval()  # or "local-dir:/path/to/this/folder"
# or, without timm: bam_lightning.from_pretrained("hf-hub:OWNER/NAME")
```

Images: shorter side resized to {resized} px ({cfg["interpolation"]}), centre crop {exported.size}x{exported.size},
normalised with mean {cfg["mean"]} and std {cfg["std"]} (`timm.data.resolve_data_config(model=model)` reads them).

## Model

| architecture | attention | classes | parameters | MACs ({exported.size}x{exported.size}) |
|---|---|---|---|---|
{row}

## Results

{results}
## Recipe

{recipe}
## Citation

```bibtex
{CITATION}
```
"""
