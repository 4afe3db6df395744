"""Datasets: the :class:`Example` record, readers and writers (:mod:`dece.data.io`), the built-in
corpus (:mod:`dece.data.builtin`) and datasets by name (:mod:`dece.data.catalog`)."""

from dece.data.records import Example

__all__ = ["Example"]
