"""Web pages as text: the article a saved page holds, or else its visible text.

A saved web page is mostly not the page's subject: navigation, menus, cookie
notices, related links and footers surround the article, and every one of
them would become a chunk that the gates then spend requests refusing (or a
question about a menu). ``article_text`` asks trafilatura, a maintained
main-content extractor, for the article alone, with its headings as Markdown
``#`` lines; it is optional (``pip install 'atk-core[articles]'``, which
``scripts/setup.sh`` installs) because it brings lxml and a date parser with
it. Without it, or when it finds no article, ``html_to_text`` is the page's
visible text, scripts and styles dropped. Both are deterministic: the same
page gives the same text.
"""

from __future__ import annotations

import logging
from html.parser import HTMLParser

_DROPPED = {"script", "style", "noscript", "template", "svg", "head"}
_BLOCKS = {"p", "div", "br", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr",
           "table", "section", "article", "header", "footer", "blockquote", "pre", "dd", "dt",
           "hr", "main", "aside", "nav", "figure", "figcaption", "title"}
_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Marks a heading's start inside the walker's text; never in real text (a private-use character).
_MARK = "\ue000"


class _TextExtractor(HTMLParser):
    def __init__(self, headings: bool):
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0
        self.title: list[str] = []
        self.headings = headings
        self._in_title = False

    def handle_starttag(self, tag, attrs):
        if tag == "title":
            self._in_title = True
        if tag in _DROPPED:
            self.skipping += 1
        elif tag in _BLOCKS:
            self.parts.append("\n\n")
            if self.headings and tag in _HEADINGS and not self.skipping:
                self.parts.append(_MARK * _HEADINGS[tag] + " ")

    def handle_endtag(self, tag):
        if tag == "title":
            self._in_title = False
        if tag in _DROPPED:
            self.skipping = max(0, self.skipping - 1)
        elif tag in _BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data):
        if self._in_title:
            self.title.append(data)
        if not self.skipping:
            self.parts.append(data.replace(_MARK, ""))


def html_to_text(html: str, *, headings: bool = False, title: bool = True) -> str:
    """Visible text of an HTML page: scripts and styles dropped, blocks as paragraphs.

    ``headings``: ``<h1>``..``<h6>`` become Markdown heading lines (``# Title``), so that
    chunks can break at them; ``title``: the page's ``<title>`` is its first paragraph
    (unless the page starts with it)."""
    parser = _TextExtractor(headings)
    parser.feed(html)
    parser.close()
    paragraphs = []
    for block in "".join(parser.parts).split("\n\n"):
        line = " ".join(block.split())
        level = len(line) - len(line.lstrip(_MARK))
        if level:
            line = line[level:].strip()
            line = f"{'#' * level} {line}" if line else ""
        if line:
            paragraphs.append(line)
    page_title = " ".join("".join(parser.title).split())
    if title and page_title and (not paragraphs or paragraphs[0].lstrip("# ") != page_title):
        paragraphs.insert(0, page_title)
    return "\n\n".join(paragraphs)


def article_text(html: str) -> tuple[str | None, str]:
    """The article of a web page as Markdown (headings as ``#`` lines), and which extractor
    found it: ``(text, "trafilatura VERSION")``; ``(None, why)`` when trafilatura is not
    installed or finds no article, and the caller falls back to ``html_to_text``."""
    try:
        import trafilatura
    except Exception as exc:  # ImportError, or a dependency of it that is broken
        if isinstance(exc, ModuleNotFoundError) and exc.name == "trafilatura":
            return None, "trafilatura not installed"
        return None, f"trafilatura could not load ({type(exc).__name__})"
    # It logs what it tolerates in a page; the run's manifest says what was read, and how.
    for name in ("trafilatura", "htmldate", "courlan", "justext"):
        logging.getLogger(name).setLevel(logging.ERROR)
    version = getattr(trafilatura, "__version__", "")
    try:
        text = trafilatura.extract(html, output_format="markdown", include_comments=False,
                                   include_tables=True, include_images=False, include_links=False,
                                   deduplicate=False, with_metadata=False)
    except Exception as exc:  # a page it cannot parse is read the plain way
        return None, f"trafilatura failed ({type(exc).__name__})"
    if not text or not text.strip():
        return None, "trafilatura found no article"
    return text, f"trafilatura {version}".strip()
