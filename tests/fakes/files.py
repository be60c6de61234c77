"""Files and media: photos in Telegram's sizes, documents, stickers and voice notes, each under a file_id
and a file_path; getFile, and downloads under /file/bot<token>/<path>."""

from __future__ import annotations

import base64
import itertools
import mimetypes
import struct
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from tests.fakes.core import FakeCore
from tests.fakes.wire import (
    FILE_ID_INVALID,
    FILE_TOO_BIG,
    FILE_TYPE_MISMATCH,
    IMAGE_PROCESS_FAILED,
    JSON,
    MAX_DOWNLOAD,
    NOT_FOUND,
    UNAUTHORIZED,
    WRONG_FILE,
    BotAPIError,
    Params,
    Upload,
    bad,
    json_response,
)

# A 1x1 PNG: what a simulated user's photo contains unless the test gives bytes.
TINY_PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="
)
TINY_PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class StoredFile:
    file_id: str
    file_unique_id: str
    kind: str  # photo | document | voice | sticker
    data: bytes
    file_path: str
    width: int = 0
    height: int = 0
    file_name: str | None = None
    mime_type: str | None = None

    def as_file(self) -> JSON:
        return {
            "file_id": self.file_id,
            "file_unique_id": self.file_unique_id,
            "file_size": len(self.data),
            "file_path": self.file_path,
        }


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG/JPEG/GIF/WebP; None when the bytes are no image Telegram would take."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data.startswith(b"GIF8") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data) or (800, 600)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return 512, 512
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(data):
        if data[index] != 0xFF:
            index += 1
            continue
        marker = data[index + 1]
        length = int.from_bytes(data[index + 2 : index + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            height, width = struct.unpack(">HH", data[index + 5 : index + 9])
            return int(width), int(height)
        index += 2 + length
    return None


def _scaled(width: int, height: int, limit: int) -> tuple[int, int]:
    side = max(width, height)
    if side <= limit:
        return width, height
    return max(1, round(width * limit / side)), max(1, round(height * limit / side))


class Files(FakeCore):
    """The files users and the bot sent, by file_id and by file_path."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self._files: dict[str, StoredFile] = {}
        self._file_paths: dict[str, StoredFile] = {}
        self._file_numbers = itertools.count(1)

    def _photo_sizes(self, source: Upload | str | None) -> list[JSON]:
        if source is None:
            raise bad("there is no photo in the request")
        if isinstance(source, Upload):
            size = _image_size(source.data)
            if size is None:
                raise bad(IMAGE_PROCESS_FAILED)
            return self._store_photo(source.data, *size)
        if source.startswith(("http://", "https://")):
            return self._store_photo(b"", 800, 600)  # Telegram would fetch it; the fake takes it on trust
        stored = self._known_file(source, "photo")
        return [{**self._photo_size(stored), "width": stored.width, "height": stored.height}]

    def _document(self, source: Upload | str | None) -> JSON:
        if source is None:
            raise bad("there is no document in the request")
        if isinstance(source, Upload):
            return self._store_document(source.data, source.filename, source.content_type)
        if source.startswith(("http://", "https://")):
            return self._store_document(b"", source.rsplit("/", 1)[-1] or "file", None)
        return self._document_json(self._known_file(source, "document"))

    def _known_file(self, file_id: str, kind: str) -> StoredFile:
        stored = self._files.get(file_id)
        if stored is None:
            raise bad(WRONG_FILE)
        if stored.kind != kind:
            raise bad(FILE_TYPE_MISMATCH)
        return stored

    def _get_file(self, params: Params) -> JSON:
        stored = self._files.get(params.string("file_id") or "")
        if stored is None:
            raise bad(FILE_ID_INVALID)
        if len(stored.data) > MAX_DOWNLOAD:
            raise bad(FILE_TOO_BIG)
        return stored.as_file()

    def _new_file(self, kind: str, data: bytes, extension: str) -> StoredFile:
        number = next(self._file_numbers)
        prefix = {"photo": "AgAC", "document": "BQAC", "voice": "AwAC", "sticker": "CAAC"}.get(kind, "BAAC")
        folder = {"photo": "photos", "document": "documents", "voice": "voice", "sticker": "stickers"}[kind]
        stored = StoredFile(
            f"{prefix}AgIAAxkBAAI{number:08d}", f"AQAD{number:08d}", kind, data, f"{folder}/file_{number}{extension}"
        )
        self._files[stored.file_id] = stored
        self._file_paths[stored.file_path] = stored
        return stored

    def _photo_size(self, stored: StoredFile) -> JSON:
        return {"file_id": stored.file_id, "file_unique_id": stored.file_unique_id, "file_size": len(stored.data)}

    def _store_photo(self, data: bytes, width: int, height: int) -> list[JSON]:
        """Telegram keeps a photo in several sizes, smallest first, each with its own file_id."""
        limits = [limit for limit in (90, 320, 800, 1280) if limit < max(width, height)] + [2560]
        sizes = []
        for limit in limits:
            stored = self._new_file("photo", data, ".jpg")
            stored.width, stored.height = _scaled(width, height, limit)
            sizes.append({**self._photo_size(stored), "width": stored.width, "height": stored.height})
        return sizes

    def _store_document(self, data: bytes, file_name: str, content_type: str | None) -> JSON:
        extension = "." + file_name.rsplit(".", 1)[-1] if "." in file_name else ""
        stored = self._new_file("document", data, extension)
        # Telegram goes by the file name; a client's generic content type says nothing.
        given = content_type if content_type and content_type != "application/octet-stream" else None
        stored.file_name = file_name
        stored.mime_type = mimetypes.guess_type(file_name)[0] or given or "application/octet-stream"
        return self._document_json(stored)

    def _document_json(self, stored: StoredFile) -> JSON:
        return {
            "file_name": stored.file_name or stored.file_path.rsplit("/", 1)[-1],
            "mime_type": stored.mime_type or "application/octet-stream",
            "file_id": stored.file_id,
            "file_unique_id": stored.file_unique_id,
            "file_size": len(stored.data),
        }

    def file_bytes(self, file_id: str) -> bytes:
        """The content behind a file_id the bot sent or a user sent."""
        stored = self._files.get(file_id)
        if stored is None:
            raise AssertionError(f"no file {file_id!r}")
        return stored.data

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return json_response(401, BotAPIError(401, UNAUTHORIZED).body())
        stored = self._file_paths.get(request.match_info["path"])
        if stored is None:
            return json_response(404, BotAPIError(404, NOT_FOUND).body())
        content_type = mimetypes.guess_type(stored.file_path)[0] or "application/octet-stream"
        return web.Response(body=stored.data, content_type=content_type)
