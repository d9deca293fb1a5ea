"""Reading `Pulumi.yaml` and `Pulumi.<stack>.yaml` as the Pulumi CLI reads them: what the program receives.

The CLI parses both files with Go's gopkg.in/yaml.v3 into untyped Go values, writes them back as YAML, reads
them again into its config types, and hands each config value to the program as text: scalars as text,
objects and lists as JSON. This module reproduces that, so that the offline preview sees what `pulumi up`
would see, and refuses what the CLI refuses, with one message naming the file, the key and what is allowed.
It turns files into {config key: text} and nothing more: `offline.py` assembles a stack's config from them,
`settings.py` validates it. No Pulumi import, and no recursion: documents may be nested 10000 deep.

PyYAML only parses here (libyaml's C parser when present: yaml.v3 is a Go port of libyaml); the nodes, the
resolution of plain scalars, tags, anchors, merge keys and the limits follow yaml.v3's own source. Sources:
yaml.v3 (branch v3) resolve.go, decode.go, scannerc.go, parserc.go, encode.go, yaml.go; pulumi sdk/go/common
workspace/loaders.go and project.go, resource/config/object.go, value.go, plaintext.go and key.go, and
pkg/workspace/config.go (project defaults); Go's encoding/json, strconv and time packages.

| in the file | the program receives | source |
|---|---|---|
| `true` `True` `TRUE` `false` `False` `FALSE` | `true`/`false`; JSON booleans inside objects | resolve.go |
| `yes` `no` `on` `off` `y` `n` | text, as written: YAML 1.1 booleans are gone | resolve.go |
| `~` `null` `Null` `NULL`, nothing | at the top: "" (the CLI warns); inside objects: null | resolve.go, loaders.go |
| `12` `+12` `-0x1F` `0o17` `0b101` | whole numbers (Go's ParseInt, base from the prefix) | resolve.go |
| `0777`, `1_000` | 511 and 1000: YAML 1.1 octal, and every `_` dropped, kept for compatibility | resolve.go |
| `08`; whole numbers beyond 64 bits | floats: 8, 1e20 as 100000000000000000000; beyond floats: the text | resolve.go |
| `1.5` `1e3` `.5` `-0.0` | Go's JSON numbers 1.5, 1000, 0.5, 0 (the YAML round trip makes -0 an int) | encoding/json |
| `.inf` `-.inf` `.nan` | refused: the CLI cannot pass them (json: unsupported value) | object.go |
| `22:30` | the text `22:30`: no base-60 numbers | resolve.go |
| `2024-05-01`, `2001-12-14t21:59:43-05:00` | Go's time text: `2024-05-01 00:00:00 +0000 UTC` | resolve.go, object.go |
| quoted, `|` and `>` scalars, `!!str` | text | decode.go |
| `!!int` `!!float` `!!bool` `!!null` `!!timestamp` | that type; refused when the value is not one | resolve.go |
| `!!binary` | the decoded text; refused when not base64, or not UTF-8 | decode.go |
| other tags: `!!set`, `!!map`, `!x` | ignored: scalars are text, `!!set {a, b}` maps a and b to null | decode.go |
| anchors `&a`, aliases `*a` | expanded; unknown ones, self-inclusion, excessive aliasing refused | decode.go |
| merge keys `<<` | a mapping's own keys win, then the merged mappings in order | decode.go |
| a key given twice (`a` and `"a"` too) | refused | decode.go |
| non-text keys inside values | Go's text of them: `1`, `true`, `<nil>`, `1e+06` | object.go (fmt %v) |
| non-text keys at the top or in `config` | refused | project.go, key.go |
| objects and lists | JSON: keys sorted, no spaces, `<` `>` `&` escaped | plaintext.go, encoding/json |
| more than 10000 nested levels | refused: exceeded max depth of 10000 | scannerc.go |
| a second document (`---`) | ignored | yaml.go |
| `%YAML 1.2` | refused: found incompatible YAML document | parserc.go |
| a UTF-8 byte-order mark; UTF-16 with one | read | loaders.go, readerc.go |

Stricter than the CLI, on purpose: files over 1 MiB; keys that only collide once resolved (`1` and `0x1`,
`x` and `<project>:x`), of which the CLI silently keeps one; a quoted `'<<'` key, which the CLI's round trip
silently turns into a merge key; `!!binary` data that is not UTF-8 text. Time
zones are named as the CLI names them where the local zone is UTC (CI, containers): `+00:00` prints as UTC,
`-05:00` as `-0500 -0500`. The depth limit counts a little more than yaml.v3 does: a list written at its
key's indentation, and a `key: value` pair inside `[...]`, are levels here.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import math
import re
from collections.abc import Callable, Generator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml

from infra.settings import SettingsError

MAX_FILE_BYTES = 1 << 20
MAX_DEPTH = 10_000  # yaml.v3 scannerc.go: max_flow_level and max_indents
_INT64 = 1 << 63
_UINT64 = 1 << 64


class StackFileError(SettingsError):
    """A stack or project file the CLI would refuse, or that no setting can hold (exit status 2)."""


@dataclass(frozen=True)
class ConfigValue:
    """One config value as the CLI hands it to the program."""

    text: str
    """The text the program receives; for an encrypted value (`secure:`), its ciphertext."""
    secure: bool = False
    """Encrypted, or an object holding an encrypted value: only the CLI can decrypt it."""
    object: bool = False
    """JSON text of an object or a list."""
    encrypted: tuple[str, ...] = ()
    """For an object: where its encrypted values are, as key paths below it (`.token`, `[0].key`)."""


@dataclass(frozen=True)
class Declaration:
    """One config key declared in Pulumi.yaml."""

    secret: bool
    default: ConfigValue | None
    """What the program receives when the stack file does not set the key (`default:` or `value:`)."""


@dataclass(frozen=True)
class Project:
    name: str
    config: dict[str, Declaration]
    """Full config key ('agent-platform:catalog') -> its declaration."""


# --- Messages


_Path = tuple[Any, str | int] | None  # a linked list (parent, key): no copying on the way down


class _Problem(Exception):
    def __init__(self, path: _Path, problem: str, allowed: str = "", line: int | None = None) -> None:
        super().__init__(problem)
        self.path, self.problem, self.allowed, self.line = path, problem, allowed, line


def _parts(path: _Path) -> list[str | int]:
    parts: list[str | int] = []
    while path is not None:
        path, part = path
        parts.append(part)
    return parts[::-1]


def _clip(text: str, limit: int = 60) -> str:
    """A key or value fit for a one-line message: control and invisible characters escaped, long text cut."""
    shown = text if len(text) <= limit else text[: limit - 3] + "..."
    return shown if shown.isprintable() else json.dumps(shown)[1:-1]


def _key_path(parts: list[str | int]) -> str:
    """`pulumi config set --path` syntax, like the settings' messages: a.b[0], a["odd key"]."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.isascii() and part.isidentifier():
            out += f".{part}"
        else:
            out += f"[{json.dumps(part if len(part) <= 60 else part[:57] + '...')}]"
    return out.lstrip(".")


