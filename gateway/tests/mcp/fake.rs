//! A test-only `SourceHandler` for `box` sources whose behaviour is chosen by the source's
//! `subject_id`: `500` fails, `999` never answers, `77…` answers after 100 ms and is counted
//! (calls, most in flight at once, per subject), anything else serves three documents.

use std::{
    collections::HashMap,
    sync::{LazyLock, Mutex},
    time::Duration,
};

use gateway::{
    snapshot::ServedSource,
    sources::{BoxFuture, Document, Hit, Lifecycle, SourceError, SourceHandler},
};
use secrecy::ExposeSecret;
use serde_json::json;
use shared::model::source::BoxConfig;

pub struct FakeFiles;

/// The secret every test source is created with; the fake refuses to work without it, which
/// proves the gateway decrypted it.
pub const SECRET: &str = "box-secret";

fn subject(config: &BoxConfig) -> String {
    config.subject_id.clone()
}

fn check_secret(config: &BoxConfig) -> Result<(), SourceError> {
    if config.client_secret.expose_secret() == SECRET {
        Ok(())
    } else {
        Err(SourceError::Authentication(
            "authentication failed (invalid_client)".to_owned(),
        ))
    }
}

/// Per counted subject: calls so far, calls in flight, most in flight at once.
static COUNTED: LazyLock<Mutex<HashMap<String, [usize; 3]>>> = LazyLock::new(Mutex::default);

/// `(calls, most in flight at once)` of a counted subject (`77…`).
#[allow(dead_code)]
pub fn counted(subject: &str) -> (usize, usize) {
    let counted = COUNTED.lock().unwrap();
    counted.get(subject).map_or((0, 0), |c| (c[0], c[2]))
}

/// A counted search: 100 ms in flight.
async fn counted_call(subject: &str) {
    let update = |change: fn(&mut [usize; 3])| {
        change(
            COUNTED
                .lock()
                .unwrap()
                .entry(subject.to_owned())
                .or_default(),
        );
    };
    update(|c| {
        c[0] += 1;
        c[1] += 1;
        c[2] = c[2].max(c[1]);
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    update(|c| c[1] -= 1);
}

impl Lifecycle for FakeFiles {}

impl SourceHandler<BoxConfig> for FakeFiles {
    fn search<'a>(
        &'a self,
        _source: &'a ServedSource,
        config: &'a BoxConfig,
        query: &'a str,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>> {
        Box::pin(async move {
            check_secret(config)?;
            let subject = subject(config);
            match subject.as_str() {
                "500" => Err(SourceError::BadResponse(
                    "upstream error (HTTP 500)".to_owned(),
                )),
                "999" => {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    Ok(Vec::new())
                }
                counted if counted.starts_with("77") => {
                    counted_call(counted).await;
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
        _source: &'a ServedSource,
        config: &'a BoxConfig,
        upstream_id: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>> {
        Box::pin(async move {
            check_secret(config)?;
            let subject = subject(config);
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
