//! A test-only `SourceHandler` for `box` sources whose behaviour is chosen by the source's
//! `subject_id`: `500` fails, `999` never answers, anything else serves three documents.

use std::time::Duration;

use gateway::{
    snapshot::ServedSource,
    sources::{BoxFuture, Document, Hit, SourceError, SourceHandler},
};
use serde_json::json;

pub struct FakeFiles;

/// The secret every test source is created with; the fake refuses to work without it, which
/// proves the gateway decrypted it.
pub const SECRET: &str = "box-secret";

fn subject(source: &ServedSource) -> String {
    source
        .metadata
        .get("subject_id")
        .and_then(|v| v.as_str())
        .unwrap_or_default()
        .to_owned()
}

fn check_secret(source: &ServedSource) -> Result<(), SourceError> {
    let secrets = source
        .secrets
        .as_ref()
        .map_err(|e| SourceError::Failed(e.clone()))?;
    match secrets.get("client_secret").and_then(|v| v.as_str()) {
        Some(SECRET) => Ok(()),
        _ => Err(SourceError::Failed(
            "authentication failed (invalid_client)".to_owned(),
        )),
    }
}

impl SourceHandler for FakeFiles {
    fn search<'a>(
        &'a self,
        source: &'a ServedSource,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>> {
        Box::pin(async move {
            check_secret(source)?;
            let subject = subject(source);
            match subject.as_str() {
                "500" => Err(SourceError::Failed("upstream error (HTTP 500)".to_owned())),
                "999" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(Vec::new())
                }
                _ => Ok((1..=3)
                    .take(limit)
                    .map(|n| Hit {
                        // Upstream ids with the characters real ones have: / + = : and case.
                        upstream_id: format!("{subject}/Doc+{n}=:x"),
                        title: format!("{query} #{n} in {subject}"),
                        url: format!("https://files.example/{subject}/{n}"),
                    })
                    .collect()),
            }
        })
    }

    fn fetch<'a>(
        &'a self,
        source: &'a ServedSource,
        upstream_id: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>> {
        Box::pin(async move {
            check_secret(source)?;
            let subject = subject(source);
            // Exactly the ids search handed out: case matters.
            if !(1..=3).any(|n| upstream_id == format!("{subject}/Doc+{n}=:x")) {
                return Err(SourceError::NotFound);
            }
            Ok(Document {
                title: format!("Document {upstream_id}"),
                text: format!("The text of {upstream_id}."),
                url: format!("https://files.example/{upstream_id}"),
                metadata: json!({"subject": subject}),
            })
        })
    }
}
