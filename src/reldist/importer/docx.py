"""A Word document (.docx, also what Google Docs and LibreOffice export) as HTML, with mammoth.

Owns calling mammoth (imported only here, when a .docx is imported): the document's structure as
HTML (headings, bold and italic, lists, tables, links including ``HYPERLINK`` fields, footnotes),
and its embedded images written to the release's ``files/`` folder with their alt text. mammoth
does not sanitise: the links are checked by the HTML walk that reads its output.
"""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Any

from ..errors import ReleaseError

__all__ = ["docx_html"]

_SIMPLE = re.compile(r"<w:fldSimple\b([^>]*?)(/>|>(.*?)</w:fldSimple>)", re.DOTALL)
_INSTR = re.compile(r'w:instr="([^"]*)"')
_PARTS = re.compile(r"word/(document|footnotes|endnotes|header\d*|footer\d*)\.xml")


def _complex(match: re.Match[str]) -> str:
    """A ``w:fldSimple`` (which mammoth skips, text and all) as the complex field it stands for."""
    instr = _INSTR.search(match.group(1))
    code = instr.group(1) if instr else ""
    return (
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText xml:space="preserve">{code}</w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="separate"/></w:r>'
        f'{match.group(3) or ""}<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def _with_complex_fields(path: Path) -> io.BytesIO:
    """The document with every simple field written as a complex one (in memory)."""
    out = io.BytesIO()
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for item in source.infolist():
            data = source.read(item)
            if _PARTS.fullmatch(item.filename):
                data = _SIMPLE.sub(_complex, data.decode("utf-8")).encode("utf-8")
            target.writestr(item, data)
    out.seek(0)
    return out


def docx_html(path: Path, files: Path) -> tuple[str, list[str]]:
    """(HTML, mammoth's messages) for a .docx; images are saved as ``files/image-N.<ext>``."""
    import mammoth

    saved: list[str] = []

    def save(image: Any) -> dict[str, str]:
        kind = str(image.content_type or "image/png").split("/")[-1].split("+")[0] or "png"
        name = f"image-{len(saved) + 1}.{'jpg' if kind == 'jpeg' else kind}"
        files.mkdir(parents=True, exist_ok=True)
        with image.open() as data:
            (files / name).write_bytes(data.read())
        saved.append(name)
        return {"src": f"files/{name}"}

    try:
        result = mammoth.convert_to_html(
            _with_complex_fields(path), convert_image=mammoth.images.img_element(save)
        )
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise ReleaseError(f"cannot read it as a Word document ({exc})", place=str(path)) from None
    messages = [f"Word: {message.message}" for message in result.messages if message.type == "warning"]
    messages += [f"saved the image files/{name}" for name in saved]
    return str(result.value), messages