def _message(shown: str, where: str, problem: str, allowed: str, line: int | None) -> str:
    at = f" (line {line})" if line else ""
    where = where if len(where) <= 120 else where[:117] + "..."  # a path 10000 levels deep
    return f"{shown}: {where + ': ' if where else ''}{problem}{at}{'; allowed: ' + allowed if allowed else ''}"


# --- Parsing: PyYAML's events into yaml.v3's nodes


_SCALAR, _SEQ, _MAP, _ALIAS = range(4)
_UNRESOLVED = object()


class _Node:
    """A yaml.v3 node. Its tag is yaml.v3's: the explicit one, else the default or resolved one, short form."""

    __slots__ = ("alias", "children", "kind", "line", "resolved", "tag", "value")

    def __init__(self, kind: int, tag: str, value: str, line: int) -> None:
        self.kind, self.tag, self.value, self.line = kind, tag, value, line
        self.children: list[_Node] = []  # a mapping's keys and values, alternating
        self.alias: _Node | None = None
        self.resolved: Any = _UNRESOLVED  # a plain scalar's value, resolved once


def _short_tag(tag: str) -> str:
    return "!!" + tag[len("tag:yaml.org,2002:") :] if tag.startswith("tag:yaml.org,2002:") else tag


def _parser(data: bytes) -> Any:
    """libyaml's parser when PyYAML has it, else PyYAML's Python one: the same events, without recursion."""
    try:
        from yaml._yaml import CParser

        return CParser(data)
    except ImportError:  # PyYAML built without libyaml

        class _Events(yaml.reader.Reader, yaml.scanner.Scanner, yaml.parser.Parser):
            def __init__(self, stream: bytes) -> None:
                yaml.reader.Reader.__init__(self, stream)
                yaml.scanner.Scanner.__init__(self)
                yaml.parser.Parser.__init__(self)

        return _Events(data)


def _compose(data: bytes) -> _Node | None:
    """The first document's nodes; yaml.v3's Unmarshal reads one document and ignores the rest."""
    parser = _parser(data)
    anchors: dict[str, _Node] = {}
    open_nodes: list[tuple[_Node, bool, bool]] = []  # (node, a flow collection?, deepened the indentation?)
    indents: list[int] = []  # columns of the open block collections that deepened the indentation
    flow = 0
    root: _Node | None = None
    while parser.check_event():
        event: Any = parser.get_event()
        kind, line = type(event).__name__, event.start_mark.line + 1
        if kind == "DocumentStartEvent":
            if event.version is not None and tuple(event.version) != (1, 1):
                raise _Problem(None, "found incompatible YAML document (a %YAML directive other than 1.1)",
                               "no %YAML directive, or %YAML 1.1", line)  # fmt: skip
            continue
        if kind == "DocumentEndEvent":
            break
        if kind in ("SequenceEndEvent", "MappingEndEvent"):
            _, in_flow, deepened = open_nodes.pop()
            flow -= in_flow
            if deepened:
                indents.pop()
            continue
        if kind not in ("ScalarEvent", "AliasEvent", "SequenceStartEvent", "MappingStartEvent"):
            continue
        node = _event_node(kind, event, line, anchors)
        if root is None:
            root = node
        else:
            open_nodes[-1][0].children.append(node)
        if event.anchor is not None and kind != "AliasEvent":
            anchors[event.anchor] = node  # before its children: yaml.v3 lets an alias reach its own anchor
        if kind in ("SequenceStartEvent", "MappingStartEvent"):
            in_flow = bool(event.flow_style)
            column = event.start_mark.column
            deepened = not in_flow and (not indents or column > indents[-1])
            flow += in_flow
            if deepened:
                indents.append(column)
            open_nodes.append((node, in_flow, deepened))
            if flow > MAX_DEPTH or len(indents) > MAX_DEPTH:
                raise _Problem(None, f"is nested more than {MAX_DEPTH} levels deep (exceeded max depth of "
                               f"{MAX_DEPTH})", f"at most {MAX_DEPTH} nested lists and mappings", line)  # fmt: skip
    return root


def _event_node(kind: str, event: Any, line: int, anchors: dict[str, _Node]) -> _Node:
    """yaml.v3 parser.node(): an explicit tag wins (`!` alone is no tag); quoted scalars are !!str, a plain
    `<<` is a merge key, any other plain scalar gets the tag it resolves to."""
    if kind == "AliasEvent":
        target = anchors.get(event.anchor)
        if target is None:
            name = _clip(event.anchor)
            raise _Problem(None, f"uses the unknown anchor '{name}' (*{name})", "aliases of anchors defined "
                           "before them (&name)", line)  # fmt: skip
        node = _Node(_ALIAS, "", event.anchor, line)
        node.alias = target
        return node
    explicit = event.tag not in (None, "!")
    if kind == "SequenceStartEvent":
        return _Node(_SEQ, _short_tag(event.tag) if explicit else "!!seq", "", line)
    if kind == "MappingStartEvent":
        return _Node(_MAP, _short_tag(event.tag) if explicit else "!!map", "", line)
    if explicit:
        return _Node(_SCALAR, _short_tag(event.tag), event.value, line)
    if event.style not in (None, ""):  # quoted, literal or folded
        return _Node(_SCALAR, "!!str", event.value, line)
    if event.value == "<<":
        return _Node(_SCALAR, "!!merge", event.value, line)
    tag, value = _resolve("", event.value)
    node = _Node(_SCALAR, tag, event.value, line)
    node.resolved = value
    return node


