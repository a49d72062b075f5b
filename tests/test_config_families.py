"""A training recipe shared by several Table 3 configs is written out in each of them (every config stands alone, for
``bam fit --config`` and ``bam sweep``): these tests keep the copies equal, and each BAM row equal to its baseline twin."""

from itertools import takewhile
from pathlib import Path
from typing import Any

import pytest
import yaml

CONFIGS = Path(__file__).parents[1] / "configs"

# The rows of one recipe, named without _bam.yaml / _baseline.yaml. Each CIFAR network family brought its own
# recipe (the configs' "# Recipe:" comments cite it); every ImageNet row uses the public BAM code's.
FAMILIES = {
    "CIFAR-100 ResNet": ["cifar100/resnet50", "cifar100/resnet101"],
    "CIFAR-100 PreResNet": ["cifar100/preresnet110"],
    "CIFAR-100 WideResNet": ["cifar100/wrn28_8", "cifar100/wrn28_10"],  # configs/cifar100_wrn*.yaml link to wrn28_8
    "CIFAR-100 ResNeXt": ["cifar100/resnext29_8x64d", "cifar100/resnext29_16x64d"],
    "CIFAR-100 DenseNet": ["cifar100/densenet100_bc"],
    "ImageNet": sorted(p.relative_to(CONFIGS).as_posix().removesuffix("_bam.yaml") for p in CONFIGS.glob("imagenet/*_bam.yaml")),
}
# What a row of a family may set its own way: the network, its input resolution (MobileNet at 192 px) and its folder.
ROW_KEYS = {
    "model.backbone",
    "model.backbone_kwargs",
    "model.attention",
    "data.init_args.image_size",
    "data.init_args.resize_size",
    "trainer.default_root_dir",
}
# What a BAM row and its baseline twin may differ in: the attention, and the folder the run writes.
TWIN_KEYS = {"model.attention", "trainer.default_root_dir"}
RECIPE_COMMENT = "# Recipe"  # the comment that states the recipe, compared as one more value


def files(row: str) -> tuple[str, str]:
    """The BAM config of ``row`` and its baseline twin."""
    return f"{row}_bam.yaml", f"{row}_baseline.yaml"


def settings(name: str) -> dict[str, Any]:
    """A config's values by dotted key (``model.optimizer.init_args.lr``), and its recipe comment under ``# Recipe``."""
    text = (CONFIGS / name).read_text()
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(yaml.safe_load(text), "")
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith("# Recipe:")), len(lines))
    flat[RECIPE_COMMENT] = "\n".join(takewhile(lambda line: line.startswith("#"), lines[start:]))
    return flat


def differences(configs: list[str], allowed: set[str]) -> list[str]:
    """One line per key (outside ``allowed`` and what is under it) whose value is not the same in all ``configs``: the
    odd values and their files, then the value of the most."""
    found = {name: settings(name) for name in configs}
    keys = {key for values in found.values() for key in values if not any(key == a or key.startswith(f"{a}.") for a in allowed)}
    lines = []
    for key in sorted(keys):
        where: dict[str, list[str]] = {}
        for name, values in found.items():
            where.setdefault(repr(values.get(key, "<not set>")), []).append(name)
        (common, most), *odd = sorted(where.items(), key=lambda item: -len(item[1]))
        if odd:
            each = "; ".join(f"{value} in {', '.join(names)}" for value, names in odd)
            rest = ", ".join(most) if len(most) < 3 else f"the other {len(most)}"
            lines.append(f"{key}: {each}; {common} in {rest}")
    return lines


def test_every_table_3_config_is_in_one_family():
    listed = [name for rows in FAMILIES.values() for row in rows for name in files(row)]
    shipped = [p.relative_to(CONFIGS).as_posix() for p in [*CONFIGS.glob("cifar100/*.yaml"), *CONFIGS.glob("imagenet/*.yaml")]]
    assert sorted(listed) == sorted(shipped)


@pytest.mark.parametrize("family", FAMILIES)
def test_the_rows_of_a_family_share_its_recipe(family):
    configs = [name for row in FAMILIES[family] for name in files(row)]
    mismatched = differences(configs, ROW_KEYS)
    assert not mismatched, f"{family}: the recipe differs between its configs:\n" + "\n".join(mismatched)


@pytest.mark.parametrize("row", [row for rows in FAMILIES.values() for row in rows])
def test_a_bam_row_and_its_baseline_twin_differ_only_in_attention(row):
    bam, baseline = files(row)
    mismatched = differences([bam, baseline], TWIN_KEYS)
    assert not mismatched, f"{bam} and its twin {baseline} differ beyond the attention:\n" + "\n".join(mismatched)
    assert settings(bam)["model.attention"] is not None and settings(baseline)["model.attention"] is None
    assert settings(baseline)["trainer.default_root_dir"] != settings(bam)["trainer.default_root_dir"]
