"""Text as Telegram treats it: lengths in UTF-16 units, the HTML, MarkdownV2 and Markdown parse modes
with Telegram's errors, trimming, and the entities Telegram finds by itself (links, @mentions, /commands)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.fakes.wire import JSON, PARSE_MODE_INVALID, BotAPIError, bad


def utf16_len(text: str) -> int:
    """Telegram counts lengths and offsets in UTF-16 code units."""
    return len(text) if text.isascii() else len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _cant_parse(detail: str) -> BotAPIError:
    return bad(f"can't parse entities: {detail}")


_AUTO_ENTITY = re.compile(
    r"(?P<url>\bhttps?://[^\s<>\"]+)"
    r"|(?P<bot_command>(?<![\w/@])/[A-Za-z0-9_]{1,32}(?:@[A-Za-z0-9_]{3,32})?(?![\w/]))"
    r"|(?P<mention>(?<![\w@])@[A-Za-z0-9_]{5,32}\b)"
)


def auto_entities(text: str) -> list[JSON]:
    """The entities Telegram finds by itself: links, @mentions and /commands."""
    if "/" not in text and "@" not in text:
        return []  # the common case, kept cheap
    found: list[JSON] = []
    for match in _AUTO_ENTITY.finditer(text):
        kind = match.lastgroup or "url"
        value = match.group(0).rstrip(".,;:!?)") if kind == "url" else match.group(0)
        found.append({"offset": utf16_len(text[: match.start()]), "length": utf16_len(value), "type": kind})
    return found


_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
}
_HTML_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_ENTITY = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_HTML_ATTRIBUTE = re.compile(r"""([^\s=]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")


@dataclass
class _OpenTag:
    name: str
    attributes: dict[str, str]
    start: int  # UTF-16 offset in the produced text
    language: str | None = None


def _html_entity(source: str, index: int) -> tuple[str | None, int]:
    match = _HTML_ENTITY.match(source, index)
    if match is None:
        return None, index
    body = match.group(1)
    if body[0] == "#":
        code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
        decoded = chr(code) if 0 < code <= 0x10FFFF else None
    else:
        decoded = _HTML_NAMED.get(body)  # other named entities stay as typed, like Telegram does
    return decoded, match.end()


def _html_tag_end(source: str, index: int) -> int:
    """The '>' that closes the tag starting at `index`, skipping quoted attribute values; -1 if none."""
    quote = ""
    for position in range(index + 1, len(source)):
        char = source[position]
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char == ">":
            return position
    return -1


def _html_attributes(inside: str) -> tuple[str, dict[str, str]]:
    name, _, rest = inside.strip().partition(" ")
    attributes: dict[str, str] = {}
    for match in _HTML_ATTRIBUTE.finditer(rest):
        value = (match.group(2) or "").strip("\"'")
        attributes[match.group(1).lower()] = _HTML_ENTITY.sub(_decoded_or_kept, value)
    return name.lower(), attributes


def _decoded_or_kept(match: re.Match[str]) -> str:
    return _html_entity(match.group(0), 0)[0] or match.group(0)


def _close_html_tag(tag: _OpenTag, end: int, open_tags: list[_OpenTag], entities: list[JSON]) -> None:
    css_class = tag.attributes.get("class", "")
    if tag.name == "code" and open_tags and open_tags[-1].name == "pre" and css_class.startswith("language-"):
        open_tags[-1].language = css_class.removeprefix("language-")
        return  # <pre><code class="language-x"> is one pre entity with a language
    if end <= tag.start:
        return
    entity: JSON = {"offset": tag.start, "length": end - tag.start, "type": _HTML_TAGS[tag.name]}
    if tag.name == "a":
        if not tag.attributes.get("href"):
            return
        entity["url"] = tag.attributes["href"]
    elif tag.name == "pre" and tag.language:
        entity["language"] = tag.language
    elif tag.name == "blockquote" and "expandable" in tag.attributes:
        entity["type"] = "expandable_blockquote"
    elif tag.name == "tg-emoji":
        emoji_id = tag.attributes.get("emoji-id", "")
        if not emoji_id.isdigit():
            raise _cant_parse("Invalid custom emoji identifier specified")
        entity["custom_emoji_id"] = emoji_id
    entities.append(entity)


def parse_html(source: str) -> tuple[str, list[JSON]]:
    """Telegram's HTML parse mode: the plain text and its entities, or Telegram's error."""
    out: list[str] = []
    units = 0
    open_tags: list[_OpenTag] = []
    entities: list[JSON] = []
    index = 0
    while index < len(source):
        char = source[index]
        if char == "&":
            decoded, after = _html_entity(source, index)
            if decoded is not None:
                out.append(decoded)
                units += utf16_len(decoded)
                index = after
                continue
        if char != "<":
            out.append(char)
            units += utf16_len(char)
            index += 1
            continue
        end = _html_tag_end(source, index)
        at = _byte_offset(source, index)
        if source.startswith("</", index):
            if end < 0:
                raise _cant_parse(f"Unclosed end tag at byte offset {at}")
            if not open_tags:
                raise _cant_parse(f"Unexpected end tag at byte offset {at}")
            name = source[index + 2 : end].strip().lower()
            tag = open_tags.pop()
            if name and name != tag.name:
                raise _cant_parse(f'Unmatched end tag at byte offset {at}, expected "</{tag.name}>", found "</{name}>"')
            _close_html_tag(tag, units, open_tags, entities)
        else:
            if end < 0:
                raise _cant_parse(f"Unclosed start tag at byte offset {at}")
            name, attributes = _html_attributes(source[index + 1 : end])
            if name not in _HTML_TAGS:
                raise _cant_parse(f'Unsupported start tag "{name}" at byte offset {at}')
            if name == "span" and attributes.get("class") != "tg-spoiler":
                raise _cant_parse(f'Tag "span" must have class "tg-spoiler" at byte offset {at}')
            open_tags.append(_OpenTag(name, attributes, units))
        index = end + 1
    if open_tags:
        raise _cant_parse(f'Can\'t find end tag corresponding to start tag "{open_tags[-1].name}"')
    return "".join(out), sorted(entities, key=lambda e: (e["offset"], -e["length"]))


_MD2_RESERVED = frozenset("_*[]()~`>#+-=|{}.!")
_MD2_NAMES = {
    "bold": "Bold",
    "italic": "Italic",
    "underline": "Underline",
    "strikethrough": "Strikethrough",
    "spoiler": "Spoiler",
    "code": "Code",
    "pre": "Pre",
    "text_link": "TextUrl",
    "custom_emoji": "CustomEmoji",
}
_MD2_MARKERS = (("__", "underline"), ("||", "spoiler"), ("*", "bold"), ("_", "italic"), ("~", "strikethrough"))


@dataclass
class _OpenMark:
    type: str
    start: int  # UTF-16 offset in the produced text
    at: int  # byte offset in the source, for error messages
    language: str | None = None


class _MarkdownV2:
    """Telegram's MarkdownV2: every reserved character outside an entity must be escaped."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.index = 0
        self.out: list[str] = []
        self.units = 0
        self.open: list[_OpenMark] = []
        self.entities: list[JSON] = []
        self.quote_start: int | None = None

    def parse(self) -> tuple[str, list[JSON]]:
        while self.index < len(self.source):
            self._step()
        self._end_quote()
        if self.open:
            mark = self.open[-1]
            raise _cant_parse(f"Can't find end of {_MD2_NAMES[mark.type]} entity at byte offset {mark.at}")
        return "".join(self.out), sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))

    def _emit(self, text: str) -> None:
        self.out.append(text)
        self.units += utf16_len(text)

    def _step(self) -> None:
        source, index = self.source, self.index
        char = source[index]
        top = self.open[-1] if self.open else None
        if char == "\\" and index + 1 < len(source) and 0 < ord(source[index + 1]) <= 126:
            self._emit(source[index + 1])
            self.index += 2
        elif top is not None and top.type in ("code", "pre"):
            self._inside_code(top)
        elif char == "\n":
            self._emit(char)
            self.index += 1
            if not source.startswith(">", self.index):
                self._end_quote()
        elif char not in _MD2_RESERVED:
            self._emit(char)
            self.index += 1
        elif char == ">" and (index == 0 or source[index - 1] == "\n"):
            if self.quote_start is None:
                self.quote_start = self.units
            self.index += 1
        elif top is not None and top.type in ("text_link", "custom_emoji") and char == "]":
            self._close_link(top)
        else:
            self._marker(char, top)

    def _inside_code(self, top: _OpenMark) -> None:
        if top.type == "pre" and self.source.startswith("```", self.index):
            self._close(3)
        elif top.type == "code" and self.source[self.index] == "`":
            self._close(1)
        else:
            self._emit(self.source[self.index])
            self.index += 1

    def _marker(self, char: str, top: _OpenMark | None) -> None:
        source, index = self.source, self.index
        for marker, kind in _MD2_MARKERS:
            if source.startswith(marker, index):
                if top is not None and top.type == kind:
                    self._close(len(marker))
                else:
                    self._open(kind, len(marker))
                return
        if source.startswith("```", index):
            newline = source.find("\n", index + 3)
            language = source[index + 3 : newline].strip() if newline > 0 else ""
            self._open("pre", 3 + (len(source[index + 3 : newline]) + 1 if language else 0))
            self.open[-1].language = language or None
        elif char == "`":
            self._open("code", 1)
        elif char == "[":
            self._open("text_link", 1)
        elif source.startswith("![", index):
            self._open("custom_emoji", 2)
        else:
            raise _cant_parse(f"Character '{char}' is reserved and must be escaped with the preceding '\\'")

    def _open(self, kind: str, width: int) -> None:
        self.open.append(_OpenMark(kind, self.units, _byte_offset(self.source, self.index)))
        self.index += width

    def _close(self, width: int) -> JSON | None:
        mark = self.open.pop()
        self.index += width
        if self.units <= mark.start:
            return None
        entity: JSON = {"offset": mark.start, "length": self.units - mark.start, "type": mark.type}
        if mark.language:
            entity["language"] = mark.language
        self.entities.append(entity)
        return entity

    def _close_link(self, mark: _OpenMark) -> None:
        source = self.source
        after = self.index + 1
        if not source.startswith("(", after):
            raise _cant_parse("Character ']' is reserved and must be escaped with the preceding '\\'")
        end = after + 1
        url: list[str] = []
        while end < len(source) and source[end] != ")":
            if source[end] == "\\" and end + 1 < len(source):
                end += 1
            url.append(source[end])
            end += 1
        if end >= len(source):
            raise _cant_parse(f"Can't find end of a URL at byte offset {_byte_offset(source, after + 1)}")
        entity = self._close(end + 1 - self.index)
        if entity is not None and mark.type == "text_link":
            entity["url"] = "".join(url)
        elif entity is not None:
            entity["custom_emoji_id"] = "".join(url).rpartition("id=")[2]

    def _end_quote(self) -> None:
        if self.quote_start is not None and self.units > self.quote_start:
            length = self.units - self.quote_start - (1 if self.out and self.out[-1] == "\n" else 0)
            self.entities.append({"offset": self.quote_start, "length": length, "type": "blockquote"})
        self.quote_start = None


def parse_markdown_v2(source: str) -> tuple[str, list[JSON]]:
    return _MarkdownV2(source).parse()


def parse_markdown(source: str) -> tuple[str, list[JSON]]:
    """The legacy Markdown mode: *bold*, _italic_, `code`, ```pre```, [text](url); no nesting."""
    out: list[str] = []
    entities: list[JSON] = []
    units = 0
    index = 0
    while index < len(source):
        char = source[index]
        if char == "\\" and index + 1 < len(source) and source[index + 1] in "_*`[":
            out.append(source[index + 1])
            units += 1
            index += 2
            continue
        if char not in "_*`[":
            out.append(char)
            units += utf16_len(char)
            index += 1
            continue
        opener = "```" if source.startswith("```", index) else char
        closer = {"[": "]"}.get(opener, opener)
        end = source.find(closer, index + len(opener))
        url = ""
        after = end + len(closer)
        if end >= 0 and opener == "[":
            url_end = source.find(")", after) if source.startswith("(", after) else -1
            url, after = source[after + 1 : url_end], url_end + 1
            if url_end < 0:
                end = -1
        if end < 0:
            raise _cant_parse(f"Can't find end of the entity starting at byte offset {_byte_offset(source, index)}")
        inner = source[index + len(opener) : end]
        kind = {"_": "italic", "*": "bold", "`": "code", "```": "pre", "[": "text_link"}[opener]
        if inner:
            entity: JSON = {"offset": units, "length": utf16_len(inner), "type": kind}
            if url:
                entity["url"] = url
            entities.append(entity)
        out.append(inner)
        units += utf16_len(inner)
        index = after
    return "".join(out), entities


_PARSERS: dict[str, Callable[[str], tuple[str, list[JSON]]]] = {
    "html": parse_html,
    "markdownv2": parse_markdown_v2,
    "markdown": parse_markdown,
}


def _strip_formatted(text: str, entities: list[JSON]) -> tuple[str, list[JSON]]:
    """Telegram trims leading and trailing whitespace, moving and clipping entities with the text."""
    stripped = text.strip()
    if stripped == text or not entities:
        return stripped, entities
    shift = utf16_len(text[: len(text) - len(text.lstrip())])
    total = utf16_len(stripped)
    kept: list[JSON] = []
    for entity in entities:
        start = max(0, entity["offset"] - shift)
        end = min(total, entity["offset"] + entity["length"] - shift)
        if end > start:
            kept.append({**entity, "offset": start, "length": end - start})
    return stripped, kept


def format_text(raw: str, parse_mode: str | None, explicit: Any) -> tuple[str, list[JSON]]:
    """The text as people will see it and its entities: parse_mode or explicit entities, trimmed."""
    if isinstance(explicit, list) and explicit:
        text, entities = raw, [dict(e) for e in explicit if isinstance(e, dict)]
    elif parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise bad(PARSE_MODE_INVALID)
        text, entities = parser(raw)
    else:
        text, entities = raw, []
    text, entities = _strip_formatted(text, entities)
    found = auto_entities(text)
    if found:
        entities = sorted(entities + found, key=lambda e: (e["offset"], -e["length"]))
    return text, entities
