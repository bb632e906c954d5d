"""Backfill output written as Parquet without pyarrow's writer, for the common case.

pyarrow's writer spends most of a backfill's time on the columns the backfill makes: about
11 ns a row for each dictionary-encoded arm or reason column and 6 ns for each bucket column
(on an AMD EPYC, pyarrow 26), where the values are already small integer codes. This writer
encodes those codes straight into Parquet pages (dictionary indices bit-packed, definition
levels from the sign of the code) and copies the kept text and integer columns as PLAIN values,
in C++ (``trafficsplit._core.parquet``); pages of a column with a codec are compressed by
pyarrow's codecs (snappy, zstd). What it writes is ordinary Parquet: data pages v1, one row
group per batch, the Arrow schema in the footer as pyarrow writes it, so pyarrow, DuckDB and
Spark read it back as they read pyarrow's output (the tests check all three).

The framing (page headers, row groups, the footer) is Thrift's compact protocol, encoded here
by :class:`_Struct`: the writer uses a fixed handful of Parquet's structures, pyarrow does not
expose its encoder, and a Thrift library would still need Parquet's definitions compiled for it.

It serves the kept columns of the types in :func:`supported` and the codecs in :data:`CODECS`;
the backfill falls back to pyarrow's writer otherwise (``_backfill._Writer``).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import mmap
import os
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _core
from ._optional import require
from .batch import REASONS, BatchAssignment
from .errors import ArgumentError

__all__ = ["NativeParquetWriter", "supported"]

_NOTHING = np.empty(0, np.uint8)

PAGE_ROWS = 1 << 17
"""Rows per data page (a UUID column's page is about 5 MB)."""

# parquet.thrift enums
_INT32, _INT64, _BYTE_ARRAY = 1, 2, 6
_REQUIRED, _OPTIONAL = 0, 1
_UTF8, _DATE, _TIMESTAMP_MILLIS, _TIMESTAMP_MICROS = 0, 6, 9, 10
_PLAIN, _RLE, _RLE_DICTIONARY = 0, 3, 8
_DATA_PAGE, _DICTIONARY_PAGE = 0, 2
_UNCOMPRESSED = 0
CODECS = {"none": 0, "snappy": 1, "zstd": 6}
"""The codecs this writer compresses with (by pyarrow's codecs), by their Parquet numbers."""

# Thrift compact protocol type codes
_T_TRUE, _T_FALSE, _T_I32, _T_I64, _T_BINARY, _T_LIST, _T_STRUCT = 1, 2, 5, 6, 8, 9, 12


class _Struct:
    """A Thrift struct for the compact protocol: fields (id, kind, value), kinds ``i32``,
    ``i64``, ``bool``, ``binary``, ``struct`` (a _Struct), ``list`` ((element kind, items))."""

    __slots__ = ("fields",)

    def __init__(self, *fields: tuple[int, str, Any]) -> None:
        self.fields = [f for f in fields if f[2] is not None]

    def encode(self, out: bytearray) -> None:
        last = 0
        for fid, kind, value in sorted(self.fields, key=lambda f: f[0]):
            code = (_T_TRUE if value else _T_FALSE) if kind == "bool" else _FIELD_CODES[kind]
            if 0 < fid - last <= 15:
                out.append(((fid - last) << 4) | code)
            else:
                out.append(code)
                _varint(out, _zigzag(fid))
            last = fid
            if kind != "bool":
                _value(out, kind, value)
        out.append(0)  # stop

    def __bytes__(self) -> bytes:
        out = bytearray()
        self.encode(out)
        return bytes(out)


_FIELD_CODES = {"i32": _T_I32, "i64": _T_I64, "binary": _T_BINARY, "struct": _T_STRUCT,
                "list": _T_LIST}  # fmt: skip
_ELEMENT_CODES = {"i32": _T_I32, "binary": _T_BINARY, "struct": _T_STRUCT}


def _value(out: bytearray, kind: str, value: Any) -> None:
    if kind in ("i32", "i64"):
        _varint(out, _zigzag(value))
    elif kind == "binary":
        data = value.encode() if isinstance(value, str) else bytes(value)
        _varint(out, len(data))
        out += data
    elif kind == "struct":
        value.encode(out)
    else:  # list
        element, items = value
        code = _ELEMENT_CODES[element]
        if len(items) < 15:
            out.append((len(items) << 4) | code)
        else:
            out.append(0xF0 | code)
            _varint(out, len(items))
        for item in items:
            _value(out, element, item)


def _zigzag(n: int) -> int:
    return ((n << 1) ^ (n >> 63)) & 0xFFFFFFFFFFFFFFFF


def _varint(out: bytearray, n: int) -> None:
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)


