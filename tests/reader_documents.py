"""Documents with furniture, written with real writers: a saved web page (navigation, a cookie
notice, a sidebar, a footer around its article) and a multi-page PDF (reportlab) whose every
page repeats a running header, a footer and a page number, with words hyphenated across lines."""

from __future__ import annotations

from pathlib import Path

ARTICLE = [
    "The tide at Harwich rises about four metres at spring tides.",
    "Harbour masters publish the tide tables every winter for the following year.",
    "The shape of the coast funnels the water, so the range grows towards the Wash.",
    "Storm surges add another metre when a gale blows from the north.",
]
PAGE_FURNITURE = ["We use cookies to improve your experience", "Accept all cookies", "Home",
                  "About us", "Subscribe to our newsletter", "Related: Ten best beaches",
                  "Copyright 2024 Coastal Weekly", "Share this page"]

WEB_PAGE = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Tides of the North Sea | Coastal Weekly</title>
<script>window.analytics = {{}};</script><style>nav {{ color: grey }}</style></head>
<body>
<div id="cookie-banner" class="cookie-consent">We use cookies to improve your experience.
  <button>Accept all cookies</button></div>
<header><nav class="menu"><ul><li><a href="/">Home</a></li><li><a href="/about">About us</a></li>
  <li><a href="/shop">Shop</a></li><li><a href="/news">Subscribe to our newsletter</a></li></ul></nav></header>
<main><article>
<h1>Tides of the North Sea</h1>
<p>{ARTICLE[0]} {ARTICLE[1]}</p>
<h2>Why the tides differ</h2>
<p>{ARTICLE[2]} {ARTICLE[3]}</p>
</article></main>
<aside class="sidebar"><h3>Related</h3><ul><li><a href="/beaches">Related: Ten best beaches</a></li></ul></aside>
<footer><p>Copyright 2024 Coastal Weekly. All rights reserved.</p><p><a href="/share">Share this page</a></p></footer>
</body></html>
"""

REPORT_HEADER = "Coastal Survey Report - Confidential"
REPORT_PAGES = [
    ["The survey measured the harbour walls in the spring of 2021.",
     "Divers inspected every joint below the waterline for signs of wear.",
     "The east wall needs new mortar along its whole length before winter."],
    ["The south breakwater lost two armour blocks in the January storms.",
     "Replacing them will take a crane barge and three weeks of calm weather.",
     "Regular main-",
     "tenance of the sluice gates keeps the inner basin from silting up."],
    ["Silt samples were taken at twelve points across the inner basin.",
     "The deepest silt lay beside the fish quay, where the current is slack.",
     "Dredging every second year would keep the channel open for the ferries."],
    ["The lighthouse on the breakwater head was repainted in 2019.",
     "Its lamp was replaced by a light emitting array that uses far less power.",
     "The keepers' cottage is now a small museum of the harbour's history."],
]


def write_web_page(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(WEB_PAGE, encoding="utf-8")
    return path


def write_report_pdf(path: Path, pages=REPORT_PAGES, header=REPORT_HEADER) -> Path:
    """A PDF of ``pages`` (lists of lines), each with ``header`` at its top and "Page N of M"
    at its foot, written by reportlab as a word processor would lay it out."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path.parent.mkdir(parents=True, exist_ok=True)
    pdf = canvas.Canvas(str(path), pagesize=A4, invariant=1)  # invariant: the same bytes each time
    width, height = A4
    for number, lines in enumerate(pages, 1):
        pdf.setFont("Helvetica", 9)
        pdf.drawString(72, height - 40, header)
        pdf.setFont("Helvetica", 11)
        y = height - 100
        for line in lines:
            pdf.drawString(72, y, line)
            y -= 16
        pdf.setFont("Helvetica", 9)
        pdf.drawCentredString(width / 2, 30, f"Page {number} of {len(pages)}")
        pdf.showPage()
    pdf.save()
    return path