# --- yaml.v3 resolve.go: what a scalar's text means


@dataclass(frozen=True)
class GoTime:
    """A Go time.Time parsed from a YAML timestamp, kept as written (wall clock and offset)."""

    year: int
    month: int
    day: int
    hour: int = 0
    minute: int = 0
    second: int = 0
    nanosecond: int = 0
    offset: int = 0
    """Seconds east of UTC; 0 is UTC."""

    def text(self) -> str:
        """time.Time.String(): `2006-01-02 15:04:05.999999999 -0700 MST` (a fixed offset is its own name)."""
        fraction = f".{self.nanosecond:09d}".rstrip("0") if self.nanosecond else ""
        minutes = abs(self.offset) // 60
        zone = f"{'-' if self.offset < 0 else '+'}{minutes // 60:02d}{minutes % 60:02d}"
        return (f"{self.year:04d}-{self.month:02d}-{self.day:02d} {self.hour:02d}:{self.minute:02d}:"
                f"{self.second:02d}{fraction} {zone} {'UTC' if self.offset == 0 else zone}")  # fmt: skip

    def rfc3339(self) -> str:
        """time.RFC3339Nano, as json.Marshal writes a time."""
        fraction = f".{self.nanosecond:09d}".rstrip("0") if self.nanosecond else ""
        minutes = abs(self.offset) // 60
        zone = "Z" if self.offset == 0 else f"{'-' if self.offset < 0 else '+'}{minutes // 60:02d}:{minutes % 60:02d}"
        return (f"{self.year:04d}-{self.month:02d}-{self.day:02d}T{self.hour:02d}:{self.minute:02d}:"
                f"{self.second:02d}{fraction}{zone}")  # fmt: skip


class _Mismatch(Exception):
    """An explicit tag the value does not fit (resolve.go's deferred check)."""


_HINTS = {**dict.fromkeys("+-", "S"), **dict.fromkeys("0123456789", "D"), **dict.fromkeys("yYnNtTfFoO~", "M"), ".": "."}
_SPECIAL: dict[str, tuple[str, Any]] = {
    **dict.fromkeys(("true", "True", "TRUE"), ("!!bool", True)),
    **dict.fromkeys(("false", "False", "FALSE"), ("!!bool", False)),
    **dict.fromkeys(("", "~", "null", "Null", "NULL"), ("!!null", None)),
    **dict.fromkeys((".nan", ".NaN", ".NAN"), ("!!float", math.nan)),
    **dict.fromkeys((".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF"), ("!!float", math.inf)),
    **dict.fromkeys(("-.inf", "-.Inf", "-.INF"), ("!!float", -math.inf)),
    "<<": ("!!merge", "<<"),
}
_RESOLVABLE = frozenset({"", "!!str", "!!bool", "!!int", "!!float", "!!null", "!!timestamp"})
_YAML_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_GO_DECIMAL = re.compile(r"[+-]?(?=[0-9_]*\.?[0-9_]*[0-9])[0-9_]*(\.[0-9_]*)?([eE][+-]?[0-9][0-9_]*)?")


def _resolve(tag: str, text: str) -> tuple[str, Any]:
    """resolve.go resolve(): the resolved tag and value of a scalar's text under a (short) tag."""
    if tag not in _RESOLVABLE:
        return tag, text  # !!binary, !!merge, !!set, !x...: the text, as is
    rtag, value = _resolve_text(tag, text)
    if tag in ("", rtag, "!!str"):
        return rtag, value
    if tag == "!!float" and rtag == "!!int" and -_INT64 <= value < _INT64:
        return "!!float", float(value)
    raise _Mismatch(f"cannot decode {rtag} `{_clip(text, 20)}` as a {tag}")


def _resolve_text(tag: str, text: str) -> tuple[str, Any]:
    hint = _HINTS.get(text[:1], "N" if not text else None)
    if hint is None or tag == "!!str":
        return "!!str", text
    if text in _SPECIAL:
        return _SPECIAL[text]
    if hint == ".":
        number = _go_parse_float(text)
        if number is not None:
            return "!!float", number
    elif hint in "DS":
        if tag in ("", "!!timestamp"):
            when = _parse_timestamp(text)
            if when is not None:
                return "!!timestamp", when
        plain = text.replace("_", "")
        whole = _go_parse_int(plain)
        if whole is None:
            whole = _go_parse_uint(plain, 0, _UINT64)
        if whole is not None:
            return "!!int", whole
        if _YAML_FLOAT.fullmatch(plain):
            number = _finite(float(plain))
            if number is not None:
                return "!!float", number
        # resolve.go's own 0b/-0b/0o/-0o fallbacks follow here, but ParseInt with base 0 already read those
        # prefixes: they can only fail where ParseInt failed (beyond 64 bits).
    return "!!str", text


def _finite(number: float) -> float | None:
    """strconv.ParseFloat fails (ErrRange) where Python's float() gives an infinity."""
    return number if math.isfinite(number) else None


def _go_parse_uint(text: str, base: int, limit: int) -> int | None:
    """strconv.ParseUint(text, 0, 64) without underscores (resolve.go removed them): a base prefix 0x, 0o,
    0b, a leading 0 for octal; None on a syntax or range error. Stops at the first overflow, so a number
    thousands of digits long costs nothing (and never meets Python's int-from-text limit)."""
    if not text:
        return None
    if base == 0:
        base = 10
        if text[0] == "0":
            prefix = text[1:2].lower()
            if len(text) >= 3 and prefix in ("b", "o", "x"):
                base, text = {"b": 2, "o": 8, "x": 16}[prefix], text[2:]
            else:
                base, text = 8, text[1:]
    number = 0
    for char in text:
        digit = int(char, 36) if char.isascii() and char.isalnum() else 99
        if digit >= base:
            return None
        number = number * base + digit
        if number >= limit:
            return None
    return number


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64): an optional sign, then ParseUint; None outside int64."""
    negative = text[:1] == "-"
    digits = text[1:] if text[:1] in ("+", "-") else text
    number = _go_parse_uint(digits, 0, _UINT64)
    if number is None or number > _INT64 - (not negative):
        return None
    return -number if negative else number


def _underscore_ok(text: str) -> bool:
    """strconv's underscoreOK: underscores only between digits (or after a base prefix)."""
    saw, i = "^", 0
    if text[:1] in ("+", "-"):
        text = text[1:]
    hexadecimal = False
    if len(text) >= 2 and text[0] == "0" and text[1].lower() in "box":
        i, saw, hexadecimal = 2, "0", text[1].lower() == "x"
    for char in text[i:]:
        if "0" <= char <= "9" or (hexadecimal and char.lower() in "abcdef"):
            saw = "0"
        elif char == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


