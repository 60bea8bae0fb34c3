"""Names a tenant may not use for entities and fields.

Entity and field names become table and column names and expression names, so they may not be
reserved words of SQL (SQL:2016, PostgreSQL, SQLite — SQLite's from SQLAlchemy's dialect), Python
keywords (expressions are Python-like), or Formwork's own system fields.
"""
from __future__ import annotations

import keyword

from sqlalchemy.dialects.sqlite.base import SQLiteIdentifierPreparer as _SQLite
from sqlalchemy.sql.compiler import RESERVED_WORDS as _ANSI

from ..metadata.model import CHILD_SYSTEM_FIELDS, SYSTEM_FIELDS

# ISO/IEC 9075-2:2016 <reserved word>.
SQL2016 = frozenset("""
abs acos all allocate alter and any are array array_agg array_max_cardinality as asensitive asin
asymmetric at atan atomic authorization avg begin begin_frame begin_partition between bigint binary
blob boolean both by call called cardinality cascaded case cast ceil ceiling char char_length
character character_length check classifier clob close coalesce collate collect column commit
condition connect constraint contains convert copy corr corresponding cos cosh count covar_pop
covar_samp create cross cube cume_dist current current_catalog current_date
current_default_transform_group current_path current_role current_row current_schema current_time
current_timestamp current_transform_group_for_type current_user cursor cycle date day deallocate dec
decfloat decimal declare default define delete dense_rank deref describe deterministic disconnect
distinct double drop dynamic each element else empty end end_frame end_partition equals escape every
except exec execute exists exp external extract false fetch filter first_value float floor for
foreign frame_row free from full function fusion get global grant group grouping groups having hold
hour identity in indicator initial inner inout insensitive insert int integer intersect intersection
interval into is join json_array json_arrayagg json_exists json_object json_objectagg json_query
json_table json_table_primitive json_value lag language large last_value lateral lead leading left
like like_regex listagg ln local localtime localtimestamp log log10 lower match match_number
match_recognize matches max member merge method min minute mod modifies module month multiset national
natural nchar nclob new no none normalize not nth_value ntile null nullif numeric occurrences_regex
octet_length of offset old omit on one only open or order out outer over overlaps overlay parameter
partition pattern per percent percent_rank percentile_cont percentile_disc period portion position
position_regex power precedes precision prepare primary procedure ptf range rank reads real recursive
ref references referencing regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx
regr_sxy regr_syy release result return returns revoke right rollback rollup row row_number rows
running savepoint scope scroll search second seek select sensitive session_user set show similar sin
sinh skip smallint some specific specifictype sql sqlexception sqlstate sqlwarning sqrt start static
stddev_pop stddev_samp submultiset subset substring substring_regex succeeds sum symmetric system
system_time system_user table tablesample tan tanh then time timestamp timezone_hour timezone_minute
to trailing translate translate_regex translation treat trigger trim trim_array true truncate uescape
union unique unknown unnest update upper user using value values value_of var_pop var_samp varbinary
varchar varying versioning when whenever where width_bucket window with within without year
""".split())

# PostgreSQL's reserved words beyond the two lists above: SQLAlchemy's postgresql RESERVED_WORDS less
# those (tests/test_config.py compares them; importing that dialect would import every PostgreSQL
# driver's dialect module, ~40 ms of every command's start).
POSTGRESQL_ONLY = frozenset({"returning", "variadic"})

SQL_RESERVED = frozenset(SQL2016 | {w.lower() for w in _ANSI} | POSTGRESQL_ONLY
                         | {w.lower() for w in _SQLite.reserved_words})
PYTHON_KEYWORDS = frozenset(k for k in keyword.kwlist if k.islower())
SYSTEM_NAMES = frozenset(SYSTEM_FIELDS) | frozenset(CHILD_SYSTEM_FIELDS)
SYSTEM_TABLE_PREFIX = "fw_"
MAX_TABLE_NAME = 63  # PostgreSQL's identifier limit


def name_problem(name: str, kind: str) -> str | None:
    """Why `name` cannot name an entity or field (`kind`), or None when it can."""
    low = name.lower()
    if low in SYSTEM_NAMES and kind == "field":
        return (f"'{name}' is a system field every record already has; choose another name")
    if low in SQL_RESERVED:
        return f"'{name}' is a reserved word in SQL; choose another name"
    if low in PYTHON_KEYWORDS:
        return f"'{name}' is a keyword of the expression language; choose another name"
    if "__" in name:
        return f"'{name}' contains '__', which Formwork keeps for subtable tables"
    if name.endswith("_"):
        return f"'{name}' ends with '_'; choose another name"
    if kind == "entity" and low.startswith(SYSTEM_TABLE_PREFIX):
        return f"entity names may not start with '{SYSTEM_TABLE_PREFIX}' (Formwork's own tables)"
    return None
