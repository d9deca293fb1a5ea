"""Stack files read as the Pulumi CLI reads them (infra/stackfile.py): one test per rule of yaml.v3 and of
Pulumi's rendering, and the limits that keep a hostile file from costing a traceback or gigabytes.

The expected texts are what the CLI hands the program; they were checked against the real yaml.v3 (built
from its source) with Pulumi's loading steps, where Go 1.22's JSON and Pulumi's key parsing agree."""

from __future__ import annotations

import codecs
import sys
import tracemalloc
from pathlib import Path

import pytest

from infra.tools.stackfile import ConfigValue, StackFileError, read_project, read_stack
from tests.conftest import PROJECT, ROOT

KEY = f"{PROJECT}:k"


def stack(tmp_path: Path, text: str) -> dict[str, ConfigValue]:
    path = tmp_path / "Pulumi.t.yaml"
    path.write_text(text, encoding="utf-8")
    return read_stack(path, "Pulumi.t.yaml", PROJECT)


def value(tmp_path: Path, yaml_value: str) -> str:
    """What the program receives for `agent-platform:k: <yaml_value>`."""
    return stack(tmp_path, f"config:\n  {KEY}: {yaml_value}\n")[KEY].text


def refused(tmp_path: Path, text: str) -> str:
    with pytest.raises(StackFileError) as raised:
        stack(tmp_path, text)
    message = str(raised.value)
    assert message.startswith("Pulumi.t.yaml: ") and "\n" not in message and "Traceback" not in message
    return message


# (the value as written, what the program receives at the top level, inside an object)
SCALARS: list[tuple[str, str, str]] = [
    ("22:30", "22:30", '"22:30"'),  # yaml.v3 has no base-60 numbers; PyYAML made it 1350
    ("1_000", "1000", "1000"),  # underscores dropped, for compatibility
    ("1__0_", "10", "10"),  # ...every one of them, anywhere
    ("0777", "511", "511"),  # YAML 1.1 octal, for compatibility
    ("0o17", "15", "15"),
    ("0O17", "15", "15"),
    ("0x1F", "31", "31"),
    ("-0x1F", "-31", "-31"),
    ("0b101", "5", "5"),
    ("-0b101", "-5", "-5"),
    ("+12", "12", "12"),
    ("08", "8", "8"),  # not octal: a float
    ("0129", "129", "129"),
    ("9223372036854775807", "9223372036854775807", "9223372036854775807"),
    ("18446744073709551615", "18446744073709551615", "18446744073709552000"),  # uint64; a float once in JSON
    ("99999999999999999999", "100000000000000000000", "100000000000000000000"),  # beyond 64 bits: a float
    ("1" * 400, "1" * 400, '"' + "1" * 400 + '"'),  # beyond a float: the text
    ("1.5", "1.5", "1.5"),
    ("1e3", "1000", "1000"),
    (".5", "0.5", "0.5"),
    (".5_5", "0.55", "0.55"),  # Go's ParseFloat takes underscores between digits
    ("._5", "._5", '"._5"'),
    ("-0.0", "0", "0"),  # the CLI's YAML round trip writes -0 and reads back a whole number
    ("1e20", "100000000000000000000", "100000000000000000000"),
    ("1e21", "1e+21", "1e+21"),
    ("1e-7", "1e-7", "1e-7"),
    ("1e-400", "0", "0"),
    ("1e400", "1e400", '"1e400"'),  # out of a float's range: the text
    ("true", "true", "true"),
    ("True", "true", "true"),
    ("FALSE", "false", "false"),
    ("tRue", "tRue", '"tRue"'),
    ("yes", "yes", '"yes"'),  # YAML 1.1 booleans are text
    ("on", "on", '"on"'),
    ("off", "off", '"off"'),
    ("y", "y", '"y"'),
    ("~", "", "null"),  # a null: "" at the top (the CLI warns), null inside objects
    ("null", "", "null"),
    ("NULL", "", "null"),
    ("nUll", "nUll", '"nUll"'),
    ("2024-05-01", "2024-05-01 00:00:00 +0000 UTC", '"2024-05-01 00:00:00 +0000 UTC"'),  # Go's time.String()
    ("2024-5-1", "2024-05-01 00:00:00 +0000 UTC", '"2024-05-01 00:00:00 +0000 UTC"'),
    ("2001-12-14t21:59:43.10-05:00", "2001-12-14 21:59:43.1 -0500 -0500", '"2001-12-14 21:59:43.1 -0500 -0500"'),
    ("2001-12-14T21:59:43+00:00", "2001-12-14 21:59:43 +0000 UTC", '"2001-12-14 21:59:43 +0000 UTC"'),
    ("2001-12-14 21:59:43.10", "2001-12-14 21:59:43.1 +0000 UTC", '"2001-12-14 21:59:43.1 +0000 UTC"'),
    ("2023-02-29", "2023-02-29", '"2023-02-29"'),  # no such day: text
    ("2024-05-01T10:00:00", "2024-05-01T10:00:00", '"2024-05-01T10:00:00"'),  # no zone: text
    ("'2024-05-01'", "2024-05-01", '"2024-05-01"'),  # quoted: text
    ('"0777"', "0777", '"0777"'),
    ('"a\\tb"', "a\tb", '"a\\tb"'),
    ("<<", "<<", '"\\u003c\\u003c"'),
    ("!!int '12'", "12", "12"),
    ("!!float 1", "1", "1"),
    ("!!str 12", "12", '"12"'),
    ("! 12", "12", "12"),  # `!` alone is no tag in yaml.v3
    ("!!timestamp '2024-05-01'", "2024-05-01 00:00:00 +0000 UTC", '"2024-05-01 00:00:00 +0000 UTC"'),
    ("!!binary aGVsbG8=", "hello", '"hello"'),
    ("!mine text", "text", '"text"'),  # unknown tags are ignored
]


