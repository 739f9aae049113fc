//! How big what the tools return may be, whatever the upstream sent: titles, URLs, texts and
//! metadata are cut to fixed sizes, and a whole `search` or `fetch` result to
//! [`MAX_RESULT_BYTES`]. The MCP response carries the result twice (`structuredContent` and
//! the same JSON as text), so these bound what one call can make the gateway hold and send.

use serde_json::{Map, Value};

/// Longest title, in bytes.
pub const MAX_TITLE_BYTES: usize = 512;
/// Longest URL, in bytes; a longer one is left out (a cut URL would lead somewhere else).
pub const MAX_URL_BYTES: usize = 2048;
/// Longest text of a fetched item, in bytes; the rest is cut with [`TEXT_CUT_NOTE`].
pub const MAX_TEXT_BYTES: usize = 512 * 1024;
/// What ends a cut text.
pub const TEXT_CUT_NOTE: &str = "\n\n[… text cut at 512 KiB]";
/// Largest metadata object, serialized; entries beyond it are left out and counted.
pub const MAX_METADATA_BYTES: usize = 64 * 1024;
/// Largest tool result (its JSON), in bytes.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// `text` cut to at most `max_bytes` bytes, on a character boundary.
pub fn cut(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// A title of at most [`MAX_TITLE_BYTES`], with `…` when cut.
pub fn title(title: String) -> String {
    if title.len() <= MAX_TITLE_BYTES {
        return title;
    }
    let mut title = cut(title, MAX_TITLE_BYTES - '…'.len_utf8());
    title.push('…');
    title
}

/// The URL, or nothing when it is longer than [`MAX_URL_BYTES`].
pub fn url(url: String) -> String {
    if url.len() <= MAX_URL_BYTES {
        url
    } else {
        String::new()
    }
}

/// A text of at most [`MAX_TEXT_BYTES`] plus the note saying it was cut. A text a handler
/// already cut (with the same note) is left as it is.
pub fn text(text: String) -> String {
    if text.len() <= MAX_TEXT_BYTES + TEXT_CUT_NOTE.len() {
        return text;
    }
    let mut text = cut(text, MAX_TEXT_BYTES);
    text.push_str(TEXT_CUT_NOTE);
    text
}

/// Metadata of at most about [`MAX_METADATA_BYTES`]: entries that do not fit are left out,
/// and `_omitted` says how many.
pub fn metadata(metadata: Value) -> Value {
    let Value::Object(entries) = metadata else {
        return metadata;
    };
    let mut kept = Map::new();
    let (mut size, mut omitted) = (2, 0);
    for (key, value) in entries {
        let entry = key.len() + 4 + serialized_len(&value);
        if size + entry <= MAX_METADATA_BYTES {
            size += entry;
            kept.insert(key, value);
        } else {
            omitted += 1;
        }
    }
    if omitted > 0 {
        kept.insert("_omitted".to_owned(), omitted.into());
    }
    Value::Object(kept)
}

/// `text` cut further (halved until it fits, then noted) when its JSON would take more than
/// `budget` bytes: escapes can make the JSON of a text several times longer than the text.
pub fn text_within(mut text: String, budget: usize) -> String {
    let room = budget.saturating_sub(serialized_len(TEXT_CUT_NOTE));
    let mut was_cut = false;
    while !text.is_empty() && serialized_len(&text) > room {
        let half = text.len() / 2;
        text = cut(text, half);
        was_cut = true;
    }
    if was_cut {
        text.push_str(TEXT_CUT_NOTE);
    }
    text
}

/// Search results, from the first, as long as their JSON stays under [`MAX_RESULT_BYTES`].
pub fn results(results: Vec<Value>) -> Vec<Value> {
    let mut size = "{\"results\":[]}".len();
    // Results are small objects of capped strings: when even their longest possible JSON fits,
    // nothing is cut and nothing needs writing out (this runs on every search).
    let bound = results
        .iter()
        .try_fold(size, |total, result| Some(total + len_bound(result)? + 1));
    if bound.is_some_and(|bound| bound <= MAX_RESULT_BYTES) {
        return results;
    }
    results
        .into_iter()
        .take_while(|result| {
            size += serialized_len(result) + 1;
            size <= MAX_RESULT_BYTES
        })
        .collect()
}

/// The length of `value`'s JSON, counted as it is written (nothing is kept: this runs for
/// every search result).
pub fn serialized_len<T: serde::Serialize + ?Sized>(value: &T) -> usize {
    let mut counter = ByteCounter(0);
    match serde_json::to_writer(&mut counter, value) {
        Ok(()) => counter.0,
        Err(_) => usize::MAX,
    }
}

/// At least the length of `value`'s JSON, for strings and objects of them (a byte of a string
/// takes at most six in JSON: `\u00XX`); `None` for anything else.
fn len_bound(value: &Value) -> Option<usize> {
    match value {
        Value::String(text) => Some(6 * text.len() + 2),
        Value::Object(entries) => entries.iter().try_fold(2, |total, (key, value)| {
            Some(total + 6 * key.len() + 4 + len_bound(value)?)
        }),
        _ => None,
    }
}

/// A writer that only counts.
struct ByteCounter(usize);

impl std::io::Write for ByteCounter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0 += bytes.len();
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cuts_fall_on_character_boundaries() {
        assert_eq!(cut("héllo".to_owned(), 2), "h");
        assert_eq!(cut("abc".to_owned(), 5), "abc");
        let long = title("é".repeat(1000));
        assert!(
            long.len() <= MAX_TITLE_BYTES && long.ends_with('…'),
            "{long}"
        );
    }

    #[test]
    fn long_texts_are_cut_with_a_note_and_long_urls_dropped() {
        let cut = text("a".repeat(MAX_TEXT_BYTES * 2));
        assert_eq!(cut.len(), MAX_TEXT_BYTES + TEXT_CUT_NOTE.len());
        assert!(cut.ends_with(TEXT_CUT_NOTE));
        assert_eq!(text(cut.clone()), cut, "a cut text stays as it is");
        assert_eq!(url("x".repeat(MAX_URL_BYTES + 1)), "");
        // Control characters take six bytes each in JSON.
        let escaped = text_within("\u{1}".repeat(1000), 1000);
        assert!(serialized_len(&escaped) <= 1000, "{}", escaped.len());
        assert!(escaped.ends_with(TEXT_CUT_NOTE));
        assert_eq!(text_within("short".to_owned(), 1000), "short");
    }

    #[test]
    fn metadata_and_results_keep_what_fits() {
        let big = "x".repeat(MAX_METADATA_BYTES);
        let kept = metadata(json!({"a": 1, "big": big, "b": "two"}));
        assert_eq!(kept, json!({"a": 1, "b": "two", "_omitted": 1}));
        let result = json!({"id": "x".repeat(100_000)});
        let fitted = results(vec![result; 20]);
        assert_eq!(fitted.len(), 10);
        // Escapes count: 20 results of 30,000 control characters (180,000 bytes of JSON each).
        let escaped = json!({"id": "\u{1}".repeat(30_000)});
        assert_eq!(results(vec![escaped; 20]).len(), 5);
        let small = json!({"id": "a", "title": "\u{1}", "url": ""});
        assert_eq!(results(vec![small.clone(); 200]), vec![small; 200]);
        for value in [
            json!("\u{1}\"\\é"),
            json!({"k\n": "v", "x": {"y": "\u{7f}"}}),
        ] {
            assert!(
                len_bound(&value).unwrap() >= serialized_len(&value),
                "{value}"
            );
        }
    }
}
