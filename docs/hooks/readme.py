"""MkDocs hook: the site's front page is README.md, so the front page has one text for GitHub and for the site.

README.md links into docs/ (``docs/training.md``, ``<img src="docs/attention_maps.png">``); on the site those pages
sit beside the front page, so ``docs/`` is dropped. A relative link outside docs/ (``configs/``, ``notebooks/``) has
no page on the site: it becomes its link text. ``mkdocs build --strict`` then checks every remaining link and anchor
(not an ``<img>``'s source: tests/test_docs.py checks those of README.md).
"""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)\)")
SRC = re.compile(r'(<img [^>]*src=")docs/')


def site_link(match: re.Match) -> str:
    image, text, target = match.groups()
    if re.match(r"[a-z]+:|#", target):  # https://..., mailto:, an anchor on the page
        return match.group(0)
    if target.startswith("docs/"):
        return f"{image}[{text}]({target.removeprefix('docs/')})"
    return text


def on_page_markdown(markdown: str, page, config, files) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    return SRC.sub(r"\1", LINK.sub(site_link, README.read_text(encoding="utf-8")))


def on_serve(server, config, builder):
    server.watch(str(README))
    return server
