# -*- coding: utf-8 -*-
# Copyright: hpc.vcluster contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read a manifest (a file, YAML text or data Ansible already parsed) within fixed bounds.

Tenants write manifests and the controller reads them first, with root on every node to
come, so this is where hostile input is stopped, cheaply and before anything else runs:

* bounds: size of the text, nesting depth, and the size the document has once its YAML
  aliases are expanded (values and characters), because later steps copy the data and an
  alias "bomb" costs nothing to parse but hours to copy; a cycle of aliases is refused;
* duplicate keys are refused (YAML would let the last one win silently), keys must be
  strings (``on:`` or ``1:`` would be read as a boolean or a number);
* only plain data: strings, numbers, booleans, null, lists and mappings (no timestamps,
  binary, sets or Python tags); ``!vault`` values become secret references, never clear;
* every error says where: ``<source>: line L, column C: problem``. Nothing raises anything
  but ManifestError, whatever the input (not UTF-8, 10,000 nested brackets, a 100-digit
  integer...).

The scanner and parser are libyaml's when PyYAML has it (C speed for large input); the
composer is PyYAML's Python one with the bounds added.
"""
from __future__ import annotations

from yaml.composer import Composer
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.error import MarkedYAMLError, YAMLError
from yaml.nodes import MappingNode, ScalarNode, SequenceNode
from yaml.reader import ReaderError
from yaml.resolver import Resolver

try:
    from yaml._yaml import CParser as _CParser
except ImportError:  # pragma: no cover - PyYAML without libyaml
    _CParser = None
from yaml.parser import Parser as _PyParser
from yaml.reader import Reader as _PyReader
from yaml.scanner import Scanner as _PyScanner

from ansible_collections.hpc.vcluster.plugins.module_utils._manifest_rules import ManifestError, format_path, short

#: A manifest is a few kilobytes; this leaves room for big embedded values so that the
#: field rules (not the size) name what is wrong with them.
MAX_BYTES = 4 * 1024 * 1024
#: Nesting levels (a manifest uses about 7).
MAX_DEPTH = 32
#: Values (scalars, lists, mappings) once aliases are expanded.
MAX_VALUES = 100000
#: Characters of all strings once aliases are expanded.
MAX_CHARS = 2 * MAX_BYTES
#: Digits of an integer (Python refuses to convert more than 4300 anyway).
MAX_INT_DIGITS = 64

VAULT_TAG = "!vault"
STR_TAG = "tag:yaml.org,2002:str"
MERGE_TAG = "tag:yaml.org,2002:merge"


def _where(source, line, column):
    return "%s: line %d, column %d" % (source, line + 1, column + 1)


def _position(text, index):
    """(line, column), 0-based, of a character index."""
    line = text.count("\n", 0, index)
    return line, index - (text.rfind("\n", 0, index) + 1)


class _Resolver(Resolver):
    """YAML 1.1 resolution without timestamps: ``2026-11-01`` stays a string (an image tag, a date)."""


_Resolver.yaml_implicit_resolvers = dict(
    (key, [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"])
    for key, resolvers in Resolver.yaml_implicit_resolvers.items())


class _Constructor(SafeConstructor):
    """Plain data only; ``!vault`` becomes ``{"secret": {"vault": <ciphertext>}}``."""

    yaml_constructors = {}

    def construct_yaml_int(self, node):
        digits = sum(1 for ch in str(node.value) if ch.isalnum())
        if digits > MAX_INT_DIGITS:
            raise ConstructorError(None, None, "an integer of more than %d digits" % MAX_INT_DIGITS, node.start_mark)
        return SafeConstructor.construct_yaml_int(self, node)

    def construct_vault(self, node):
        if not isinstance(node, ScalarNode):
            raise ConstructorError(None, None, "!vault takes the text that ansible-vault encrypt_string prints",
                                   node.start_mark)
        text = str(node.value).strip()
        if not text.startswith("$ANSIBLE_VAULT;"):
            raise ConstructorError(None, None, "a !vault value starts with $ANSIBLE_VAULT; (ansible-vault "
                                   "encrypt_string prints it)", node.start_mark)
        return {"secret": {"vault": text}}

    def construct_refused(self, node):
        raise ConstructorError(None, None, "the tag %s is not allowed in a manifest: values are strings, numbers, "
                               "booleans, null, lists and mappings (and !vault for secrets)" % short(node.tag, 60),
                               node.start_mark)


for _tag, _method in (("tag:yaml.org,2002:null", SafeConstructor.construct_yaml_null),
                      ("tag:yaml.org,2002:bool", SafeConstructor.construct_yaml_bool),
                      ("tag:yaml.org,2002:int", _Constructor.construct_yaml_int),
                      ("tag:yaml.org,2002:float", SafeConstructor.construct_yaml_float),
                      (STR_TAG, SafeConstructor.construct_yaml_str),
                      ("tag:yaml.org,2002:seq", SafeConstructor.construct_yaml_seq),
                      ("tag:yaml.org,2002:map", SafeConstructor.construct_yaml_map),
                      (VAULT_TAG, _Constructor.construct_vault),
                      (None, _Constructor.construct_refused)):
    _Constructor.add_constructor(_tag, _method)


class _BoundedComposer(Composer):
    """PyYAML's composer with a depth limit and checked mapping keys."""

    def __init__(self):
        Composer.__init__(self)
        self._depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise ManifestLoadBound("nested deeper than %d levels" % MAX_DEPTH, self.peek_event().start_mark)
            return Composer.compose_node(self, parent, index)
        finally:
            self._depth -= 1

    def compose_mapping_node(self, anchor):
        node = Composer.compose_mapping_node(self, anchor)
        seen = {}
        for key, _value in node.value:
            if key.tag == MERGE_TAG:
                continue
            if not isinstance(key, ScalarNode):
                raise ManifestLoadBound("a key must be a string, not a %s" % (
                    "list" if isinstance(key, SequenceNode) else "mapping"), key.start_mark)
            if key.tag != STR_TAG:
                kind = key.tag.rsplit(":", 1)[-1]
                raise ManifestLoadBound("the key %s is read as a %s: write it in quotes" % (
                    short(key.value, 40), {"bool": "boolean", "int": "number", "float": "number"}.get(kind, kind)),
                    key.start_mark)
            if key.value in seen:
                first = seen[key.value]
                raise ManifestLoadBound("duplicate key %s (first at line %d, column %d): YAML would keep only the "
                                        "last one" % (short(key.value, 40), first.line + 1, first.column + 1),
                                        key.start_mark)
            seen[key.value] = key.start_mark
        return node

    def get_single_node(self):
        node = Composer.get_single_node(self)
        if node is not None:
            check_expansion(node)
        return node