def _page_header(
    kind: int, size: int, rows: int, encoding: int, stored: int | None = None
) -> bytes:
    """A page header; ``size`` the body's size, ``stored`` its size compressed (default: the
    same, uncompressed)."""
    if kind == _DICTIONARY_PAGE:
        detail = (7, "struct", _Struct((1, "i32", rows), (2, "i32", _PLAIN)))
    else:
        detail = (
            5,
            "struct",
            _Struct((1, "i32", rows), (2, "i32", encoding), (3, "i32", _RLE), (4, "i32", _RLE)),
        )
    stored = size if stored is None else stored
    return bytes(_Struct((1, "i32", kind), (2, "i32", size), (3, "i32", stored), detail))


# -- columns ------------------------------------------------------------------------------------


def _logical(pa: Any, t: Any) -> tuple[int, int | None, _Struct | None, int]:
    """(physical type, converted type, logical type, value width) of a kept column's Arrow
    type, as pyarrow's writer annotates it; raises KeyError for a type not served here."""
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return _BYTE_ARRAY, _UTF8, _Struct((1, "struct", _Struct())), 0
    if pa.types.is_binary(t) or pa.types.is_large_binary(t):
        return _BYTE_ARRAY, None, None, 0
    if pa.types.is_int64(t):
        return _INT64, None, None, 8
    if pa.types.is_int32(t):
        return _INT32, None, None, 4
    if pa.types.is_date32(t):
        return _INT32, _DATE, _Struct((6, "struct", _Struct())), 4
    if pa.types.is_timestamp(t) and t.unit in ("ms", "us", "ns"):
        utc = t.tz is not None
        unit = {"ms": 1, "us": 2, "ns": 3}[t.unit]
        converted = {"ms": _TIMESTAMP_MILLIS, "us": _TIMESTAMP_MICROS}.get(t.unit) if utc else None
        logical = _Struct(
            (
                8,
                "struct",
                _Struct((1, "bool", utc), (2, "struct", _Struct((unit, "struct", _Struct())))),
            )
        )
        return _INT64, converted, logical, 8
    raise KeyError(str(t))


def supported(pa: Any, t: Any) -> bool:
    """Whether a kept column of Arrow type ``t`` can be written here."""
    try:
        _logical(pa, t)
    except KeyError:
        return False
    return True


class _Column:
    """One output column: where its values come from and how its pages are encoded."""

    __slots__ = (
        "chunks",
        "codec",
        "converted",
        "dictionary",
        "dictionary_raw",
        "kind",
        "large",
        "logical",
        "name",
        "optional",
        "physical",
        "source",
        "width",
    )

    def __init__(self, name: str, kind: str, physical: int, optional: bool) -> None:
        self.name = name
        self.kind = kind  # kept | arm | bucket | reason
        self.physical = physical
        self.optional = optional
        self.converted: int | None = None
        self.logical: _Struct | None = None
        self.width = 0
        self.large = False
        self.source: Any = None  # kept: index of the kept array; else the experiment's index
        self.dictionary: bytes | None = None  # the dictionary page, header included
        self.dictionary_raw = 0  # its size uncompressed
        self.codec: Any = None  # a pyarrow Codec, or None: uncompressed
        self.chunks: list[_Struct] = []

    def schema_element(self) -> _Struct:
        return _Struct(
            (1, "i32", self.physical),
            (3, "i32", _OPTIONAL if self.optional else _REQUIRED),
            (4, "binary", self.name),
            (6, "i32", self.converted),
            (10, "struct", self.logical),
        )


def _dictionary_page(values: Sequence[str], codec: Any) -> tuple[bytes, int, int]:
    """The dictionary page (header and stored body), the bit width of its indices and the
    page's size uncompressed."""
    body = bytearray()
    for v in values:
        data = v.encode()
        body += struct.pack("<I", len(data))
        body += data
    stored = bytes(body) if codec is None else codec.compress(body, asbytes=True)
    header = _page_header(_DICTIONARY_PAGE, len(body), len(values), _PLAIN, len(stored))
    raw = len(_page_header(_DICTIONARY_PAGE, len(body), len(values), _PLAIN)) + len(body)
    return header + stored, _core.parquet.index_bit_width(len(values)), raw