def _go_parse_float(text: str) -> float | None:
    """strconv.ParseFloat(text, 64) for the decimal text resolve.go gives it (it starts with '.'), where Go
    accepts underscores between digits."""
    if not _GO_DECIMAL.fullmatch(text) or ("_" in text and not _underscore_ok(text)):
        return None
    return _finite(float(text.replace("_", "")))


_DATE = r"([0-9]{4})-(?>([0-9][0-9]?))-(?>([0-9][0-9]?))"
_CLOCK = r"(?>([0-9][0-9]?)):(?>([0-9][0-9]?)):(?>([0-9][0-9]?))(?:[.,]([0-9]+))?"
_TIMESTAMPS = (  # resolve.go allowedTimestampFormats, as Go's time.Parse reads them (getnum: 1 or 2 digits)
    re.compile(_DATE + "[Tt]" + _CLOCK + r"(Z|[+-][0-9]{2}:[0-9]{2})"),  # 2006-1-2T15:4:5.999999999Z07:00
    re.compile(_DATE + " " + _CLOCK),  # 2006-1-2 15:4:5.999999999 (UTC)
    re.compile(_DATE),  # 2006-1-2 (UTC)
)


def _parse_timestamp(text: str) -> GoTime | None:
    """resolve.go parseTimestamp(): four layouts, with time.Parse's range checks."""
    if not re.match(r"[0-9]{4}-", text):
        return None
    for layout in _TIMESTAMPS:
        match = layout.fullmatch(text)
        if match is None:
            continue
        fields = match.groups()
        year, month, day = (int(f) for f in fields[:3])
        hour, minute, second = (int(f) for f in fields[3:6]) if len(fields) > 3 else (0, 0, 0)
        nanosecond = int((fields[6] or "0")[:9].ljust(9, "0")) if len(fields) > 6 else 0
        offset = 0
        if len(fields) > 7 and fields[7] != "Z":
            hours, minutes = int(fields[7][1:3]), int(fields[7][4:6])
            if hours > 24 or minutes > 60:  # time.Parse allows 24 hours and 60 minutes, oddly
                return None
            offset = (hours * 60 + minutes) * 60 * (-1 if fields[7][0] == "-" else 1)
        leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
        days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
        if 1 <= month <= 12 and 1 <= day <= days[month - 1] and hour < 24 and minute < 60 and second < 60:
            return GoTime(year, month, day, hour, minute, second, nanosecond, offset)
        return None
    return None


# --- yaml.v3 decode.go: unmarshalling the nodes into interface{}, as the CLI does


_Key = tuple[str, Any]  # a Go map key with its type: ("str", "a"), ("int", 1), ("null", None)...


class _GoMap:
    """A decoded mapping: Go's map[string]interface{} when every key is text, else map[interface{}]..."""

    __slots__ = ("entries", "labels", "string_keyed")

    def __init__(self, string_keyed: bool) -> None:
        self.string_keyed = string_keyed
        self.entries: dict[_Key, Any] = {}
        self.labels: dict[_Key, tuple[str, int]] = {}
        """Each key as written, and its line: for messages."""

    def get(self, name: str) -> Any:
        return self.entries.get(("str", name))


_ANY, _STR = "interface{}", "string"  # what a node is decoded into; or a _GoMap, to merge into it
_Into = str | _GoMap
_Request = tuple[_Node, _Into, _Path]
_Result = tuple[bool, Any]  # (set it?, the value), like yaml.v3's `good`


def _allowed_alias_ratio(decodes: int) -> float:
    """decode.go allowedAliasRatio: 99% of a small document may come from aliases, 10% of a large one."""
    if decodes <= 400_000:
        return 0.99
    if decodes >= 4_000_000:
        return 0.10
    return 0.99 - 0.89 * (decodes - 400_000) / 3_600_000


def _typed(value: Any, path: _Path, line: int) -> _Key:
    if isinstance(value, (_GoMap, list)):
        raise _Problem(path, "is a list or a mapping used as a key (invalid map key)", "text keys", line)
    if value is None:
        return ("null", None)
    kind = {bool: "bool", int: "int", float: "float", str: "str", GoTime: "time"}[type(value)]
    return (kind, value)


def _short_tag_of(node: _Node) -> str:
    return node.alias.tag if node.kind == _ALIAS and node.alias is not None else node.tag


