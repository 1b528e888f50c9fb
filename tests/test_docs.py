"""The README as a front page and the docs/ pages, checked without MkDocs (`make docs` runs mkdocs build --strict):
the README's first two commands, its length, mkdocs.yml's nav against docs/, and every relative link and anchor."""

import pathlib
import re
import unicodedata

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
README_MAX_LINES = 120
FENCE = re.compile(r"^```.*?^```", re.S | re.M)
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _pages():
    return sorted(DOCS.rglob("*.md"))


def _nav_entries():
    """The page paths of mkdocs.yml's nav (lines `- Title: path.md` below `nav:`)."""
    text = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    nav = text[text.index("\nnav:\n"):]
    return re.findall(r"^\s*- [^:\n]+:\s*(\S+\.md)\s*$", nav, re.M)


def _slug(heading):
    """Python-Markdown's toc slug (MkDocs' default): the heading's text, lower case, words joined by '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^\w\s-]", "", text).strip().lower()
    return re.sub(r"[-\s]+", "-", text)


def _prose(path):
    """The Markdown outside fenced code blocks and inline code spans."""
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return re.sub(r"`[^`\n]*`", "", text)


def _anchors(path):
    text = FENCE.sub("", path.read_text(encoding="utf-8"))
    return {_slug(h) for h in re.findall(r"^#{1,6} (.+?)\s*$", text, re.M)}


def test_readme_opens_with_the_two_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    title, rest = text.split("\n", 1)
    assert title.startswith("# ")
    first_block = re.match(r"\s*```\n(.*?)\n```", rest, re.S)
    assert first_block, "the README must open (after its title) with a code block of the set-up commands"
    assert first_block.group(1).splitlines() == ["make demo", "make test"]


def test_readme_is_a_front_page():
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; the reference belongs in docs/"


def test_every_page_is_in_the_nav_and_every_nav_entry_exists():
    nav = _nav_entries()
    pages = [p.relative_to(DOCS).as_posix() for p in _pages()]
    assert sorted(set(pages) - set(nav)) == [], "docs pages missing from mkdocs.yml's nav"
    assert sorted(set(nav) - set(pages)) == [], "nav entries without a page"
    assert len(nav) == len(set(nav)), "a page is listed twice in the nav"


@pytest.mark.parametrize("path", [ROOT / "README.md", *_pages()], ids=lambda p: p.relative_to(ROOT).as_posix())
def test_relative_links_resolve(path):
    broken = []
    for target in LINK.findall(_prose(path)):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
            continue
        file, _, anchor = target.partition("#")
        linked = (path.parent / file).resolve() if file else path
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked):
            broken.append(f"{target}: no heading with that anchor")
    assert broken == []


def test_ci_runs_the_tests_and_the_docs_build():
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "make test" in ci and "make docs" in ci
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    docs_target = re.search(r"^docs:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert docs_target and "mkdocs build --strict" in docs_target.group(1)
    assert "site/" in (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert '"docs": [' in (ROOT / "setup.py").read_text(encoding="utf-8")


def test_api_pages_name_existing_modules():
    for page in (DOCS / "api").glob("*.md"):
        for module in re.findall(r"^::: (\S+)", page.read_text(encoding="utf-8"), re.M):
            parts = module.split(".")
            base = ROOT.joinpath(*parts)
            assert base.with_suffix(".py").exists() or (base / "__init__.py").exists(), f"{page.name}: {module}"
