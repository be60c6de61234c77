"""openpyxl's streaming worksheet, fed rows whose XML is already made (see export.XlsxWriter).

openpyxl still writes everything around the rows (the sheet's properties, views and frozen header,
its frame) and puts the sheet in the workbook on save; only the rows skip its per-cell work and
lxml's. The rows go to the sheet's file as ASCII, non-ASCII characters as character references:
the bytes lxml wrote for them. Imported only when an xlsx is written. This follows openpyxl 3.1's
own `WorksheetWriter.get_stream` and `WriteOnlyWorksheet._write_rows`, hence pyproject's bound.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any, BinaryIO

from lxml.etree import xmlfile
from openpyxl.worksheet._write_only import WriteOnlyWorksheet
from openpyxl.worksheet._writer import WorksheetWriter
from openpyxl.xml.constants import SHEET_MAIN_NS


class RowFileWriter(WorksheetWriter):  # type: ignore[misc]
    """openpyxl's sheet writer, on a file opened here so rows can be written to it directly."""

    handle: BinaryIO

    def get_stream(self) -> Generator[Any, Any, None]:
        with (
            open(self.out, "wb") as self.handle,
            xmlfile(self.handle) as xf,
            xf.element("worksheet", xmlns=SHEET_MAIN_NS),
        ):
            try:
                while True:
                    element = yield
                    if element is True:
                        yield xf
                    elif element is not None:
                        xf.write(element)
            except GeneratorExit:
                pass


class RowStream(WriteOnlyWorksheet):  # type: ignore[misc]
    """A write-only worksheet whose `append_xml` takes one `<row>` element as text."""

    _rows: Generator[None, str, None] | None
    _writer: RowFileWriter | None

    def _get_writer(self) -> None:
        if self._writer is None:
            writer = self._writer = RowFileWriter(self)
            writer.write_top()

    def _write_rows(self) -> Generator[None, str, None]:
        writer = self._writer
        assert writer is not None
        xf = writer.xf.send(True)
        with xf.element("sheetData"):
            xf.flush()  # the start tag into the file before the first row
            write = writer.handle.write
            try:
                while True:
                    write((yield).encode("ascii", "xmlcharrefreplace"))
            except GeneratorExit:
                pass
        writer.xf.send(None)

    def append_xml(self, row: str) -> None:
        self._get_writer()
        if self._rows is None:
            self._rows = self._write_rows()
            next(self._rows)
        self._rows.send(row)