class _Decoder:
    """decode.go's decoder into interface{}, as a loop over generators (a deep document costs heap, not
    stack), counting decodes and alias expansions exactly as yaml.v3 does for its excessive-aliasing check."""

    def __init__(self) -> None:
        self.decodes = 1  # yaml.v3 counts the document node
        self.aliased = 0
        self.alias_depth = 0
        self.expanding: set[_Node] = set()
        self.merged: set[_Key] | None = None  # decode.go mergedFields

    def decode(self, root: _Node) -> Any:
        stack: list[Generator[_Request, _Result, _Result]] = [self._unmarshal(root, _ANY, None)]
        sent: Any = None
        while stack:
            try:
                request = stack[-1].send(sent)
            except StopIteration as done:
                stack.pop()
                sent = done.value
                continue
            stack.append(self._unmarshal(*request))
            sent = None
        return sent[1]

    def _unmarshal(self, node: _Node, into: _Into, path: _Path) -> Generator[_Request, _Result, _Result]:
        self.decodes += 1
        if self.alias_depth:
            self.aliased += 1
        if (
            self.aliased > 100
            and self.decodes > 1000
            and self.aliased / self.decodes > _allowed_alias_ratio(self.decodes)
        ):
            raise _Problem(path, "expands aliases (*name) so much that the document contains excessive aliasing, "
                           "which the Pulumi CLI refuses", "aliases that make up less of the document than yaml.v3 "
                           "allows (99% of a small one, 10% of a large one)", node.line)  # fmt: skip
        if node.kind == _ALIAS:
            assert node.alias is not None
            if node in self.expanding:
                raise _Problem(path, f"anchor '{_clip(node.value)}' value contains itself", "an alias outside the "
                               "value it names", node.line)  # fmt: skip
            self.expanding.add(node)
            self.alias_depth += 1
            result = yield node.alias, into, path
            self.alias_depth -= 1
            self.expanding.discard(node)
            return result
        if node.kind == _SCALAR:
            return self._scalar(node, into, path)
        if node.kind == _SEQ:
            if into != _ANY:
                raise _Problem(path, "is a list used as a key (invalid map key)", "text keys", node.line)
            items = []
            for index, child in enumerate(node.children):
                good, item = yield child, _ANY, (path, index)
                if good:
                    items.append(item)
            return True, items
        return (yield from self._mapping(node, into, path))

    def _scalar(self, node: _Node, into: _Into, path: _Path) -> _Result:
        tag, value = node.tag, node.resolved
        if tag == "!!str":
            value = node.value
        elif tag == "!!merge":
            value = node.value  # a plain `<<` that is not a key is the text "<<"
        elif value is _UNRESOLVED:
            tag, value = self._explicit(node, path)
        if into == _ANY:
            return True, value
        if value is None:  # a null key of a text-keyed mapping (merged into it): skipped, as yaml.v3 does
            return False, None
        return True, value if tag in ("!!str", "!!binary") else node.value

    @staticmethod
    def _explicit(node: _Node, path: _Path) -> tuple[str, Any]:
        """A scalar with an explicit tag: resolved under it, or refused; !!binary decoded."""
        try:
            tag, value = _resolve(node.tag, node.value)
        except _Mismatch as exc:
            raise _Problem(path, f"is tagged {node.tag}, which its value is not ({exc})",
                           f"a value of type {node.tag}, or no tag", node.line) from None  # fmt: skip
        if tag == "!!binary":
            try:  # Go's base64.StdEncoding ignores line breaks, like the YAML spec's !!binary
                data = base64.b64decode(value.replace("\r", "").replace("\n", ""), validate=True)
            except (binascii.Error, ValueError):
                raise _Problem(path, "is tagged !!binary but is not base64 (!!binary value contains invalid "
                               "base64 data)", "base64 text, or no tag", node.line) from None  # fmt: skip
            try:
                value = data.decode("utf-8")
            except UnicodeDecodeError:
                raise _Problem(path, "is !!binary data that is not UTF-8 text, which no setting can hold",
                               "base64 of UTF-8 text, or the text itself", node.line) from None  # fmt: skip
        return tag, value

    def _mapping(self, node: _Node, into: _Into, path: _Path) -> Generator[_Request, _Result, _Result]:
        pairs = list(zip(node.children[0::2], node.children[1::2], strict=True))
        seen: dict[tuple[int, str], _Node] = {}
        for key_node, _ in pairs:
            first = seen.setdefault((key_node.kind, key_node.value), key_node)
            if first is not key_node:
                raise _Problem(path, f"the key '{_clip(key_node.value)}' is given twice (lines {first.line} and "
                               f"{key_node.line})", "each key once")  # fmt: skip
        if isinstance(into, _GoMap):
            target = into  # a merge: the merged mapping's keys go into the mapping that merges it
        elif into == _ANY:
            target = _GoMap(all(_short_tag_of(k) in ("!!str", "!!merge") for k, _ in pairs))
        else:
            raise _Problem(path, "is a mapping used as a key (invalid map key)", "text keys", node.line)
        key_into = _STR if target.string_keyed else _ANY
        merged, self.merged = self.merged, None
        merge_value: _Node | None = None
        for key_node, value_node in pairs:
            if key_node.kind == _SCALAR and key_node.value == "<<":
                if key_node.tag == "!!merge":
                    merge_value = value_node
                    continue
                # The CLI writes the file back plain (resolve.go gives "<<" no hint) and reads it again: a
                # quoted "<<" key becomes a merge key on the way.
                raise _Problem((path, "<<"), "is a quoted '<<' key, which the Pulumi CLI turns into a merge key "
                               "when it writes the file back and reads it again", "another key name",
                               key_node.line)  # fmt: skip
            key_path = (path, key_node.value)
            good, key = yield key_node, key_into, key_path
            if not good:
                continue
            typed = ("str", key) if key_into == _STR else _typed(key, key_path, key_node.line)
            if merged is not None:
                if typed in merged:
                    continue  # a merged key the mapping (or an earlier merged mapping) already has
                merged.add(typed)
            _, value = yield value_node, _ANY, key_path
            if typed in target.entries:  # yaml.v3 would keep the last of `1` and `0x1`: refused instead
                first_label, first_line = target.labels[typed]
                raise _Problem(path, f"the key '{_clip(key_node.value)}' is given twice, as '{_clip(first_label)}' "
                               f"(line {first_line}) and '{_clip(key_node.value)}' (line {key_node.line})",
                               "each key once")  # fmt: skip
            target.entries[typed] = value
            target.labels[typed] = (key_node.value, key_node.line)
        self.merged = merged
        if merge_value is not None:
            yield from self._merge(pairs, merge_value, target, path)
        return True, target if into == _ANY else None

    def _merge(
        self, pairs: list[tuple[_Node, _Node]], value: _Node, target: _GoMap, path: _Path
    ) -> Generator[_Request, _Result, None]:
        """decode.go merge(): the mapping's own keys win, then each merged mapping in order."""
        saved = self.merged
        if saved is None:
            own: set[_Key] = set()
            self.merged = own
            for key_node, _ in pairs:  # yaml.v3 decodes the keys once more, and counts them
                good, key = yield key_node, _ANY, (path, key_node.value)
                if good:
                    own.add(_typed(key, path, key_node.line))
            self.merged = own
        items = value.children if value.kind == _SEQ else [value]
        for item in items:
            if (item.alias or item).kind != _MAP:
                raise _Problem(path, "has a merge key (<<) whose value is not a mapping (map merge requires map "
                               "or sequence of maps as the value)", "<<: *anchor of a mapping, or a list of "
                               "them", value.line)  # fmt: skip
            yield item, target, path
        self.merged = saved


