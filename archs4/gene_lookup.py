"""Gene names as users write them -> the warehouse's `gene_idx`.

Users name genes three ways: HGNC/MGI symbols ("TP53"), Ensembl gene ids ("ENSG00000141510",
with or without a ".17" version suffix), or the warehouse's own `gene_idx` integers. Symbols
are not unique in ARCHS4's gene table (read-through loci and pseudogene families share them),
so a symbol may name several genes: callers that need one gene ask for `unique=True` and get a
clear error listing the candidates; callers that fetch a matrix take every match, as archs4py's
symbol-indexed DataFrames do.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import duckdb
import numpy as np
import polars as pl

ENSEMBL_VERSION = re.compile(r"^(ENS[A-Z]*G\d+)\.\d+$")
GENE_COLUMNS = "SELECT gene_idx, ensembl_id, symbol FROM genes ORDER BY gene_idx"


class GeneLookupError(ValueError):
    """A gene name the warehouse does not know, or that is ambiguous where one gene is needed."""


def gene_table(connection: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """(gene_idx, ensembl_id, symbol) of every gene, in gene order."""
    return pl.from_arrow(connection.sql(GENE_COLUMNS).to_arrow_table())  # type: ignore[return-value]


def _matches(genes: pl.DataFrame, name: str | int) -> list[int]:
    """The gene_idx values `name` denotes: an index, an Ensembl id, or a symbol."""
    if isinstance(name, int | np.integer):
        index = int(name)
        return [index] if 0 <= index < genes.height else []
    text = str(name).strip()
    versionless = ENSEMBL_VERSION.sub(r"\1", text)
    for column, value in (("ensembl_id", text), ("ensembl_id", versionless), ("symbol", text)):
        hits = genes.filter(pl.col(column) == value)["gene_idx"].to_list()
        if hits:
            return hits
    # Symbols are case-sensitive in HGNC but users type "tp53": accept a unique other-case match.
    hits = genes.filter(pl.col("symbol").str.to_uppercase() == text.upper())["gene_idx"]
    return hits.to_list()


def resolve_gene_ids(
    connection_or_genes: duckdb.DuckDBPyConnection | pl.DataFrame,
    genes: Iterable[str | int],
    *,
    unique: bool = False,
) -> np.ndarray:
    """The gene_idx values of `genes`, in the order given (a symbol's matches in gene order).

    Unknown names raise `GeneLookupError` naming them all at once. With `unique=True` every
    name must denote exactly one gene; an ambiguous symbol is refused with its Ensembl ids.
    """
    table = (
        connection_or_genes
        if isinstance(connection_or_genes, pl.DataFrame)
        else gene_table(connection_or_genes)
    )
    names = list(genes)
    found = {_key(name): _matches(table, name) for name in names}
    unknown = [str(name) for name in names if not found[_key(name)]]
    if unknown:
        raise GeneLookupError(f"unknown gene(s): {_listed(unknown)}")
    if unique:
        ambiguous = {name: hits for name, hits in found.items() if len(hits) > 1}
        if ambiguous:
            raise GeneLookupError("; ".join(_candidates(table, n, h) for n, h in ambiguous.items()))
    ordered = [index for name in names for index in found[_key(name)]]
    return np.asarray(list(dict.fromkeys(ordered)), dtype=np.int64)


def _key(name: str | int) -> str | int:
    return int(name) if isinstance(name, int | np.integer) else str(name)


def _listed(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _candidates(table: pl.DataFrame, name: str | int, hits: list[int]) -> str:
    ids = table.filter(pl.col("gene_idx").is_in(hits))["ensembl_id"].to_list()
    return f"{name} names {len(hits)} genes ({', '.join(ids)}): give one Ensembl id"
