"""Quote every identifier that any supported database, or the SQL standard, treats as a keyword.

Entity and field names may be `order`, `from`, `returning` …; SQLAlchemy quotes a name only when
its dialect's list holds it, and those lists lag behind the databases (SQLite 3.35 reserved
`returning`, which SQLAlchemy's SQLite list lacks). Quoting a lowercase name changes nothing else
on SQLite or PostgreSQL, so each engine's preparer gets the union of all the lists.
"""
from __future__ import annotations

import sqlalchemy as sa

# https://sqlite.org/lang_keywords.html (SQLite 3.46).
SQLITE_KEYWORDS = frozenset("""
abort action add after all alter always analyze and as asc attach autoincrement before begin between
by cascade case cast check collate column commit conflict constraint create cross current current_date
current_time current_timestamp database default deferrable deferred delete desc detach distinct do drop
each else end escape except exclude exclusive exists explain fail filter first following for foreign
from full generated glob group groups having if ignore immediate in index indexed initially inner
insert instead intersect into is isnull join key last left like limit match materialized natural no
not nothing notnull null nulls of offset on or order others outer over partition plan pragma preceding
primary query raise range recursive references regexp reindex release rename replace restrict returning
right rollback row rows savepoint select set table temp temporary then ties to transaction trigger
unbounded union unique update using vacuum values view virtual when where window with without
""".split())

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

# PostgreSQL's reserved words beyond SQLAlchemy's ANSI list and the two above.
POSTGRESQL_EXTRA = frozenset({"returning", "variadic", "analyse", "analyze", "limit", "offset", "placing",
                              "verbose", "ilike", "isnull", "notnull", "freeze", "concurrently"})

ALL_KEYWORDS = SQLITE_KEYWORDS | SQL2016 | POSTGRESQL_EXTRA


def quote_every_keyword(engine: sa.Engine) -> sa.Engine:
    """Make `engine`'s SQL quote every identifier in ALL_KEYWORDS (the preparer is per engine)."""
    preparer = engine.dialect.identifier_preparer
    preparer.reserved_words = set(preparer.reserved_words) | ALL_KEYWORDS
    return engine