@pytest.mark.parametrize(("written", "top", "inside"), SCALARS, ids=[s[0][:24] for s in SCALARS])
def test_scalars_read_as_yaml_v3_resolves_them(tmp_path: Path, written: str, top: str, inside: str) -> None:
    """Each plain, quoted and tagged scalar means what yaml.v3 (resolve.go, decode.go) makes of it, rendered as
    Pulumi renders it: the text itself at the top level, Go's JSON inside an object."""
    assert value(tmp_path, written) == top
    assert value(tmp_path, f"{{x: {written}}}") == f'{{"x":{inside}}}'


def test_block_scalars_are_text(tmp_path: Path) -> None:
    """Literal (|) and folded (>) scalars are text, with YAML's line rules."""
    assert value(tmp_path, "|\n    two\n    lines") == "two\nlines\n"
    assert value(tmp_path, ">-\n    one\n    line") == "one line"


def test_objects_are_go_json_with_sorted_keys_and_html_escapes(tmp_path: Path) -> None:
    """Objects and lists reach the program as encoding/json writes them: compact, keys sorted, < > & and
    U+2028/2029 escaped, \\b and \\f short."""
    written = '{z: 1, a: [1, {}, []], B: "<&>", é: "\\u2028\\b\\f\\u0001", "": x, "10": y, "9": z}'
    assert value(tmp_path, written) == (
        '{"":"x","10":"y","9":"z","B":"\\u003c\\u0026\\u003e","a":[1,{},[]],"z":1,"é":"\\u2028\\b\\f\\u0001"}'
    )


def test_keys_that_are_not_text_become_go_text_inside_values(tmp_path: Path) -> None:
    """Inside a value, a key that is a number, a boolean, a null or a time becomes fmt's %v of it."""
    written = "{1: a, 0x10: b, ~: c, true: d, 1e6: e, 1.5: f, -0.0: g, 2024-05-01: h}"
    assert value(tmp_path, written) == (
        '{"0":"g","1":"a","1.5":"f","16":"b","1e+06":"e","2024-05-01 00:00:00 +0000 UTC":"h",'
        '"\\u003cnil\\u003e":"c","true":"d"}'
    )


