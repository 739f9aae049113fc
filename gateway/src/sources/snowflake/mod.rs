//! Snowflake through its REST APIs with a programmatic access token (PAT).
//!
//! search: a Cortex Search service query with the source's columns; when a semantic model is
//! configured, Cortex Analyst is asked the same question and an answer becomes one extra
//! result. fetch: the service queried again with an `@eq` filter on the id column, or, for an
//! analyst result, its SQL run through the SQL API (202 polling, partitions) as a table.
//!
//! Result ids: `d.<base64url(JSON id value)>` for documents (ids may hold any character and
//! keep their JSON type for the filter), `a.<key id>.<base64url(sealed answer)>` for analyst
//! answers. The answer (question, interpretation, SQL) is sealed with the secrets key and bound
//! to the source, so any replica can serve the fetch and nobody can forge SQL into an id.

use std::sync::Arc;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use secrecy::ExposeSecret;
use serde_json::{Map, Value, json};
use shared::{crypto::Keyring, model::source::SnowflakeConfig};
use url::Url;

use crate::{
    caps,
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self},
    },
};

mod analyst;
mod sql;

/// Cortex Search refuses more.
const MAX_LIMIT: usize = 1000;
/// Rows of an analyst result shown at most.
const MAX_ROWS: usize = 200;
/// Longest cell shown in a result table.
const MAX_CELL: usize = 200;
/// Seconds Snowflake may run an analyst statement.
const STATEMENT_TIMEOUT_SECS: u64 = 60;

/// The `snowflake` handler.
pub struct Snowflake {
    http: reqwest::Client,
    /// Where calls go instead of each account URL (a forward proxy or an offline fake).
    base_override: Option<Url>,
    keyring: Arc<Keyring>,
}

/// A source's settings, checked.
struct Account<'a> {
    base: Url,
    pat: &'a str,
    database: &'a str,
    schema: &'a str,
    service: &'a str,
    id_column: &'a str,
    title_column: &'a str,
    text_column: &'a str,
    url_column: Option<&'a str>,
    semantic_model: Option<&'a str>,
    warehouse: Option<&'a str>,
    role: Option<&'a str>,
}

impl Account<'_> {
    fn columns(&self) -> Vec<&str> {
        let mut columns = vec![self.id_column, self.title_column, self.text_column];
        columns.extend(self.url_column);
        columns
    }
}

/// The value of `column` in a result row, matched case-insensitively (Cortex Search's key
/// casing follows the service definition).
fn column<'v>(row: &'v Map<String, Value>, column: &str) -> Option<&'v Value> {
    row.get(column).or_else(|| {
        row.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(column))
            .map(|(_, value)| value)
    })
}

