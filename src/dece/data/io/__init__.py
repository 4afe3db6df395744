"""Readers and writers of datasets. Every reader sets ``meta["id"]`` (a stable row id) and raises
:class:`dece.errors.DataError` naming the file, the 1-based row and the field for malformed input;
every writer writes atomically (a temporary file, then ``os.replace``) and keeps ``meta``."""

from dece.data.io.classification import read_classification_jsonl_gz, write_classification_jsonl_gz
from dece.data.io.csvfile import read_csv, write_csv
from dece.data.io.formats import FORMATS, Format, infer_format, resolve_format
from dece.data.io.jsonl import read_jsonl, write_jsonl
from dece.data.io.pairs import read_pairs, write_pairs

__all__ = [
    "FORMATS",
    "Format",
    "infer_format",
    "read_classification_jsonl_gz",
    "read_csv",
    "read_jsonl",
    "read_pairs",
    "resolve_format",
    "write_classification_jsonl_gz",
    "write_csv",
    "write_jsonl",
    "write_pairs",
]