def test_a_set_is_a_mapping_of_nulls(tmp_path: Path) -> None:
    """`!!set` is ignored like any collection tag: its members become keys with null values."""
    assert value(tmp_path, "!!set {a, b}") == '{"a":null,"b":null}'


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("{<<: *base, q: 2}", '{"p":1,"q":2}'),
        ("{<<: [*base, {p: 5, r: 3}], p: 9}", '{"p":9,"r":3}'),  # own keys win, then the first merged mapping
        ("{q: 1, <<: {q: 2, s: 3}}", '{"q":1,"s":3}'),
        ("*base", '{"p":1}'),
        ("[*base, *base]", '[{"p":1},{"p":1}]'),
    ],
)
def test_anchors_aliases_and_merge_keys(tmp_path: Path, written: str, expected: str) -> None:
    """Aliases expand to their anchor's value; `<<` merges mappings with yaml.v3's precedence."""
    assert stack(tmp_path, f"config:\n  base: &base {{p: 1}}\n  {KEY}: {written}\n")[KEY].text == expected


def test_encrypted_values(tmp_path: Path) -> None:
    """`{secure: <ciphertext>}` is encrypted (top level or inside an object); `secure` with a non-text value, or
    beside other keys, is a plain object."""
    values = stack(tmp_path, "config:\n  a: {secure: v1:abc}\n  b: {x: {secure: v1:def}}\n  c: {secure: 5}\n")
    assert values[f"{PROJECT}:a"] == ConfigValue("v1:abc", secure=True)
    assert values[f"{PROJECT}:b"].secure and values[f"{PROJECT}:b"].encrypted == (".x",)
    assert values[f"{PROJECT}:c"] == ConfigValue('{"secure":5}', object=True)


def test_namespaces(tmp_path: Path) -> None:
    """Keys without a namespace are the project's; the old <namespace>:config:<name> form still reads."""
    values = stack(tmp_path, "config:\n  a: 1\n  aws:region: eu\n  aws:config:zone: b\n")
    assert set(values) == {f"{PROJECT}:a", "aws:region", "aws:zone"}


def test_only_the_first_document_is_read(tmp_path: Path) -> None:
    """yaml.v3's Unmarshal reads one document: what follows `---`, even broken YAML, is ignored."""
    assert set(stack(tmp_path, "config:\n  a: 1\n---\nconfig: [\n")) == {f"{PROJECT}:a"}


def test_byte_order_marks_and_utf16(tmp_path: Path) -> None:
    """The CLI strips a UTF-8 byte-order mark, and yaml.v3 reads UTF-16 that starts with one."""
    path = tmp_path / "Pulumi.t.yaml"
    for data in (codecs.BOM_UTF8 + b"config:\n  k: 1\n", "config:\n  k: é\n".encode("utf-16")):
        path.write_bytes(data)
        assert list(read_stack(path, "Pulumi.t.yaml", PROJECT)) == [KEY]


def test_empty_files_and_empty_config(tmp_path: Path) -> None:
    """An empty stack file, or `config:` alone, sets nothing (as for a new stack)."""
    assert stack(tmp_path, "") == {} and stack(tmp_path, "config:\n") == {}
    assert stack(tmp_path, "config:\n  a:\n  b: ''\n") == {
        f"{PROJECT}:a": ConfigValue(""),
        f"{PROJECT}:b": ConfigValue(""),
    }


