"""``make gpu-check``'s plumbing, on CPU: every part runs and lands in its table and JSON; without CUDA, one line."""

import json
from pathlib import Path

import pytest
import torch

from benchmarks.gpu_check import main

ROOT = Path(__file__).parents[1]


@pytest.mark.long
def test_the_shrunk_cpu_run_measures_every_part_and_writes_them(tmp_path, monkeypatch, capsys):
    """In this process (its imports paid already; the test workers compute on one thread, as the check's own CPU run)."""
    out = tmp_path / "check.json"
    monkeypatch.chdir(ROOT)
    main(["--device", "cpu", "--out", str(out)])  # SystemExit(1) where the cuda-marked tests fail
    printed = capsys.readouterr().out
    rows = {row["check"]: row for row in json.loads(out.read_text())["rows"]}
    assert list(rows) == [
        "cuda-marked tests", "bam fit cifar100_wrn", "bam fit cifar100_wrn_baseline", "BAM overhead (train)",
        "CIFAR loader, 1 workers", "resnet50 + BAM 64px, batch 2", "bam fit vs a bare loop",
    ]  # fmt: skip
    assert "skipped" in rows["cuda-marked tests"]["result"] and rows["cuda-marked tests"]["ok"]
    for name in ("bam fit cifar100_wrn", "bam fit cifar100_wrn_baseline"):
        assert float(rows[name]["train img/s"]) > 0 and float(rows[name]["eval img/s"]) > 0 and float(rows[name]["recipe h"]) > 0
    assert "its MAC share" in rows["BAM overhead (train)"]["result"]
    loader = rows["CIFAR loader, 1 workers"]
    assert float(loader["train img/s"]) > 0 and "what bam fit trains" in loader["result"]
    assert "90 epochs on 8 GPUs" in rows["resnet50 + BAM 64px, batch 2"]["result"]
    assert "| bam fit vs a bare loop" in printed  # the table


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is there")
def test_without_cuda_it_says_so_in_one_line(capsys):
    with pytest.raises(SystemExit) as exit:
        main([])
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert exit.value.code == 2 and line.startswith("gpu-check: error: no CUDA GPU here") and "DEVICE=cpu" in line
