"""An engraved score, SVG pages of a MusicXML file, by verovio (an optional dependency).

verovio lays out the notation itself: the title, the staves (one per voice), clefs, key and time
signatures, beams, ties and page breaks. It reads the MusicXML that score.py writes, so the
engraving shows what MuseScore would open. Pages are A4-shaped, `page_width` units wide (one unit
is one SVG pixel); the last page is cropped to its music.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from musicgpt.atomic import check_writable, write_text_atomic
from musicgpt.errors import MusicGPTError

A4 = 297 / 210  # page height / width
PAGE_WIDTHS = (100, 42000)  # verovio takes widths of 100 to 100,000 and heights up to 60,000
INSTALL = "pip install -e '.[engrave]'"


def require_verovio():
    """The verovio module, or a MusicGPTError that says how to install it."""
    try:
        import verovio
    except ImportError as exc:
        raise MusicGPTError(f"an engraved score (SVG) needs verovio, which is not installed: {INSTALL} "
                            "(or pip install verovio)") from exc
    return verovio


def svg_pages(musicxml_path: str | Path, *, page_width: int = 2100) -> list[str]:
    """One SVG document per page of the MusicXML file's engraving."""
    path = Path(musicxml_path)
    if not PAGE_WIDTHS[0] <= page_width <= PAGE_WIDTHS[1]:
        raise MusicGPTError(f"page width {page_width} is out of range; use {PAGE_WIDTHS[0]} to "
                            f"{PAGE_WIDTHS[1]} (2100 is an A4 page at 10 units a millimetre)")
    if not path.is_file():
        raise MusicGPTError(f"{path}: no such file")
    verovio = require_verovio()
    verovio.enableLog(getattr(verovio, "LOG_OFF", False))  # no warnings on stderr; a failed load raises
    tk = verovio.toolkit()
    # its fonts: importing verovio sets their folder for the importing thread only, and a toolkit
    # made on another thread (a web app's worker) would find none and read nothing
    data = files("verovio") / "data"
    if data.is_dir():
        tk.setResourcePath(str(data))
    tk.setOptions({"pageWidth": page_width, "pageHeight": round(page_width * A4),
                   "adjustPageHeight": True, "footer": "none"})
    if not tk.loadFile(str(path)) or tk.getPageCount() < 1:
        raise MusicGPTError(f"verovio could not read {path} as MusicXML")
    return [tk.renderToSVG(page) for page in range(1, tk.getPageCount() + 1)]


def svg_paths(out_stem: str | Path, pages: int) -> list[Path]:
    """STEM.svg for one page; STEM-1.svg, STEM-2.svg, ... for several."""
    stem = Path(out_stem)
    if pages == 1:
        return [stem.with_name(stem.name + ".svg")]
    return [stem.with_name(f"{stem.name}-{k}.svg") for k in range(1, pages + 1)]


def existing_pages(out_stem: str | Path) -> list[Path]:
    """The files an engraving of STEM could replace that exist now: STEM.svg and STEM-N.svg."""
    stem = Path(out_stem)
    if not stem.parent.is_dir():
        return []
    page = re.compile(re.escape(stem.name) + r"(-[1-9][0-9]*)?\.svg")
    return sorted(p for p in stem.parent.iterdir() if page.fullmatch(p.name))


def write_svg(musicxml_path: str | Path, out_stem: Path, *, page_width: int = 2100) -> list[Path]:
    """Engrave the MusicXML file as STEM.svg (one page) or STEM-1.svg, STEM-2.svg, ... (several),
    each written atomically; return the paths written."""
    pages = svg_pages(musicxml_path, page_width=page_width)
    paths = svg_paths(out_stem, len(pages))
    check_writable(paths)  # before any page is written
    for svg, path in zip(pages, paths):
        write_text_atomic(path, svg)
    return paths
