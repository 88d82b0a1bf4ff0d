"""The results schema: the writers use it, the README lists it, old layouts are recognised."""

from __future__ import annotations

import json

import pytest
from conftest import ROOT

from bench.analysis import quality
from bench.core import schema
from bench.run import rundir


def test_the_readme_lists_every_column_as_the_schema_says():
    assert schema.markdown() in (ROOT / "README.md").read_text()


def test_the_writers_take_their_columns_from_the_schema():
    assert rundir.LOSS_COLUMNS == schema.names("losses.csv")
    assert rundir.TIMING_COLUMNS == schema.names("timings.csv")
    assert rundir.BLOCK_COLUMNS == schema.names("blocks.csv")
    assert quality.QUALITY_COLUMNS == schema.names("quality.csv")
    assert all(c.unit is not None and c.meaning for cols in schema.TABLES.values() for c in cols)


@pytest.mark.parametrize("header,version", [("backend,mode,status,seed", 0), ("backend,mode,devices,seed", 1)])
def test_runs_before_schema_version_are_told_apart_by_their_columns(tmp_path, header, version):
    (tmp_path / "timings.csv").write_text(header + "\n")
    assert schema.version(tmp_path, {}) == version


def test_a_newer_or_malformed_version_is_refused(tmp_path):
    assert schema.version(tmp_path, {"schema_version": schema.SCHEMA_VERSION}) == schema.SCHEMA_VERSION
    for bad in (schema.SCHEMA_VERSION + 1, "2", -1):
        with pytest.raises(schema.UnknownSchema, match="update ganbench"):
            schema.version(tmp_path, json.loads(json.dumps({"schema_version": bad})))
