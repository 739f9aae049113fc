//! What a remote server's tools must answer, checked before anything reaches the agent: a
//! search answer `{"results": [{"id", "title", "url"?}, …]}` and a fetch answer
//! `{"id"?, "title", "text", "url"?, "metadata"?}`, as structured content or as the single
//! JSON text item ChatGPT-style servers return. A result missing a required field fails the
//! call; sizes are capped as for every source (`caps`).

use rmcp::model::CallToolResult;
use serde_json::Value;

use crate::{
    caps,
    sources::{Document, Hit, SourceError},
};

/// Longest upstream id accepted (it travels in result ids and back in `fetch`).
pub const MAX_ID_BYTES: usize = 1024;

fn bad(message: String) -> SourceError {
    SourceError::BadResponse(message)
}

/// The answer's JSON: structured content, else the one text item parsed.
fn payload(tool: &str, result: CallToolResult) -> Result<Value, SourceError> {
    if result.is_error == Some(true) {
        return Err(bad(format!(
            "the remote MCP server's `{tool}` tool returned an error"
        )));
    }
    if let Some(structured) = result.structured_content {
        return Ok(structured);
    }
    let texts: Vec<&str> = result
        .content
        .iter()
        .filter_map(|c| c.as_text())
        .map(|t| t.text.as_str())
        .collect();
    match texts.as_slice() {
        [text] => serde_json::from_str(text).map_err(|_| {
            bad(format!(
                "the remote MCP server's `{tool}` tool answered text that is not JSON"
            ))
        }),
        _ => Err(bad(format!(
            "the remote MCP server's `{tool}` tool answered neither structured content nor one JSON text item"
        ))),
    }
}

/// Up to `limit` hits of a search answer.
pub fn hits(tool: &str, result: CallToolResult, limit: usize) -> Result<Vec<Hit>, SourceError> {
    let payload = payload(tool, result)?;
    let results = payload["results"].as_array().ok_or_else(|| {
        bad(format!(
            "the remote MCP server's `{tool}` answer has no `results` list"
        ))
    })?;
    results
        .iter()
        .take(limit)
        .enumerate()
        .map(|(n, item)| {
            let missing = |field: &str| {
                bad(format!(
                    "result {} of the remote MCP server's `{tool}` tool has no valid `{field}`",
                    n + 1
                ))
            };
            Ok(Hit {
                upstream_id: id(&item["id"]).ok_or_else(|| missing("id"))?,
                title: caps::title(text(&item["title"]).ok_or_else(|| missing("title"))?),
                url: link(&item["url"]),
            })
        })
        .collect()
}

/// A fetch answer as a document.
pub fn document(tool: &str, result: CallToolResult) -> Result<Document, SourceError> {
    let payload = payload(tool, result)?;
    let missing = |field: &str| {
        bad(format!(
            "the remote MCP server's `{tool}` answer has no valid `{field}`"
        ))
    };
    let title = text(&payload["title"]).ok_or_else(|| missing("title"))?;
    let body = payload["text"].as_str().ok_or_else(|| missing("text"))?;
    Ok(Document {
        title,
        text: caps::text(body.to_owned()),
        url: link(&payload["url"]),
        metadata: match &payload["metadata"] {
            Value::Object(_) => caps::metadata(payload["metadata"].clone()),
            _ => Value::Object(Default::default()),
        },
    })
}

/// An id: a non-empty string (or a number, as text) of at most [`MAX_ID_BYTES`], no control
/// characters.
fn id(value: &Value) -> Option<String> {
    let id = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    (!id.is_empty() && id.len() <= MAX_ID_BYTES && !id.chars().any(char::is_control)).then_some(id)
}

/// A non-blank string.
fn text(value: &Value) -> Option<String> {
    value
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

/// An http(s) URL, capped; anything else (a `javascript:` link) is left out.
fn link(value: &Value) -> String {
    match value.as_str() {
        Some(url) if url.starts_with("https://") || url.starts_with("http://") => {
            caps::url(url.to_owned())
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::{CallToolResult, ContentBlock};
    use serde_json::json;

    #[test]
    fn structured_and_text_answers_map_alike() {
        let answer = json!({"results": [{"id": "a:1", "title": "One", "url": "https://x.example/1"},
            {"id": 7, "title": "Seven", "url": "javascript:alert(1)"}]});
        let structured = hits("search", CallToolResult::structured(answer.clone()), 10).unwrap();
        let text = CallToolResult::success(vec![ContentBlock::text(answer.to_string())]);
        assert_eq!(hits("search", text, 10).unwrap(), structured);
        assert_eq!(structured[1].upstream_id, "7");
        assert_eq!(structured[1].url, "", "only http(s) links pass");
        assert_eq!(
            hits("search", CallToolResult::structured(answer), 1)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn a_result_without_id_or_title_fails_the_call() {
        for item in [
            json!({"title": "x"}),
            json!({"id": "", "title": "x"}),
            json!({"id": "1"}),
        ] {
            let answer = CallToolResult::structured(json!({"results": [item]}));
            assert!(matches!(
                hits("search", answer, 10),
                Err(SourceError::BadResponse(_))
            ));
        }
        let error = CallToolResult::error(vec![ContentBlock::text("boom")]);
        assert!(document("fetch", error).is_err());
    }
}
