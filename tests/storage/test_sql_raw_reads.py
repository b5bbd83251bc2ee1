"""The SQLite store's raw read path (the feed's per-request reads): what it refuses and decodes.
Its results are checked against the SQLAlchemy path in the data store contract suite."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fyp.storage.data.sql import _RawRead


def test_the_raw_sqlite_reads_refuse_columns_that_need_conversion() -> None:
    """The feed's raw SQLite reads return SQLite's values as they are: a column type whose
    Python value differs (a boolean, a timestamp, an enum) must fail when the read is built,
    not hand the feed the wrong type."""
    dialect = sa.create_engine("sqlite://").dialect
    for col in (
        sa.Column("flag", sa.Boolean),
        sa.Column("at", sa.DateTime),
        sa.Column("kind", sa.Enum("a", "b")),
    ):
        table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.String), col)
        with pytest.raises(TypeError, match=col.name):
            _RawRead(sa.select(table), dialect)
    table = sa.Table("t", sa.MetaData(), sa.Column("id", sa.String), sa.Column("j", sa.JSON))
    read = _RawRead(sa.select(table).where(table.c.id == sa.bindparam("id")), dialect)
    assert read.args({"id": "x"}) == ["x"]
    assert read.rows([("x", '{"a": [1]}'), ("y", None)]) == [("x", {"a": [1]}), ("y", None)]