class NativeParquetWriter:
    """Writes the backfill's output file: the kept columns and, per experiment, arm, bucket and
    reason. :meth:`write` takes one batch (a row group); :meth:`close` writes the footer."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        schema: Any,
        kept: Sequence[str],
        arms: Sequence[Sequence[str]],
        direct: bool = True,
        codecs: dict[str, str] | None = None,
    ) -> None:
        """``codecs``: a codec of :data:`CODECS` by column name (default: none)."""
        pa = require("pyarrow")
        self._pa = pa
        self._schema = schema
        self._columns: list[_Column] = []
        codecs = codecs or {}
        unknown = {v for v in codecs.values() if v not in CODECS}
        if unknown:
            raise ArgumentError(f"backfill: no Parquet codec {sorted(unknown)} in this writer")
        for i, name in enumerate(kept):
            field = schema.field(name)
            physical, converted, logical, width = _logical(pa, field.type)
            c = _Column(name, "kept", physical, field.nullable)
            c.converted, c.logical, c.width, c.source = converted, logical, width, i
            c.large = pa.types.is_large_string(field.type) or pa.types.is_large_binary(field.type)
            self._columns.append(c)
        names = schema.names[len(kept) :]
        for e in range(len(arms)):
            arm, bucket, reason = names[3 * e : 3 * e + 3]
            a = _Column(arm, "arm", _BYTE_ARRAY, True)
            a.converted, a.logical = _UTF8, _Struct((1, "struct", _Struct()))
            b = _Column(bucket, "bucket", _INT32, True)
            r = _Column(reason, "reason", _BYTE_ARRAY, False)
            r.converted, r.logical = _UTF8, _Struct((1, "struct", _Struct()))
            for c in (a, b, r):
                c.source = e
                self._columns.append(c)
        for c in self._columns:
            codec = codecs.get(c.name, "none")
            c.codec = None if codec == "none" else pa.Codec(codec)
            if c.kind == "arm":
                c.dictionary, c.width, c.dictionary_raw = _dictionary_page(arms[c.source], c.codec)
            elif c.kind == "reason":
                c.dictionary, c.width, c.dictionary_raw = _dictionary_page(REASONS, c.codec)
        self._scratch = np.empty(1 << 20, np.uint8)
        self._row_groups: list[_Struct] = []
        self._rows = 0
        self._file = _OutputFile(path, direct)
        self._position = 0
        self._write(b"PAR1")

    def _write(self, data: bytes) -> None:
        self._file.write(data)
        self._position += len(data)

    def _page(self, c: _Column, rows: int, encoding: int, fn: Any, *args: Any) -> int:
        """A data page of column ``c``: its body encoded by ``fn`` (of ``_core.parquet``)
        straight into the output's staging buffer, behind room for its header, or, for a
        compressed column, into a buffer of its own and compressed from there. Returns the
        body's size before compression."""
        if c.codec is not None:
            size = fn(*args, self._scratch)
            if size < 0:
                self._scratch = np.empty(max(-size, 2 * len(self._scratch)), np.uint8)
                size = fn(*args, self._scratch)
            stored = c.codec.compress(self._scratch[:size])  # a pyarrow Buffer (no GIL held)
            self._write(_page_header(_DATA_PAGE, size, rows, encoding, stored.size))
            self._write(stored)
            return int(size)
        bound = -fn(*args, _NOTHING)  # an encoder given no room says how much it needs
        room = len(_page_header(_DATA_PAGE, bound, rows, encoding))
        out = self._file.region(room + bound)
        size = fn(*args, out[room:])
        assert size >= 0, size
        header = _page_header(_DATA_PAGE, size, rows, encoding)
        if len(header) < room:  # a smaller size than the bound took fewer varint bytes
            out[len(header) : len(header) + size] = out[room : room + size].copy()
        out[: len(header)] = np.frombuffer(header, np.uint8)
        self._file.commit(len(header) + size)
        self._position += len(header) + size
        return int(size)

    def write(self, arrays: Sequence[Any], results: Sequence[BatchAssignment]) -> None:
        """One row group: the kept columns' arrays (one chunk each) and one assignment result
        per experiment, in the order the writer was given them."""
        n = len(arrays[0]) if arrays else len(results[0].reason)
        if n == 0:
            return
        start = self._position
        chunks = []
        for c in self._columns:
            chunks.append(self._column_chunk(c, arrays, results, n))
        size = self._position - start
        self._row_groups.append(
            _Struct(
                (1, "list", ("struct", chunks)),
                (2, "i64", size),
                (3, "i64", n),
                (5, "i64", start),
                (6, "i64", size),
                (7, "i32", len(self._row_groups)),
            )
        )
        self._rows += n

    def _column_chunk(
        self, c: _Column, arrays: Sequence[Any], results: Sequence[BatchAssignment], n: int
    ) -> _Struct:
        start = self._position
        dictionary_offset = None
        raw = 0  # bytes the pages take uncompressed, headers included
        if c.dictionary is not None:
            dictionary_offset = start
            self._write(c.dictionary)
            raw += c.dictionary_raw
        data_offset = self._position
        parquet = _core.parquet
        encoding = _RLE_DICTIONARY if c.dictionary is not None else _PLAIN
        statistics = None
        if c.kind == "kept":
            array = arrays[c.source]
            buffers = array.buffers()
            validity = buffers[0] if array.null_count else None
            if validity is not None and not c.optional:
                raise ArgumentError(
                    f"backfill: column {c.name!r} is declared not null but has "
                    f"{array.null_count:,} nulls"
                )
            for first in range(0, n, PAGE_ROWS):
                count = min(PAGE_ROWS, n - first)
                at = self._position
                if c.physical == _BYTE_ARRAY:
                    body = self._page(
                        c, count, encoding, parquet.binary_page, buffers[1], buffers[2] or b"",
                        validity, 0, array.offset + first, count, c.large, c.optional,
                    )  # fmt: skip
                else:
                    body = self._page(
                        c, count, encoding, parquet.fixed_page, buffers[1], c.width, validity,
                        0, array.offset + first, count, c.optional,
                    )  # fmt: skip
                raw += self._raw_page(c, at, body, count, encoding)
            if c.physical != _BYTE_ARRAY:
                statistics = self._statistics(array, c.width)
        else:
            b = results[c.source]
            for first in range(0, n, PAGE_ROWS):
                count = min(PAGE_ROWS, n - first)
                part = slice(first, first + count)
                at = self._position
                if c.kind == "arm":
                    codes = np.ascontiguousarray(b.arm_index[part], np.int16)
                    body = self._page(c, count, encoding, parquet.arm_indices_page, codes, c.width)
                elif c.kind == "bucket":
                    values = np.ascontiguousarray(b.bucket[part], np.int32)
                    body = self._page(c, count, encoding, parquet.nonnegative_page, values)
                else:
                    reasons = np.ascontiguousarray(b.reason[part]).view(np.uint8)
                    body = self._page(
                        c, count, encoding, parquet.code_indices_page, reasons, c.width
                    )
                raw += self._raw_page(c, at, body, count, encoding)
        size = self._position - start
        encodings = [_PLAIN, _RLE] + ([_RLE_DICTIONARY] if c.dictionary is not None else [])
        codec = _UNCOMPRESSED if c.codec is None else CODECS[c.codec.name]
        meta = _Struct(
            (1, "i32", c.physical),
            (2, "list", ("i32", encodings)),
            (3, "list", ("binary", [c.name])),
            (4, "i32", codec),
            (5, "i64", n),
            (6, "i64", raw),
            (7, "i64", size),
            (9, "i64", data_offset),
            (11, "i64", dictionary_offset),
            (12, "struct", statistics),
        )
        return _Struct((2, "i64", 0), (3, "struct", meta))

    def _raw_page(self, c: _Column, at: int, body: int, rows: int, encoding: int) -> int:
        """The size a page written from ``at`` takes uncompressed, its header included."""
        if c.codec is None:
            return self._position - at
        return len(_page_header(_DATA_PAGE, body, rows, encoding)) + body

    def _statistics(self, array: Any, width: int) -> _Struct | None:
        pc = require("pyarrow.compute")
        fmt = "<q" if width == 8 else "<i"
        nulls = array.null_count
        if nulls == len(array):
            return _Struct((3, "i64", nulls))
        storage = array.cast(self._pa.int64() if width == 8 else self._pa.int32())
        bounds = pc.min_max(storage)
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        return _Struct(
            (3, "i64", nulls),
            (5, "binary", struct.pack(fmt, hi)),
            (6, "binary", struct.pack(fmt, lo)),
        )

    def close(self) -> None:
        """Writes the footer and closes the file."""
        arrow_schema = base64.b64encode(self._schema.serialize().to_pybytes())
        root = _Struct((4, "binary", "schema"), (5, "i32", len(self._columns)))
        meta = _Struct(
            (1, "i32", 2),
            (2, "list", ("struct", [root] + [c.schema_element() for c in self._columns])),
            (3, "i64", self._rows),
            (4, "list", ("struct", self._row_groups)),
            (
                5,
                "list",
                ("struct", [_Struct((1, "binary", "ARROW:schema"), (2, "binary", arrow_schema))]),
            ),
            (6, "binary", f"trafficsplit version {_version()}"),
            (7, "list", ("struct", [_Struct((1, "struct", _Struct())) for _ in self._columns])),
        )
        footer = bytes(meta)
        self._write(footer)
        self._write(struct.pack("<I", len(footer)))
        self._write(b"PAR1")
        self._file.close()

    def abort(self) -> None:
        """Closes the file without a footer (the caller removes it)."""
        self._file.close()