# --- Files


def _read(path: Path, shown: str, where: Callable[[list[str | int]], str]) -> Any:
    """A file's first document, decoded as yaml.v3 decodes it into interface{}."""
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise StackFileError(f"{shown}: cannot be read ({exc.strerror})") from None
    if len(data) > MAX_FILE_BYTES:
        raise StackFileError(f"{shown}: is larger than 1 MiB; allowed: a smaller file (the offline preview reads "
                             "stack files up to 1 MiB; real ones are a few KB)")  # fmt: skip
    if data.startswith(b"\xef\xbb\xbf"):  # loaders.go readFileStripUTF8BOM
        data = data[3:]
    try:
        root = _compose(data)
        doc = None if root is None else _Decoder().decode(root)
        _check_written_depth(doc)
        return doc
    except _Problem as problem:
        raise StackFileError(_message(shown, where(_parts(problem.path)), problem.problem, problem.allowed,
                                      problem.line)) from None  # fmt: skip
    except yaml.reader.ReaderError as exc:
        if "control" in str(exc.reason) or "special" in str(exc.reason):  # libyaml's and PyYAML's words
            raise StackFileError(f"{shown}: holds the control character U+{exc.character:04X} at byte {exc.position}, "
                                 "which YAML does not allow; allowed: printable text") from None  # fmt: skip
        raise StackFileError(f"{shown}: is not UTF-8 text ({exc.reason} at byte {exc.position}); allowed: a YAML "
                             "file saved as UTF-8 (or UTF-16 with a byte-order mark)") from None  # fmt: skip
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f" at line {mark.line + 1}" if mark is not None else ""
        reason = " ".join(str(getattr(exc, "problem", None) or exc).split())
        raise StackFileError(f"{shown}: is not valid YAML{line}: {reason}") from None


def _check_written_depth(doc: Any) -> None:
    """The CLI writes the decoded document back as block YAML and parses that again (loaders.go): each
    non-empty mapping and list, aliases expanded, is then one indentation level, and yaml.v3 allows 10000."""
    todo: list[tuple[Any, int, _Path]] = [(doc, 1, None)]
    while todo:
        value, depth, path = todo.pop()
        children: list[tuple[Any, _Path]]
        if isinstance(value, _GoMap) and value.entries:
            children = [(child, (path, value.labels[key][0])) for key, child in value.entries.items()]
        elif isinstance(value, list) and value:
            children = [(child, (path, index)) for index, child in enumerate(value)]
        else:
            continue
        if depth > MAX_DEPTH:
            raise _Problem(path, f"is nested more than {MAX_DEPTH} levels deep once the Pulumi CLI writes the file "
                           f"back as block YAML to read it again (exceeded max depth of {MAX_DEPTH})", "at most "
                           f"{MAX_DEPTH} nested lists and mappings, counting the file's own two levels")  # fmt: skip
        todo.extend((child, depth + 1, at) for child, at in children)


def _text_keys(mapping: _GoMap, path: _Path) -> None:
    """Keys at the top of a file and in its `config` must be text (SimplifyMarshalledValue, ParseKey)."""
    if mapping.string_keyed:
        return
    for key, (label, line) in mapping.labels.items():
        if key[0] != "str":
            raise _Problem(path, f"has the key '{_clip(label)}', which is not text (it reads as {key[0]}: "
                           "expected only string keys)", "text keys; quote it", line)  # fmt: skip


def _config_key(key: str, project: str, path: _Path, line: int) -> str:
    """key.go ParseKey after loaders.go namespaced the project's own keys."""
    parts = key.split(":")
    if len(parts) == 1:
        return f"{project}:{key}"
    if len(parts) == 2:
        return key
    if len(parts) == 3 and parts[1] == "config":  # the old <namespace>:config:<name> form
        return f"{parts[0]}:{parts[2]}"
    raise _Problem(path, f"has the key '{_clip(key)}', which is not a config key (could not parse it as a "
                   "configuration key)", "<namespace>:<name>, or <name> for this project's keys", line)  # fmt: skip


def read_stack(path: Path, shown: str, project: str) -> dict[str, ConfigValue]:
    """The stack file's config: full key -> what the program receives."""
    where = _stack_where(project)
    doc = _read(path, shown, where)
    try:
        if doc is None:
            return {}
        if not isinstance(doc, _GoMap):
            raise _Problem(None, "must be a YAML mapping (of config, and the secrets provider's settings)",
                           "config: followed by the stack's keys and values")  # fmt: skip
        _text_keys(doc, None)
        config = doc.get("config")
        if config is None:
            return {}
        if not isinstance(config, _GoMap):
            raise _Problem(None, "'config' must be a mapping of keys to values", "config: followed by key: value lines")
        _text_keys(config, (None, "config"))
        values: dict[str, ConfigValue] = {}
        written: dict[str, str] = {}
        for (_, key), value in config.entries.items():
            label, line = config.labels[("str", key)]
            full = _config_key(key, project, (None, "config"), line)
            if full in values:
                raise _Problem((None, "config"), f"sets {full} twice, as '{_clip(written[full])}' and "
                               f"'{_clip(label)}'", "each key once")  # fmt: skip
            written[full] = label
            values[full] = _config_value(value, ((None, "config"), key), "stack")
        return values
    except _Problem as problem:
        raise StackFileError(_message(shown, where(_parts(problem.path)), problem.problem, problem.allowed,
                                      problem.line)) from None  # fmt: skip


def _stack_where(project: str) -> Callable[[list[str | int]], str]:
    def where(parts: list[str | int]) -> str:
        if len(parts) >= 2 and parts[0] == "config" and isinstance(parts[1], str):
            key = parts[1] if ":" in parts[1] else f"{project}:{parts[1]}"
            rest = _key_path(parts[2:])
            return _clip(key) + ("" if not rest else rest if rest.startswith("[") else f".{rest}")
        return _key_path(parts)

    return where


_DECLARATION_FIELDS = ("default", "description", "items", "secret", "type", "value")
_CONFIG_TYPES = {"string": str, "integer": int, "boolean": bool, "array": list, "object": _GoMap}


