"""atk-reader-office: Word, PowerPoint and EPUB files as documents for atk's pipelines.

Each reader keeps its format's headings as Markdown heading lines (so chunks
break at them) and says where each block came from in words a user can
follow in the file: a heading path in a Word file, a slide, an EPUB's
chapter as its table of contents names it. The libraries (python-docx,
python-pptx, EbookLib) are imported only when a file of theirs is read.
"""

from atk_core import hookimpl

from .ebook import EpubReader
from .slides import PptxReader
from .word import DocxReader

__all__ = ["DocxReader", "EpubReader", "PptxReader"]


@hookimpl
def atk_register_readers(register):
    register("docx", DocxReader)
    register("pptx", PptxReader)
    register("epub", EpubReader)