# (the stack file, text its message must hold). The CLI refuses each too, except those marked "stricter":
# there it would silently keep one of two values, or change one (infra/stackfile.py says why).
REFUSED: list[tuple[str, str]] = [
    (f"config:\n  {KEY}: .inf\n", f"{KEY}: is .inf, which the Pulumi CLI cannot hand to a program"),
    (f"config:\n  {KEY}: {{x: [-.inf]}}\n", f"{KEY}.x[0]: is -.inf"),
    (f"config:\n  {KEY}: {{x: .nan}}\n", f"{KEY}.x: is .nan"),
    (f"config:\n  {KEY}: !!bool yes\n", f"{KEY}: is tagged !!bool, which its value is not"),
    (f"config:\n  {KEY}: !!int 1.5\n", "cannot decode !!float `1.5` as a !!int"),
    (f"config:\n  {KEY}: !!float 18446744073709551615\n", "as a !!float"),
    (f"config:\n  {KEY}: !!null x\n", "as a !!null"),
    (f"config:\n  {KEY}: !!binary not-base64\n", f"{KEY}: is tagged !!binary but is not base64"),
    (f"config:\n  {KEY}: !!binary //79\n", f"{KEY}: is !!binary data that is not UTF-8 text"),  # stricter
    (f"config:\n  {KEY}: {{x: 1, x: 2}}\n", f"{KEY}: the key 'x' is given twice"),
    (f"config:\n  {KEY}: {{x: 1, 'x': 2}}\n", "the key 'x' is given twice"),
    (f"config:\n  {KEY}: {{1: a, 0x1: b}}\n", "the key '0x1' is given twice, as '1'"),  # stricter
    (f"config:\n  {KEY}: {{1: a, 1.0: b}}\n", "has two keys that both read as '1'"),
    (f"config:\n  {KEY}: 1\n  {KEY}: 2\n", f"config: the key '{KEY}' is given twice (lines 2 and 3)"),
    (f"config:\n  k: 1\n  {KEY}: 2\n", f"config: sets {KEY} twice, as 'k' and '{KEY}'"),  # stricter
    ("config:\n  5: x\n", "config: has the key '5', which is not text"),
    ("5: x\nconfig: {}\n", "has the key '5', which is not text"),
    ("config:\n  a:b:c: 1\n", "has the key 'a:b:c', which is not a config key"),
    (f"config:\n  {KEY}: {{[1]: a}}\n", "invalid map key"),
    (f"config:\n  {KEY}: {{'<<': {{a: 1}}}}\n", "is a quoted '<<' key"),  # stricter
    (f"config:\n  {KEY}: {{<<: 5}}\n", "map merge requires map or sequence of maps"),
    (f"config:\n  {KEY}: &a [*a]\n", "anchor 'a' value contains itself"),
    (f"config:\n  {KEY}: *nowhere\n", "uses the unknown anchor 'nowhere'"),
    ("%YAML 1.2\n---\nconfig: {}\n", "found incompatible YAML document"),
    ("config: [a]\n", "'config' must be a mapping of keys to values"),
    ("- config\n", "must be a YAML mapping"),
    ("config:\n  k: [1\n", "is not valid YAML at line"),
]


@pytest.mark.parametrize(("text", "expected"), REFUSED, ids=[e for _, e in REFUSED])
def test_what_the_cli_refuses_is_one_message(tmp_path: Path, text: str, expected: str) -> None:
    """Everything the CLI refuses (or cannot pass on, or would silently keep only one of) is one line naming
    the file and, where there is one, the key."""
    assert expected in refused(tmp_path, text)


