//! The SQL text of a `postgres` source's statements, built from its validated settings alone
//! (identifiers quoted); the agent's query and ids only ever travel as bind parameters.

use shared::model::source::postgres::Table;

/// Longest title read, in characters (the tools cut it further, in bytes).
pub(super) const TITLE_CHARS: usize = 512;

/// Longest text read, in characters: more than the tools keep, so a cut text is marked cut.
pub(super) const TEXT_CHARS: usize = 600_000;

/// Longest metadata value read, in characters.
pub(super) const METADATA_VALUE_CHARS: usize = 4096;

/// Matches of one table ranked at most, per search.
pub(super) const CANDIDATES: usize = 1000;

/// The text search configuration: `simple` stems nothing, so it suits any language; the
/// README's index uses the same one (it must, to be used).
pub(super) const TS_CONFIG: &str = "simple";

/// `"name"`, with quotes inside doubled (validated identifiers have none; this is the rule
/// anyway).
pub(super) fn quote(identifier: &str) -> String {
    format!("\"{}\"", identifier.replace('"', "\"\""))
}

pub(super) fn relation(table: &Table) -> String {
    format!("{}.{}", quote(&table.schema), quote(&table.name))
}

/// The searched document of a row: its text columns joined with spaces. Written with
/// immutable operators only (`||`, `coalesce`), so an expression index on the same text
/// (see [`index_sql`]) can serve the search.
pub(super) fn document(table: &Table) -> String {
    let columns: Vec<String> = table
        .text_columns
        .iter()
        .map(|c| format!("coalesce({}::text, '')", quote(c)))
        .collect();
    format!(
        "to_tsvector('{TS_CONFIG}', {})",
        columns.join(" || ' ' || ")
    )
}

/// The statement that searches one table: `$1` the query, `$2` the limit. The matches are
/// ranked among the first [`CANDIDATES`] the index yields: ranking re-reads each row's text,
/// so a query matching much of a large table would otherwise cost a pass over all of it.
pub fn search_sql(table: &Table) -> String {
    let document = document(table);
    format!(
        "select id, title from (\
           select {id}::text as id, left({title}::text, {TITLE_CHARS}) as title, {document} as document \
           from {relation} \
           where {document} @@ websearch_to_tsquery('{TS_CONFIG}', $1) and {id} is not null \
           limit {CANDIDATES}) as matches \
         order by ts_rank(document, websearch_to_tsquery('{TS_CONFIG}', $1)) desc limit $2",
        id = quote(&table.id_column),
        title = quote(&table.title_column),
        relation = relation(table),
    )
}

/// The statement that reads one row: `$1` the row id (as text, cast to the id column's type
/// `id_type`, so the column's index serves it), `$2` the text columns (left out of the
/// metadata). Title, text and metadata values are cut in the database, so a huge row is never
/// read whole.
pub fn fetch_sql(table: &Table, id_type: &str) -> String {
    let text: Vec<String> = table
        .text_columns
        .iter()
        .map(|c| format!("r.{}::text", quote(c)))
        .collect();
    format!(
        "select left(r.{title}::text, {TITLE_CHARS}), left(concat_ws(E'\\n\\n', {text}), {TEXT_CHARS}), \
         (select jsonb_object_agg(key, case when length(value::text) > {METADATA_VALUE_CHARS} \
            then to_jsonb(left(value::text, {METADATA_VALUE_CHARS}) || '…') else value end) \
          from jsonb_each(to_jsonb(r) - $2::text[])) \
         from {relation} r where r.{id} = $1::text::{id_type} limit 1",
        title = quote(&table.title_column),
        text = text.join(", "),
        id = quote(&table.id_column),
        relation = relation(table),
    )
}

/// The index that makes [`search_sql`] fast on a large table (the README recommends it).
pub fn index_sql(table: &Table) -> String {
    format!(
        "create index on {} using gin (({}))",
        relation(table),
        document(table)
    )
}