class ManifestLoadBound(Exception):
    """A bound or key rule broken at a YAML position (``mark``)."""

    def __init__(self, problem, mark):
        Exception.__init__(self, problem)
        self.problem, self.mark = problem, mark


def check_expansion(root):
    """Refuse a node graph whose alias expansion is too big or too deep, or that refers to itself.

    One pass over the distinct nodes (iterative, memoized), so an alias bomb costs as much
    as its text, not as its expansion.
    """
    sizes = {}  # id(node) -> (values, chars, depth)
    active = set()
    stack = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in sizes and not children_done:
            continue
        if isinstance(node, ScalarNode):
            sizes[key] = (1, len(node.value), 1)
        elif not children_done:
            if key in active:
                raise ManifestLoadBound("an alias refers to a value that contains it (a cycle)", node.start_mark)
            active.add(key)
            stack.append((node, True))
            kids = [k for pair in node.value for k in pair] if isinstance(node, MappingNode) else list(node.value)
            for kid in kids:
                if id(kid) in active:
                    raise ManifestLoadBound("an alias refers to a value that contains it (a cycle)", node.start_mark)
                if id(kid) not in sizes:
                    stack.append((kid, False))
            continue
        else:
            active.discard(key)
            kids = [k for pair in node.value for k in pair] if isinstance(node, MappingNode) else list(node.value)
            values, chars, depth = 1, 0, 1
            for kid in kids:
                kv, kc, kd = sizes[id(kid)]
                values, chars, depth = values + kv, chars + kc, max(depth, kd + 1)
            sizes[key] = (values, chars, depth)
        values, chars, depth = sizes[key]
        if values > MAX_VALUES:
            raise ManifestLoadBound("with its aliases expanded, this value holds more than %d values" % MAX_VALUES,
                                    node.start_mark)
        if chars > MAX_CHARS:
            raise ManifestLoadBound("with its aliases expanded, this value holds more than %d characters" % MAX_CHARS,
                                    node.start_mark)
        if depth > MAX_DEPTH:
            raise ManifestLoadBound("with its aliases expanded, this value is nested deeper than %d levels" % MAX_DEPTH,
                                    node.start_mark)


if _CParser is not None:
    class _Loader(_BoundedComposer, _CParser, _Constructor, _Resolver):
        def __init__(self, stream):
            _CParser.__init__(self, stream)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)
else:  # pragma: no cover
    class _Loader(_PyReader, _PyScanner, _PyParser, _BoundedComposer, _Constructor, _Resolver):
        def __init__(self, stream):
            _PyReader.__init__(self, stream)
            _PyScanner.__init__(self)
            _PyParser.__init__(self)
            _BoundedComposer.__init__(self)
            _Constructor.__init__(self)
            _Resolver.__init__(self)


def decode(data, source="manifest"):
    """Bytes to text: UTF-8 (a BOM is dropped) or UTF-16/32 with a BOM; else the position of the first bad byte."""
    if len(data) > MAX_BYTES:
        raise ManifestError(["%s: more than %d bytes; a manifest is a few kilobytes" % (source, MAX_BYTES)])
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"), (b"\x00\x00\xfe\xff", "utf-32"),
                       (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16")):
        if data.startswith(bom):
            break
    else:
        codec = "utf-8"
    try:
        return data.decode(codec)
    except UnicodeDecodeError as exc:
        if codec != "utf-8":
            raise ManifestError(["%s: not valid %s text (byte %d)" % (source, codec.upper(), exc.start)])
        line = data.count(b"\n", 0, exc.start)
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1)
        raise ManifestError(["%s: not UTF-8 text: byte 0x%02x cannot be decoded (%s)" % (
            _where(source, line, column), data[exc.start], exc.reason)])


