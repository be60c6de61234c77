"""openpyxl's streaming worksheet, fed rows whose XML is already made (see export.XlsxWriter).

Imported only when an xlsx is written: openpyxl and lxml stay out of the bot's start-up.
"""

from __future__ import annotations

from collections.abc import Generator

from lxml.etree import fromstring
from openpyxl.worksheet._write_only import WriteOnlyWorksheet


class RowStream(WriteOnlyWorksheet):  # type: ignore[misc]
    """A write-only worksheet whose `append_xml` takes one `<row>` element as text.

    openpyxl still writes everything around the rows (views, frozen panes, the sheet's frame) and
    closes the sheet on save; only its per-cell work is skipped. This follows openpyxl 3.1's own
    `_write_rows`, which is why pyproject keeps openpyxl below 3.2.
    """

    _rows: Generator[None, str, None] | None

    def _write_rows(self) -> Generator[None, str, None]:
        xf = self._writer.xf.send(True)
        with xf.element("sheetData"):
            try:
                while True:
                    xf.write(fromstring((yield)))
            except GeneratorExit:
                pass
        self._writer.xf.send(None)

    def append_xml(self, row: str) -> None:
        self._get_writer()
        if self._rows is None:
            self._rows = self._write_rows()
            next(self._rows)
        self._rows.send(row)