fn as_text(value: Option<&Value>) -> Option<String> {
    match value? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl Snowflake {
    /// A handler; `base_override` (empty: none) receives every call instead of the account
    /// URL. Account hosts are checked against the allowed suffixes when a source is loaded.
    pub fn new(
        http: reqwest::Client,
        base_override: &str,
        keyring: Arc<Keyring>,
    ) -> Result<Self, url::ParseError> {
        let base_override = match base_override.trim() {
            "" => None,
            url => Some(Url::parse(url)?),
        };
        Ok(Self {
            http,
            base_override,
            keyring,
        })
    }

    fn account<'s>(&self, config: &'s SnowflakeConfig) -> Account<'s> {
        // The host was checked against the allowed suffixes when the source was loaded.
        let base = self.base_override.as_ref().unwrap_or(&config.account_url);
        Account {
            base: base.clone(),
            pat: config.pat.expose_secret(),
            database: &config.database,
            schema: &config.schema,
            service: &config.service,
            id_column: &config.id_column,
            title_column: &config.title_column,
            text_column: &config.text_column,
            url_column: config.url_column.as_deref(),
            semantic_model: config.semantic_model_file.as_deref(),
            warehouse: config.warehouse.as_deref(),
            role: config.role.as_deref(),
        }
    }

    fn url(account: &Account<'_>, segments: &[&str]) -> Url {
        let mut url = account.base.clone();
        url.path_segments_mut()
            .expect("an http URL")
            .pop_if_empty()
            .extend(segments);
        url
    }

    /// Sends with the PAT headers Snowflake requires on every call.
    async fn send(
        &self,
        account: &Account<'_>,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
    ) -> Result<reqwest::Response, SourceError> {
        upstream::send(|| {
            let request = self
                .http
                .request(method.clone(), url.clone())
                .bearer_auth(account.pat)
                .header(
                    "X-Snowflake-Authorization-Token-Type",
                    "PROGRAMMATIC_ACCESS_TOKEN",
                )
                .header(reqwest::header::ACCEPT, "application/json");
            match body {
                Some(body) => request.json(body),
                None => request,
            }
        })
        .await
    }

    async fn post_json(
        &self,
        account: &Account<'_>,
        url: &Url,
        body: &Value,
        what: &str,
    ) -> Result<Value, SourceError> {
        let response = self
            .send(account, reqwest::Method::POST, url, Some(body))
            .await?;
        if !response.status().is_success() {
            return Err(upstream::failure(response, what).await);
        }
        upstream::json(response).await
    }

    /// One Cortex Search query; returns the result rows.
    async fn query_service(
        &self,
        account: &Account<'_>,
        body: Value,
    ) -> Result<Vec<Map<String, Value>>, SourceError> {
        let url = Self::url(
            account,
            &[
                "api",
                "v2",
                "databases",
                account.database,
                "schemas",
                account.schema,
                "cortex-search-services",
                &format!("{}:query", account.service),
            ],
        );
        let answer = self
            .post_json(account, &url, &body, "Cortex Search")
            .await?;
        let results = answer["results"].as_array().ok_or_else(|| {
            SourceError::BadResponse("Cortex Search answered without `results`".to_owned())
        })?;
        Ok(results
            .iter()
            .filter_map(|row| row.as_object().cloned())
            .collect())
    }

    async fn search_service(
        &self,
        account: &Account<'_>,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, SourceError> {
        let rows = self
            .query_service(
                account,
                json!({"query": query, "columns": account.columns(), "limit": limit.clamp(1, MAX_LIMIT)}),
            )
            .await?;
        Ok(rows
            .iter()
            .filter_map(|row| {
                let id = column(row, account.id_column).filter(|v| !v.is_null())?;
                Some(Hit {
                    upstream_id: format!("d.{}", URL_SAFE_NO_PAD.encode(id.to_string())),
                    title: caps::title(
                        as_text(column(row, account.title_column))
                            .unwrap_or_else(|| "(untitled)".to_owned()),
                    ),
                    url: caps::url(
                        account
                            .url_column
                            .and_then(|c| as_text(column(row, c)))
                            .unwrap_or_default(),
                    ),
                })
            })
            .collect())
    }

    async fn search_all(
        &self,
        source: &ServedSource,
        config: &SnowflakeConfig,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, SourceError> {
        let account = self.account(config);
        let Some(model) = account.semantic_model else {
            return self.search_service(&account, query, limit).await;
        };
        let (documents, answer) = tokio::join!(
            self.search_service(&account, query, limit),
            self.ask_analyst(source, &account, model, query),
        );
        match (documents, answer) {
            (Ok(mut hits), Ok(Some(answer))) => {
                // The answer to the question first; the documents after it.
                hits.insert(0, answer);
                hits.truncate(limit);
                Ok(hits)
            }
            (Ok(hits), Ok(None)) => Ok(hits),
            (Ok(hits), Err(error)) => {
                tracing::warn!(source_id = %source.id, %error, "Cortex Analyst failed; returning search results only");
                Ok(hits)
            }
            (Err(error), Ok(Some(answer))) => {
                tracing::warn!(source_id = %source.id, %error, "Cortex Search failed; returning the analyst answer only");
                Ok(vec![answer])
            }
            (Err(error), _) => Err(error),
        }
    }

    async fn fetch_any(
        &self,
        source: &ServedSource,
        config: &SnowflakeConfig,
        id: &str,
    ) -> Result<Document, SourceError> {
        let account = self.account(config);
        match id.split_once('.') {
            Some(("d", encoded)) => self.fetch_document(&account, encoded).await,
            Some(("a", sealed)) => {
                let answer = self.open(source, sealed).ok_or(SourceError::NotFound)?;
                self.fetch_answer(&account, answer).await
            }
            _ => Err(SourceError::NotFound),
        }
    }

    async fn fetch_document(
        &self,
        account: &Account<'_>,
        encoded: &str,
    ) -> Result<Document, SourceError> {
        let id: Value = URL_SAFE_NO_PAD
            .decode(encoded)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok())
            .filter(|v: &Value| v.is_string() || v.is_number())
            .ok_or(SourceError::NotFound)?;
        let query = as_text(Some(&id)).unwrap_or_default();
        let rows = self
            .query_service(
                account,
                json!({"query": query, "columns": account.columns(),
                    "filter": {"@eq": {account.id_column: id}}, "limit": 1}),
            )
            .await?;
        let row = rows
            .into_iter()
            .find(|row| column(row, account.id_column) == Some(&id))
            .ok_or(SourceError::NotFound)?;
        let text_key = |key: &str| key.eq_ignore_ascii_case(account.text_column);
        Ok(Document {
            title: as_text(column(&row, account.title_column))
                .unwrap_or_else(|| "(untitled)".to_owned()),
            text: as_text(column(&row, account.text_column)).unwrap_or_default(),
            url: account
                .url_column
                .and_then(|c| as_text(column(&row, c)))
                .unwrap_or_default(),
            metadata: Value::Object(row.into_iter().filter(|(k, _)| !text_key(k)).collect()),
        })
    }
}

crate::source_handler!(Snowflake, SnowflakeConfig, search: search_all, fetch: fetch_any);
