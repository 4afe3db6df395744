"""The built-in "turducken" corpus, written for this project in the style of Lyra: an English
description -> a whitespace-tokenised Python function with embedded SQL (SQLAlchemy ``execute`` with
named binds, DB-API cursors, the SQLAlchemy expression language, Flask ``jsonify``/``render_template``,
loops, ``try``/``except``...). Deterministic for a seed in every process; see :mod:`.corpus` for how
splits and the pretraining corpus are kept apart."""

from dece.data.builtin.corpus import (
    builtin_split,
    builtin_splits,
    generate_sql_corpus,
    pretraining_corpus,
)

__all__ = ["builtin_split", "builtin_splits", "generate_sql_corpus", "pretraining_corpus"]