class _OutputFile:
    """The output file, written around the page cache where the system allows (``O_DIRECT``):
    a backfill's output is written once and not read back soon, and each gigabyte that goes
    through the page cache costs about a second of system time to copy and write back (a
    2-core virtual machine; the figures are in docs/benchmarks.md). Pages are encoded straight
    into an aligned staging buffer (:meth:`region`, :meth:`commit`) and written in whole
    blocks; the tail, and everything on a filesystem that refuses direct I/O (some network
    and FUSE filesystems, tmpfs before Linux 6.6) or with ``direct=False``, goes through
    ordinary writes."""

    BLOCK = 4096  # direct writes: whole blocks from aligned memory
    FLUSH = 8 << 20  # staged bytes that start a write

    def __init__(self, path: str | os.PathLike[str], direct: bool = True) -> None:
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0)
        o_direct: int = getattr(os, "O_DIRECT", 0) if direct else 0
        self._fd = -1
        if o_direct:
            try:
                self._fd = os.open(path, flags | o_direct, 0o666)
            except OSError:
                self._fd = -1
        self._direct = self._fd >= 0
        if not self._direct:
            self._fd = os.open(path, flags, 0o666)
        self._stage: mmap.mmap | None = None
        self._array: np.ndarray | None = None
        self._fill = 0
        self._grow(2 * self.FLUSH)

    def _grow(self, size: int) -> None:
        """A staging buffer of at least ``size`` bytes (page-aligned: a fresh mapping) holding
        what was staged."""
        size = -(-size // self.BLOCK) * self.BLOCK
        stage = mmap.mmap(-1, size)
        array = np.frombuffer(stage, np.uint8)
        old = self._stage
        if self._array is not None:
            array[: self._fill] = self._array[: self._fill]
        self._array = None  # the old buffer's last view, before its mapping closes
        if old is not None:
            with contextlib.suppress(BufferError):
                old.close()
        self._stage, self._array = stage, array

    def region(self, size: int) -> np.ndarray:
        """``size`` writable bytes where the next data goes (valid until the next call)."""
        assert self._array is not None
        if len(self._array) - self._fill < size:
            self._flush()
            if len(self._array) - self._fill < size:
                self._grow(self._fill + size)
        assert self._array is not None
        return self._array[self._fill : self._fill + size]

    def commit(self, size: int) -> None:
        """Takes the first ``size`` bytes of the last region as written."""
        self._fill += size
        if self._fill >= self.FLUSH:
            self._flush()

    def write(self, data: bytes) -> None:
        self.region(len(data))[:] = np.frombuffer(data, np.uint8)
        self.commit(len(data))

    def _flush(self) -> None:
        """Writes what is staged, in whole blocks when direct (the rest moves to the front)."""
        assert self._array is not None
        n = self._fill - self._fill % self.BLOCK if self._direct else self._fill
        if n == 0:
            return
        try:
            _write_all(self._fd, self._array[:n])
        except OSError as exc:
            if exc.errno != errno.EINVAL or not self._direct:
                raise
            self._buffered()  # a filesystem that opens with O_DIRECT but refuses the writes
            n = self._fill
            _write_all(self._fd, self._array[:n])
        rest = self._fill - n
        if rest:  # fewer than BLOCK bytes, from at least BLOCK on: no overlap
            self._array[:rest] = self._array[n : self._fill]
        self._fill = rest

    def _buffered(self) -> None:
        fcntl = require("fcntl")
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        fcntl.fcntl(self._fd, fcntl.F_SETFL, flags & ~os.O_DIRECT)
        self._direct = False

    def close(self) -> None:
        """Writes what is staged (the tail through ordinary writes) and closes the file."""
        try:
            self._flush()
            if self._fill:
                if self._direct:
                    self._buffered()
                self._flush()
        finally:
            self.abort()

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._array = None
        if self._stage is not None:
            with contextlib.suppress(BufferError):
                self._stage.close()
            self._stage = None


def _write_all(fd: int, data: Any) -> None:
    view = memoryview(data)
    while len(view):
        view = view[os.write(fd, view) :]


def _version() -> str:
    from . import __version__

    return str(__version__)
