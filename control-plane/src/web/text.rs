//! Text other people chose (agents' client names, server and source names), as it may be
//! shown: without Unicode format characters (general category Cf: the bidirectional overrides,
//! embeddings, isolates and marks U+202A–202E, U+2066–2069, U+200E/F, the zero-width space and
//! joiners, the byte order mark...). Rendered, a right-to-left override turns the text after it
//! around (it can reverse "name chosen by the agent itself, not verified" into something else),
//! and invisible characters make one name look like another.
//!
//! Names are cleaned where they enter (client registration and metadata documents), and again
//! where they are shown: every value an HTML template prints goes through [`Html`] (set as
//! askama's escaper for `.html` in `askama.toml`), and the API's grants list cleans names it
//! reads, so names stored before this rule are covered too.

use std::{borrow::Cow, fmt};

use askama::filters::Escaper;
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

/// Whether `c` is a Unicode format character (category Cf).
pub fn is_format(c: char) -> bool {
    c.general_category() == GeneralCategory::Format
}

/// `text` without format characters (borrowed when it has none, the usual case).
pub fn plain(text: &str) -> Cow<'_, str> {
    if text.chars().any(is_format) {
        Cow::Owned(text.chars().filter(|c| !is_format(*c)).collect())
    } else {
        Cow::Borrowed(text)
    }
}

/// askama's HTML escaping of [`plain`] text: the escaper of every `.html` template.
#[derive(Debug, Clone, Copy)]
pub struct Html;

impl Escaper for Html {
    fn write_escaped_str<W: fmt::Write>(&self, dest: W, string: &str) -> fmt::Result {
        askama::filters::Html.write_escaped_str(dest, &plain(string))
    }

    fn write_escaped_char<W: fmt::Write>(&self, dest: W, c: char) -> fmt::Result {
        if is_format(c) {
            return Ok(());
        }
        askama::filters::Html.write_escaped_char(dest, c)
    }
}

#[cfg(test)]
mod tests {
    use super::plain;

    #[test]
    fn direction_and_invisible_characters_are_dropped_and_the_rest_kept() {
        let tricky = "\u{202E}Evil\u{2066}\u{2067}\u{2068}\u{2069}\u{200B}\u{200E}\u{200F}\
                      \u{202A}\u{202B}\u{202C}\u{202D}\u{FEFF}\u{00AD}\u{2060} agent";
        assert_eq!(plain(tricky), "Evil agent");
        for kept in [
            "Claude",
            "ChatGPT – Research",
            "日本語のエージェント",
            "Ünïcödé 🚀",
            "a\nb",
        ] {
            assert_eq!(plain(kept), kept);
        }
    }
}