def read_project(path: Path, shown: str = "Pulumi.yaml") -> Project:
    """Pulumi.yaml: the project's name and its config declarations (LoadProjectBytes, ValidateProject)."""
    doc = _read(path, shown, _key_path)
    try:
        if not isinstance(doc, _GoMap):
            raise _Problem(None, "must be a YAML mapping (expected project to be an object)",
                           "name:, runtime: and config: entries")  # fmt: skip
        _text_keys(doc, None)
        name = doc.get("name")
        if ("str", "name") not in doc.entries:
            close = difflib.get_close_matches("name", [k for _, k in doc.entries], n=1, cutoff=0.6)
            found = f"; found '{_clip(close[0])}' instead" if close else ""
            raise _Problem(None, f"project is missing a 'name' attribute{found}", "name: <project name>")
        if not isinstance(name, str) or not name:
            raise _Problem((None, "name"), "project is missing a non-empty string 'name' attribute",
                           "name: <project name>")  # fmt: skip
        config = doc.get("config")
        if config is None:
            return Project(name, {})
        if not isinstance(config, _GoMap):
            shape = (
                ", not a path (the deprecated way to name the stack config directory)"
                if isinstance(config, str)
                else ""
            )
            raise _Problem((None, "config"), f"must be a mapping of config keys to declarations{shape}",
                           "config: followed by key: {description, default, secret} entries")  # fmt: skip
        _text_keys(config, (None, "config"))
        declarations: dict[str, Declaration] = {}
        for (_, key), value in config.entries.items():
            line = config.labels[("str", key)][1]
            entry: _Path = ((None, "config"), key)
            full = key if ":" in key else f"{name}:{key}"
            full = _config_key(full, name, (None, "config"), line)
            if full in declarations:
                raise _Problem((None, "config"), f"declares {full} twice", "each key once", line)
            declarations[full] = _declaration(key, value, name, entry, line)
        return Project(name, declarations)
    except _Problem as problem:
        raise StackFileError(_message(shown, _key_path(_parts(problem.path)), problem.problem, problem.allowed,
                                      problem.line)) from None  # fmt: skip


def _declaration(key: str, value: Any, project: str, path: _Path, line: int) -> Declaration:
    """One config declaration: project.json's schema, Project.Validate and RewriteShorthandConfigValues."""
    own = ":" not in key or key.startswith(f"{project}:")
    shorthand = isinstance(value, (str, bool, list)) or (isinstance(value, int) and -_INT64 <= value < _INT64)
    if shorthand:  # `key: value` in Pulumi.yaml: the project's own keys get a default, others a value
        return Declaration(False, _config_value(value, path, "default"))
    if not isinstance(value, _GoMap):
        raise _Problem(path, "must be a value (text, a whole number, true or false, a list) or a declaration",
                       f"a mapping of {', '.join(_DECLARATION_FIELDS)}", line)  # fmt: skip
    _text_keys(value, path)
    for (_, field), (_, field_line) in value.labels.items():
        if field not in _DECLARATION_FIELDS:
            close = difflib.get_close_matches(field, _DECLARATION_FIELDS, n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise _Problem((path, field), f"is not a declaration attribute{hint}", ", ".join(_DECLARATION_FIELDS),
                           field_line)  # fmt: skip
    secret = value.get("secret")
    if ("str", "secret") in value.entries and not isinstance(secret, bool):
        raise _Problem((path, "secret"), "must be true or false", "true or false", line)
    kind = value.get("type")
    if ("str", "type") in value.entries and not (isinstance(kind, str) and kind in _CONFIG_TYPES):
        raise _Problem((path, "type"), "is not a config type", ", ".join(_CONFIG_TYPES), line)
    default, fixed = value.get("default"), value.get("value")
    if default is not None and fixed is not None:
        raise _Problem(path, "cannot have both a 'default' and 'value' attribute", "one of them", line)
    if not own and (kind is not None or default is not None or fixed is None):
        raise _Problem(path, "is not namespaced by the project, so it takes a 'value' and no type or default",
                       "value: <value>", line)  # fmt: skip
    if (
        kind is not None
        and default is not None
        and not (isinstance(default, _CONFIG_TYPES[kind]) and not (kind == "integer" and isinstance(default, bool)))
    ):
        raise _Problem((path, "default"), f"is not of the declared type '{kind}'", f"a default of type {kind}", line)
    given = default if default is not None else fixed
    return Declaration(bool(secret), None if given is None else _config_value(given, path, "default"))


# --- What the program receives: resource/config object.go, value.go, plaintext.go, and encoding/json


def _config_value(value: Any, path: _Path, mode: str) -> ConfigValue:
    """A decoded value as the CLI hands it to the program. `mode` "stack": a stack file's value (the Value
    type's YAML decoding); "default": a Pulumi.yaml default or value (createConfigValue: %v of text, whole
    numbers and booleans, json.Marshal of anything else)."""
    value = _round_trip(value)
    if value is None:
        return ConfigValue("")  # a key with nothing after it: "" (checkForEmptyConfig's warning)
    if isinstance(value, bool):
        return ConfigValue("true" if value else "false")
    if isinstance(value, int):
        text = str(value) if mode == "stack" or value < _INT64 else _json_float(float(value), path)
        return ConfigValue(text)
    if isinstance(value, float):
        return ConfigValue(_json_float(value, path))
    if isinstance(value, str):
        return ConfigValue(value)
    if isinstance(value, GoTime):
        return ConfigValue(value.text() if mode == "stack" else _rfc3339(value, path))
    ciphertext = _ciphertext(value)
    if ciphertext is not None:
        return ConfigValue(ciphertext, secure=True)
    text, encrypted = _json(value, path, mode)
    return ConfigValue(text, secure=bool(encrypted), object=True, encrypted=encrypted)


def _round_trip(value: Any) -> Any:
    """A float after the CLI writes it back as YAML (strconv 'g') and reads it again: 1e+06 stays a float,
    100000 and -0 become whole numbers. Nothing else changes in that round trip."""
    if not isinstance(value, float) or not math.isfinite(value):
        return value
    return _resolve("", _go_g(value))[1]


def _ciphertext(value: Any) -> str | None:
    """object.go isSecureValue: a text-keyed mapping whose only key is `secure`, holding text."""
    if isinstance(value, _GoMap) and value.string_keyed and len(value.entries) == 1:
        secure = value.get("secure")
        return secure if isinstance(secure, str) else None
    return None


def _rfc3339(when: GoTime, path: _Path) -> str:
    if abs(when.offset) >= 24 * 3600:  # time.MarshalJSON refuses a zone offset of 24 hours or more
        raise _Problem(path, f"is a time ({when.rfc3339()}) the CLI cannot write as JSON (timezone hour outside "
                       "of range [0,23])", "an offset under 24 hours")  # fmt: skip
    return when.rfc3339()


def _key_text(key: _Key, path: _Path, mode: str, label: str, line: int) -> str:
    """A key inside an object as the program sees it: fmt's %v of the Go value (object.go unmarshalObject)."""
    kind, value = key
    if kind == "str":
        return str(value)
    if mode == "default":
        raise _Problem(path, f"has the key '{_clip(label)}', which is not text (it reads as {kind}: expected only "
                       "string keys)", "text keys; quote it", line)  # fmt: skip
    value = _round_trip(value)
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_g(value)
    return str(value.text())


class _Raw(str):
    """JSON text to emit as it is."""


def _json(value: Any, path: _Path, mode: str) -> tuple[str, tuple[str, ...]]:
    """The JSON text the program receives for an object or list (Go's encoding/json: compact, keys sorted,
    HTML-escaped), written without recursion; and the key paths of the encrypted values inside it."""
    out: list[str] = []
    encrypted: list[str] = []
    todo: list[tuple[Any, _Path]] = [(value, path)]
    while todo:
        item, at = todo.pop()
        if isinstance(item, _Raw):
            out.append(item)
        elif isinstance(item, _GoMap) and _ciphertext(item) is not None:
            inside = _key_path(_parts(at)[len(_parts(path)) :])
            encrypted.append(inside if inside.startswith("[") else f".{inside}")
            out.append(f'{{"secure":{_json_string(str(_ciphertext(item)))}}}')
        elif isinstance(item, _GoMap):
            members: dict[str, tuple[Any, _Path]] = {}
            for key, member in item.entries.items():
                label, line = item.labels[key]
                text = _key_text(key, at, mode, label, line)
                if text in members:
                    raise _Problem(at, f"has two keys that both read as '{_clip(text)}'", "each key once", line)
                if key[0] == "float" and math.isnan(key[1]):
                    member = None  # the CLI's YAML round trip cannot look a NaN key up again: its value is lost
                members[text] = (member, (at, label))
            todo.append((_Raw("}"), at))
            for index, text in enumerate(sorted(members, reverse=True)):
                todo.append(members[text])
                todo.append((_Raw(("" if index == len(members) - 1 else ",") + _json_string(text) + ":"), at))
            out.append("{")
        elif isinstance(item, list):
            todo.append((_Raw("]"), at))
            for index in range(len(item) - 1, -1, -1):
                todo.append((item[index], (at, index)))
                if index:
                    todo.append((_Raw(","), at))
            out.append("[")
        else:
            out.append(_json_scalar(_round_trip(item), at, mode))
    return "".join(out), tuple(encrypted)


def _json_scalar(value: Any, path: _Path, mode: str) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):  # the CLI reads objects back with UseNumber: beyond int64, a float
        return str(value) if -_INT64 <= value < _INT64 else _json_float(float(value), path)
    if isinstance(value, float):
        return _json_float(value, path)
    if isinstance(value, GoTime):
        return _json_string(value.text() if mode == "stack" else _rfc3339(value, path))
    return _json_string(str(value))


