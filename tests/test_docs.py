"""The documentation: the MkDocs site builds with --strict (no broken link, anchor or API reference), its API page
carries the docstrings, and every relative link of README.md (the front page on GitHub) reaches a file and heading."""

import os
import re
import subprocess
import sys
from pathlib import Path

from markdown.extensions.toc import slugify

ROOT = Path(__file__).resolve().parents[1]
MKDOCS = Path(sys.executable).parent / "mkdocs"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)|<img [^>]*src=\"([^\"]+)\"")
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
# The names the API page documents (docs/api.md), each under its own anchor.
PUBLIC = [
    "BAM",
    "create_attn",
    "create_model",
    "list_models",
    "insert_attention",
    "from_official_checkpoint",
    "tasks.classification.ImageClassifier",
    "tasks.detection.ObjectDetector",
    "data.CIFAR100DataModule",
    "data.ImageNetDataModule",
    "data.COCODataModule",
    "data.VOCDataModule",
]


def test_site_builds_strict_with_the_api_reference(tmp_path: Path) -> None:
    site = tmp_path / "site"
    result = subprocess.run(
        [str(MKDOCS), "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env=os.environ | {"NO_MKDOCS_2_WARNING": "1"},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    # BAM's docstring, rendered: its first line and a sentence of its body.
    assert "The paper's BAM" in api and "the reference form" in api
    for name in PUBLIC:
        assert f'id="bam_lightning.{name}"' in api, name
    # A guide, and the front page made from README.md with its picture.
    assert "Resuming and fault tolerance" in (site / "training" / "index.html").read_text(encoding="utf-8")
    front = (site / "index.html").read_text(encoding="utf-8")
    assert "What is in the package" in front and 'src="attention_maps.png"' in front


def headings(markdown: Path) -> set[str]:
    """The anchors of a Markdown file's headings, as MkDocs (Python-Markdown's toc) and GitHub make them."""
    text = FENCE.sub("", markdown.read_text(encoding="utf-8"))
    titles = [re.sub(r"[`*]", "", m) for m in re.findall(r"^#{1,6} (.+?)\s*$", text, re.MULTILINE)]
    return {slugify(title, "-") for title in titles}


def test_every_relative_link_of_the_readme_resolves() -> None:
    readme = ROOT / "README.md"
    targets = ["".join(groups) for groups in LINK.findall(FENCE.sub("", readme.read_text(encoding="utf-8")))]
    relative = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert len(relative) >= 10  # the guides' table, the pictures, the anchors
    broken = []
    for target in relative:
        path, _, anchor = target.partition("#")
        file = (readme.parent / path) if path else readme
        if not file.exists():
            broken.append(f"{target}: no file {file.relative_to(ROOT)}")
        elif anchor and anchor not in headings(file):
            broken.append(f"{target}: no heading #{anchor} in {file.relative_to(ROOT)}")
    assert not broken, "\n".join(broken)