def test_a_billion_laughs_is_refused_cheaply(tmp_path: Path) -> None:
    """Nine levels of nine aliases would expand to 387 million strings (3 GB once, with PyYAML): refused, as
    yaml.v3 refuses it, after a few thousand expansions and a few megabytes."""
    levels = "".join(f"  l{i + 1}: &l{i + 1} [{', '.join([f'*l{i}'] * 9)}]\n" for i in range(8))
    text = f"config:\n  l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n{levels}"
    assert len(text) < 1024
    tracemalloc.start()
    try:
        message = refused(tmp_path, text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "the document contains excessive aliasing" in message and peak < 20_000_000


@pytest.mark.parametrize(("expansions", "ok"), [(3, True), (4, False)])
def test_aliases_are_counted_as_yaml_v3_counts_them(tmp_path: Path, expansions: int, ok: bool) -> None:
    """yaml.v3 refuses a document once more than 99% of its decoded values came from aliases (decode.go's
    counting, which this follows exactly): three expansions of a 729-string anchor pass, four do not."""
    text = "config:\n  l0: &l0 [" + ", ".join(["x"] * 9) + "]\n  l1: &l1 [" + ", ".join(["*l0"] * 9) + "]\n"
    text += "  l2: &l2 [" + ", ".join(["*l1"] * 9) + f"]\n  {KEY}: [" + ", ".join(["*l2"] * expansions) + "]\n"
    if ok:
        assert stack(tmp_path, text)[KEY].text.count('"x"') == expansions * 729
    else:
        assert "the document contains excessive aliasing" in refused(tmp_path, text)


@pytest.mark.parametrize(("depth", "ok"), [(9998, True), (9999, False)], ids=lambda x: str(x))
def test_nesting_is_limited_as_in_yaml_v3(tmp_path: Path, depth: int, ok: bool) -> None:
    """yaml.v3 allows 10000 nested levels, the file's own two (the top, `config:`) included. No recursion
    here: 10000 levels cost no stack."""
    text = f"config:\n  {KEY}:\n    " + "- " * depth + "x\n"
    if ok:
        assert stack(tmp_path, text)[KEY].text == "[" * depth + '"x"' + "]" * depth
    else:
        assert "exceeded max depth of 10000" in refused(tmp_path, text)


def test_writing_back_is_what_limits_flow_nesting(tmp_path: Path) -> None:
    """`[[...]]` 10000 deep parses (flow levels are counted apart from indentation), but written back as
    block YAML under the file's two levels it is too deep: the CLI refuses it when it reads it again."""
    text = f"config:\n  {KEY}: " + "[" * 10000 + "]" * 10000 + "\n"
    assert "once the Pulumi CLI writes the file back" in refused(tmp_path, text)


def test_aliases_cannot_nest_past_the_limit(tmp_path: Path) -> None:
    """Two values of 6000 levels each are fine; one inside the other, through an alias, is too deep once
    the CLI writes the expanded document back. The message names where, cut to one short line."""
    deep = "- " * 6000 + "x"
    inside = "- " * 6000 + "*a"
    message = refused(tmp_path, f"config:\n  a: &a\n    {deep}\n  {KEY}:\n    {inside}\n")
    assert "exceeded max depth of 10000" in message and f"{KEY}[0][0]" in message and len(message) < 500


def test_deep_flow_nesting_is_refused_while_parsing(tmp_path: Path) -> None:
    """A million opening brackets stop at the 10001st, before anything is built."""
    assert "exceeded max depth of 10000" in refused(tmp_path, f"config:\n  {KEY}: " + "[" * 1_000_000 + "\n")


def test_without_libyaml_the_python_parser_reads_the_same(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """PyYAML built without libyaml gives the same events from its Python parser: the same values, the same
    limits (it does not recurse either), the same messages."""
    text = f"config:\n  a: &a {{x: 0777, y: [22:30, yes, ~], <<: {{z: 2024-05-01}}}}\n  {KEY}: [*a, 1_000, 1e3]\n"
    deep = f"config:\n  {KEY}:\n    " + "- " * 10001 + "x\n"  # block nesting: PyYAML's flow scanning is quadratic
    with_libyaml = (stack(tmp_path, text), refused(tmp_path, deep), refused(tmp_path, "config:\n  k: a\x01\n"))
    monkeypatch.setitem(sys.modules, "yaml._yaml", None)  # `from yaml._yaml import CParser` now fails
    assert (stack(tmp_path, text), refused(tmp_path, deep)) == with_libyaml[:2]
    assert "U+0001" in with_libyaml[2] and "U+0001" in refused(tmp_path, "config:\n  k: a\x01\n")


def test_files_over_a_mebibyte_are_refused(tmp_path: Path) -> None:
    """The offline preview reads stack files up to 1 MiB (real ones are a few KB)."""
    assert "is larger than 1 MiB" in refused(tmp_path, "config:\n  k: " + "x" * (1 << 20) + "\n")


def test_files_that_are_not_text_are_refused(tmp_path: Path) -> None:
    """Bytes that are not UTF-8, and control characters YAML does not allow, are named with their position."""
    path = tmp_path / "Pulumi.t.yaml"
    for data, expected in ((b"config:\n  k: caf\xe9\n", "is not UTF-8 text"), (b"config:\n  k: a\x01b\n", r"U\+0001")):
        path.write_bytes(data)
        with pytest.raises(StackFileError, match=expected):
            read_stack(path, "Pulumi.t.yaml", PROJECT)


# --- Pulumi.yaml


def project(tmp_path: Path, text: str) -> str:
    path = tmp_path / "Pulumi.yaml"
    path.write_text(text)
    with pytest.raises(StackFileError) as raised:
        read_project(path)
    return str(raised.value)


def test_the_committed_project_declares_its_defaults_as_the_cli_renders_them() -> None:
    """Pulumi.yaml's defaults reach the program as createConfigValue renders them: JSON for objects and lists,
    the text for text; secrets are declared secret with an empty default."""
    declared = read_project(ROOT / "Pulumi.yaml")
    assert declared.name == PROJECT
    assert declared.config["pulumi:disable-default-providers"].default == ConfigValue('["databricks"]', object=True)
    assert declared.config[f"{PROJECT}:deployment"].default == ConfigValue("{}", object=True)
    assert declared.config[f"{PROJECT}:environment"].default is None
    assert declared.config[f"{PROJECT}:rlm_google_api_key"].secret


def test_project_defaults_render_like_createconfigvalue(tmp_path: Path) -> None:
    """A default that is not text, a whole number or a boolean goes through json.Marshal: times as RFC 3339,
    uint64 as a float once read back."""
    path = tmp_path / "Pulumi.yaml"
    path.write_text("name: p\nconfig:\n  a:\n    default: {t: 2024-05-01, u: 18446744073709551615}\n  b: 12\n")
    config = read_project(path).config
    assert config["p:a"].default == ConfigValue('{"t":"2024-05-01T00:00:00Z","u":18446744073709552000}', object=True)
    assert config["p:b"].default == ConfigValue("12")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("runtime: python\n", "Pulumi.yaml: project is missing a 'name' attribute"),
        ("nmae: p\n", "project is missing a 'name' attribute; found 'nmae' instead"),
        ("name: ''\n", "name: project is missing a non-empty string 'name' attribute"),
        ("name: 5\n", "project is missing a non-empty string 'name' attribute"),
        ("name: p\nconfig: [a]\n", "config: must be a mapping of config keys to declarations"),
        ("name: p\nconfig: settings/\n", "not a path (the deprecated way to name the stack config directory)"),
        ("name: p\nconfig:\n  a: {default: 1, value: 2}\n", "cannot have both a 'default' and 'value' attribute"),
        (
            "name: p\nconfig:\n  a: {defualt: 1}\n",
            "config.a.defualt: is not a declaration attribute (did you mean 'default'?)",
        ),
        (
            "name: p\nconfig:\n  a: {type: string, default: 5}\n",
            "config.a.default: is not of the declared type 'string'",
        ),
        ("name: p\nconfig:\n  a: {type: text}\n", "config.a.type: is not a config type"),
        ("name: p\nconfig:\n  a: {type: [string]}\n", "config.a.type: is not a config type"),
        ("name: p\nconfig:\n  a: {secret: yes}\n", "config.a.secret: must be true or false"),
        ("name: p\nconfig:\n  aws:region: {default: eu}\n", "is not namespaced by the project, so it takes a 'value'"),
        ("name: p\nconfig:\n  a: 1.5\n", "config.a: must be a value (text, a whole number, true or false, a list)"),
        ("name: p\nconfig:\n  a: 1\n  p:a: 2\n", "config: declares p:a twice"),
        ("- name\n", "must be a YAML mapping (expected project to be an object)"),
    ],
)
def test_a_project_file_the_cli_refuses_is_one_message(tmp_path: Path, text: str, expected: str) -> None:
    """Pulumi.yaml is validated as the CLI validates it (ValidateProject, Project.Validate, its schema)."""
    message = project(tmp_path, text)
    assert expected in message and message.startswith("Pulumi.yaml: ") and "\n" not in message
