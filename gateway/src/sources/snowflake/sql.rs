//! The read-only check on SQL that Cortex Analyst proposes before the SQL API runs it with the
//! source's PAT: exactly one statement, and that statement a query (`SELECT` or `WITH`).
//!
//! The text is scanned the way Snowflake tokenizes it, so that a `;` inside a string, a quoted
//! identifier, a `$$` string or a comment does not count, and a `;` followed by anything but
//! whitespace and comments does (`SELECT 1; DROP TABLE t`). Text the scanner cannot close (an
//! unterminated string or comment) is refused rather than guessed at. The request also pins
//! `MULTI_STATEMENT_COUNT` to 1, so Snowflake refuses what this check might miss.

use std::fmt;

/// Why a statement is not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// More than one statement (text after a `;`).
    Several,
    /// One statement that is not a query.
    NotAQuery,
    /// A string, identifier or comment that never ends.
    Unterminated,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Several => "more than one statement",
            Self::NotAQuery => "a statement that is not a query",
            Self::Unterminated => "a statement with an unterminated string or comment",
        })
    }
}

/// `Ok` for a single `SELECT`/`WITH` statement (a trailing `;` allowed), else why not.
pub fn check_read_only(sql: &str) -> Result<(), Refusal> {
    let code = code_outside_literals(sql)?;
    let mut statements = code.split(';').filter(|s| !s.trim().is_empty());
    let first = statements.next().ok_or(Refusal::NotAQuery)?;
    if statements.next().is_some() {
        return Err(Refusal::Several);
    }
    let keyword = first
        .trim_start_matches(|c: char| c.is_whitespace() || c == '(')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default();
    if keyword.eq_ignore_ascii_case("select") || keyword.eq_ignore_ascii_case("with") {
        Ok(())
    } else {
        Err(Refusal::NotAQuery)
    }
}

/// The text with every comment replaced by a space and every string, quoted identifier and
/// `$$` string by `''` (its content dropped), so that what is left can be split on `;`.
fn code_outside_literals(sql: &str) -> Result<String, Refusal> {
    let mut code = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(c) = rest.chars().next() {
        let (skipped, replacement) = match c {
            '\'' => (quoted(rest, '\'', true)?, "''"),
            '"' => (quoted(rest, '"', false)?, "''"),
            '$' if rest.starts_with("$$") => (closed_by(rest, 2, "$$")?, "''"),
            '-' if rest.starts_with("--") => (line_comment(rest), " "),
            '/' if rest.starts_with("//") => (line_comment(rest), " "),
            '/' if rest.starts_with("/*") => (closed_by(rest, 2, "*/")?, " "),
            _ => {
                code.push(c);
                rest = &rest[c.len_utf8()..];
                continue;
            }
        };
        code.push_str(replacement);
        rest = &rest[skipped..];
    }
    Ok(code)
}

/// Bytes of a string or identifier opened by `quote` at the start of `text`, closing quote
/// included: a doubled quote is part of it, and so, in strings, is a backslash escape.
fn quoted(text: &str, quote: char, backslash_escapes: bool) -> Result<usize, Refusal> {
    let mut chars = text.char_indices().skip(1);
    while let Some((at, c)) = chars.next() {
        if backslash_escapes && c == '\\' {
            chars.next();
        } else if c == quote {
            if text[at + 1..].starts_with(quote) {
                chars.next();
            } else {
                return Ok(at + 1);
            }
        }
    }
    Err(Refusal::Unterminated)
}

/// Bytes from the start of `text` to the end of the first `end` after `open` bytes.
fn closed_by(text: &str, open: usize, end: &str) -> Result<usize, Refusal> {
    text[open..]
        .find(end)
        .map(|at| open + at + end.len())
        .ok_or(Refusal::Unterminated)
}

/// Bytes of a comment that runs to the end of the line.
fn line_comment(text: &str) -> usize {
    text.find('\n').unwrap_or(text.len())
}

#[cfg(test)]
mod tests {
    use super::{Refusal, check_read_only};

    #[test]
    fn single_queries_are_run() {
        for sql in [
            "SELECT 1",
            "SELECT 1;",
            "  with t as (select 1) select * from t ;  -- done\n",
            "(select 1)",
            "-- Analyst's note\nSELECT 1",
            "/* note */ SELECT 1; /* trailing */ // and more\n",
            "SELECT 'a;b', \"odd;name\", $$x;y$$ FROM t",
            "SELECT 'it''s; fine', 'back\\'slash; too' FROM t",
        ] {
            assert_eq!(check_read_only(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn anything_after_a_semicolon_is_refused() {
        for sql in [
            "SELECT 1; DROP TABLE t",
            "SELECT 1;DROP TABLE t;",
            "SELECT ';'; DROP TABLE t",
            "SELECT 1 /* ; */; DELETE FROM t",
            "SELECT 1; -- comment\n SELECT 2",
            "WITH a AS (SELECT 1) SELECT * FROM a; CALL p()",
        ] {
            assert_eq!(check_read_only(sql), Err(Refusal::Several), "{sql}");
        }
    }

    #[test]
    fn statements_that_are_not_queries_are_refused() {
        for sql in [
            "DROP TABLE x",
            "selectx",
            "insert into t select 1",
            "",
            " ; ",
            "-- SELECT\nDELETE FROM t",
        ] {
            assert_eq!(check_read_only(sql), Err(Refusal::NotAQuery), "{sql}");
        }
    }

    #[test]
    fn unterminated_strings_and_comments_are_refused() {
        for sql in [
            "SELECT 'a; DROP TABLE t",
            "SELECT 1 /* ; DROP TABLE t",
            "SELECT $$; DROP",
            "SELECT \"x",
        ] {
            assert_eq!(check_read_only(sql), Err(Refusal::Unterminated), "{sql}");
        }
    }
}