_JSON_ESCAPE = re.compile(r'["\\\x00-\x1f<>&\u2028\u2029]')
_JSON_SHORT = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\b": "\\b", "\f": "\\f"}


def _json_string(text: str) -> str:
    """encoding/json's string: HTML-safe (<, >, & as \\u003c...), U+2028 and U+2029 escaped, \\b and \\f
    short (Go 1.22 and later), other control characters as \\u00xx."""
    return '"' + _JSON_ESCAPE.sub(lambda m: _JSON_SHORT.get(m[0]) or f"\\u{ord(m[0]):04x}", text) + '"'


def _digits(number: float) -> tuple[str, int]:
    """The shortest decimal digits of |number| and where the point goes (0.ddd x 10^point), like strconv's
    (Python's repr and Go both give the shortest digits that read back as the same float)."""
    if number == 0:
        return "", 0
    exact = Decimal(repr(abs(number))).as_tuple()
    text = "".join(map(str, exact.digits))
    digits = text.rstrip("0")
    exponent = int(exact.exponent) + len(text) - len(digits)
    digits = digits.lstrip("0")
    return digits, len(digits) + exponent


def _fmt_e(sign: str, digits: str, point: int) -> str:
    exponent = point - 1 if digits else 0
    mantissa = (digits[:1] or "0") + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'-' if exponent < 0 else '+'}{abs(exponent):02d}"


def _fmt_f(sign: str, digits: str, point: int) -> str:
    whole = (digits[:point].ljust(point, "0") if point > 0 else "") or "0"
    fraction = ("0" * -point + digits) if point < 0 else digits[point:]
    return f"{sign}{whole}{'.' + fraction if fraction else ''}"


def _go_g(number: float) -> str:
    """strconv.FormatFloat(number, 'g', -1, 64), which is also fmt's %v of a float64."""
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    digits, point = _digits(number)
    exponent = point - 1
    if digits and (exponent < -4 or exponent >= 6):  # with the shortest digits, Go decides as for precision 6
        return _fmt_e(sign, digits, point)
    return _fmt_f(sign, digits, point)


def _json_float(number: float, path: _Path) -> str:
    """encoding/json's float64: 'f' from 1e-6 to 1e21, else 'e' with e-07 written e-7; no infinities."""
    if not math.isfinite(number):
        raise _Problem(path, f"is {'.nan' if math.isnan(number) else '.inf' if number > 0 else '-.inf'}, which the "
                       "Pulumi CLI cannot hand to a program (json: unsupported value)", "a finite number")  # fmt: skip
    sign = "-" if math.copysign(1.0, number) < 0 else ""
    digits, point = _digits(number)
    if digits and (abs(number) < 1e-6 or abs(number) >= 1e21):
        return re.sub(r"e-0(\d)$", r"e-\1", _fmt_e(sign, digits, point))
    return _fmt_f(sign, digits, point)