def load_text(text, source="manifest"):
    """Plain data from YAML text (or bytes); ManifestError with line and column for every problem."""
    if isinstance(text, (bytes, bytearray)):
        text = decode(bytes(text), source)
    if not isinstance(text, str):
        raise ManifestError(["%s: expected YAML text, got %s" % (source, type(text).__name__)])
    if len(text) > MAX_BYTES:
        raise ManifestError(["%s: more than %d characters; a manifest is a few kilobytes" % (source, MAX_BYTES)])
    text = text[1:] if text.startswith("\ufeff") else text
    loader = _Loader(text)
    try:
        data = loader.get_single_data()
    except ManifestLoadBound as exc:
        raise ManifestError(["%s: %s" % (_where(source, exc.mark.line, exc.mark.column), exc.problem)])
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = " ".join(part for part in (exc.problem or "", ("(%s line %d)" % (exc.context, exc.context_mark.line + 1))
                                             if exc.context and exc.context_mark and exc.problem_mark else
                                             (exc.context or "")) if part)
        where = _where(source, mark.line, mark.column) if mark else source
        raise ManifestError(["%s: not valid YAML: %s" % (where, problem or "syntax error")])
    except ReaderError as exc:
        line, column = _position(text, exc.position)
        raise ManifestError(["%s: character %s is not allowed in YAML text (%s)" % (
            _where(source, line, column), "U+%04X" % exc.character if isinstance(exc.character, int)
            else repr(exc.character), exc.reason)])
    except YAMLError as exc:
        raise ManifestError(["%s: not valid YAML: %s" % (source, short(str(exc), 200))])
    except (RecursionError, MemoryError, ValueError, OverflowError, TypeError) as exc:
        raise ManifestError(["%s: cannot be read (%s)" % (source, type(exc).__name__)])
    finally:
        loader.dispose()
    return copy_bounded(data, source)


def load_file(path, source=None):
    """Plain data from a manifest file (read at most MAX_BYTES + 1 bytes)."""
    source = source or path
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except (IOError, OSError) as exc:
        raise ManifestError(["%s: cannot be read: %s" % (source, exc.strerror or exc)])
    return load_text(data, source)


def copy_bounded(value, source="manifest", convert=None, locate=None):
    """A plain copy of ``value`` (shared references expanded) within the same bounds as the text.

    For data that did not come through ``load_text`` (a vars file Ansible parsed, a
    mapping in a play), and to turn a loaded graph with shared aliases into a tree.
    ``convert(value)`` may replace a value first (returns it unchanged when it does not
    apply), for example an Ansible vault object by a secret reference; ``locate(value)``
    may say where it came from (``file:line:col``) for messages.
    """
    budget = [MAX_VALUES, MAX_CHARS]

    def fail(problem, where_value, path):
        where = locate(where_value) if locate else None
        raise ManifestError(["%s%s: %s" % (source, (" (%s)" % where) if where else "", "%s: %s" % (
            format_path(path), problem) if path else problem)])

    def walk(item, path, depth, active, converting=True):
        if converting and convert is not None:
            converted = convert(item)
            if converted is not item:  # a replacement is copied as it is
                return walk(converted, path, depth, active, False)
        budget[0] -= 1
        if budget[0] < 0:
            fail("more than %d values" % MAX_VALUES, item, path)
        if depth > MAX_DEPTH:
            fail("nested deeper than %d levels" % MAX_DEPTH, item, path)
        if item is None or isinstance(item, bool):
            return item
        if isinstance(item, int):
            if abs(int(item)) >= 10 ** MAX_INT_DIGITS:
                fail("an integer of more than %d digits" % MAX_INT_DIGITS, item, path)
            return int(item)
        if isinstance(item, float):
            return float(item)
        if isinstance(item, str):
            budget[1] -= len(item)
            if budget[1] < 0:
                fail("more than %d characters in all" % MAX_CHARS, item, path)
            return str(item)
        if isinstance(item, (dict, list, tuple)) or hasattr(item, "items"):
            if id(item) in active:
                fail("a value contains itself (a cycle)", item, path)
            active = active | {id(item)}
            if isinstance(item, (list, tuple)):
                return [walk(v, path + [i], depth + 1, active, converting) for i, v in enumerate(item)]
            out = {}
            for k, v in item.items():
                if not isinstance(k, str):
                    fail("the key %s is a %s: keys are strings" % (short(k, 40), _kind(k)), item, path)
                out[str(k)] = walk(v, path + [str(k)], depth + 1, active, converting)
            return out
        fail("a %s is not manifest data (strings, numbers, booleans, null, lists and mappings)" % _kind(item),
             item, path)

    try:
        return walk(value, [], 1, frozenset())
    except RecursionError:
        raise ManifestError(["%s: nested too deeply" % source])


def _kind(value):
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if value is None:
        return "null"
    return type(value).__name__
