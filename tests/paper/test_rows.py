"""``paper.rows``: which of our models is which row of the paper's Table 3, and its printed figures."""

from bam_lightning.paper.reference import load_reference
from bam_lightning.paper.rows import KNOWN_DIFFERENCES, TABLE_3, paper_row, printed_row


def test_paper_row_fills_builder_defaults_and_input_size():
    assert paper_row("wide_resnet18", {}, attention=True)["arch"] == "WideResNet18 (widen=1.5) + BAM"
    assert paper_row("wide_resnet18", {"widen_factor": 2}, attention=False)["params_M"] == 45.62
    assert paper_row("mobilenet_v1", {"width_mult": 0.7}, attention=False)["arch"] == "MobileNet alpha=0.7"
    assert paper_row("mobilenet_v1", {}, attention=False, input_size=192)["arch"] == "MobileNet rho=192/224"
    assert paper_row("wide_resnet18", {"widen_factor": 3.0}, attention=False) is None
    assert paper_row("wrn16_8", {}, attention=True) is None


def test_table_covers_every_table_3_row():
    reference = load_reference("paper_tables")
    printed = {(dataset, row["arch"]) for dataset in ("cifar100", "imagenet") for row in reference[dataset]["rows"]}
    ours = {(m.dataset, printed_row(m, bam)["arch"]) for m in TABLE_3 for bam in (False, True)}
    assert printed == ours
    assert set(KNOWN_DIFFERENCES) <= {m.arch for m in TABLE_3}
