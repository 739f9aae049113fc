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
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use shared::{crypto::Keyring, model::source::SnowflakeConfig};
use url::Url;

use crate::{
    caps,
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self, retry},
    },
};

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

/// What an analyst result id carries (sealed).
#[derive(Serialize, Deserialize)]
struct Answer {
    question: String,
    interpretation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sql: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    suggestions: Vec<String>,
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

    /// Asks Cortex Analyst; an answer with SQL or suggestions becomes a result.
    async fn ask_analyst(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        model: &str,
        question: &str,
    ) -> Result<Option<Hit>, SourceError> {
        let url = Self::url(account, &["api", "v2", "cortex", "analyst", "message"]);
        let body = json!({
            "messages": [{"role": "user", "content": [{"type": "text", "text": question}]}],
            "semantic_model_file": model,
            "stream": false,
        });
        let reply = self
            .post_json(account, &url, &body, "Cortex Analyst")
            .await?;
        let content = reply["message"]["content"].as_array().ok_or_else(|| {
            SourceError::BadResponse("Cortex Analyst answered without `message.content`".to_owned())
        })?;
        let mut answer = Answer {
            question: question.to_owned(),
            interpretation: String::new(),
            sql: None,
            suggestions: Vec::new(),
        };
        for part in content {
            match part["type"].as_str() {
                Some("text") => {
                    let text = part["text"].as_str().unwrap_or_default();
                    if !answer.interpretation.is_empty() {
                        answer.interpretation.push('\n');
                    }
                    answer.interpretation.push_str(text);
                }
                Some("sql") => answer.sql = part["statement"].as_str().map(str::to_owned),
                Some("suggestions") => answer.suggestions.extend(
                    part["suggestions"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|s| s.as_str().map(str::to_owned)),
                ),
                _ => {}
            }
        }
        if answer.sql.is_none() && answer.suggestions.is_empty() {
            return Ok(None);
        }
        Ok(Some(Hit {
            upstream_id: self.seal(source, &answer),
            title: analyst_title(&answer),
            url: String::new(),
        }))
    }

    fn seal(&self, source: &ServedSource, answer: &Answer) -> String {
        let plain = serde_json::to_vec(answer).expect("an answer serializes");
        let (sealed, key_id) = self.keyring.seal(&plain, source.id.as_bytes());
        format!("a.{key_id}.{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The answer sealed into `id`, if it was sealed by us for this source.
    fn open(&self, source: &ServedSource, id: &str) -> Option<Answer> {
        let (key_id, sealed) = id.split_once('.')?;
        let sealed = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let plain = self
            .keyring
            .open(&sealed, key_id, source.id.as_bytes())
            .ok()?;
        serde_json::from_slice(&plain).ok()
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

    async fn fetch_answer(
        &self,
        account: &Account<'_>,
        answer: Answer,
    ) -> Result<Document, SourceError> {
        let title = analyst_title(&answer);
        let mut text = format!(
            "Question: {}\n\n{}\n",
            answer.question, answer.interpretation
        );
        let Some(sql) = &answer.sql else {
            text.push_str("\nCortex Analyst needs a clearer question. Suggestions:\n");
            for suggestion in &answer.suggestions {
                text.push_str(&format!("- {suggestion}\n"));
            }
            return Ok(Document {
                title,
                text,
                url: String::new(),
                metadata: json!({"suggestions": answer.suggestions}),
            });
        };
        let result = self.run_statement(account, sql).await?;
        text.push_str(&format!("\nSQL:\n```sql\n{sql}\n```\n\n"));
        text.push_str(&result.table());
        Ok(Document {
            title,
            text,
            url: String::new(),
            metadata: json!({
                "sql": sql, "statement_handle": result.handle, "rows": result.total_rows,
                "rows_shown": result.rows.len(), "columns": result.columns,
            }),
        })
    }

    /// Runs a read-only statement through the SQL API: waits out a 202 by polling the
    /// statement, then gathers partitions up to `MAX_ROWS` rows.
    async fn run_statement(
        &self,
        account: &Account<'_>,
        sql: &str,
    ) -> Result<StatementResult, SourceError> {
        sql::check_read_only(sql).map_err(|refusal| {
            SourceError::BadResponse(format!("Cortex Analyst proposed {refusal}; not run"))
        })?;
        // Snowflake itself refuses a request whose text holds more statements than this, so a
        // statement the check above missed still cannot run a second one.
        let mut body = json!({
            "statement": sql, "timeout": STATEMENT_TIMEOUT_SECS,
            "database": account.database, "schema": account.schema,
            "parameters": {"MULTI_STATEMENT_COUNT": "1"},
        });
        if let Some(warehouse) = account.warehouse {
            body["warehouse"] = json!(warehouse);
        }
        if let Some(role) = account.role {
            body["role"] = json!(role);
        }
        let url = Self::url(account, &["api", "v2", "statements"]);
        let mut response = self
            .send(account, reqwest::Method::POST, &url, Some(&body))
            .await?;
        let mut waits = retry::STATEMENT.waits();
        while response.status() == StatusCode::ACCEPTED {
            let pending: Value = upstream::json(response).await?;
            let handle = statement_handle(&pending)?;
            let Some(wait) = waits.next() else {
                return Err(SourceError::BadResponse(
                    "Snowflake statement still running".to_owned(),
                ));
            };
            tokio::time::sleep(wait).await;
            let status_url = Self::url(account, &["api", "v2", "statements", handle]);
            response = self
                .send(account, reqwest::Method::GET, &status_url, None)
                .await?;
        }
        if !response.status().is_success() {
            return Err(upstream::failure(response, "Snowflake statement").await);
        }
        let first: Value = upstream::json(response).await?;
        self.gather(account, first).await
    }

    /// The first partition's rows plus the following partitions', up to `MAX_ROWS`.
    async fn gather(
        &self,
        account: &Account<'_>,
        first: Value,
    ) -> Result<StatementResult, SourceError> {
        let handle = statement_handle(&first)?.to_owned();
        let meta = &first["resultSetMetaData"];
        let columns: Vec<String> = meta["rowType"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or("?").to_owned())
            .collect();
        let partitions = meta["partitionInfo"].as_array().map_or(1, Vec::len);
        let total_rows = meta["numRows"].as_u64().unwrap_or(0);
        let mut rows = rows_of(&first)?;
        for partition in 1..partitions {
            if rows.len() >= MAX_ROWS {
                break;
            }
            let mut url = Self::url(account, &["api", "v2", "statements", &handle]);
            url.query_pairs_mut()
                .append_pair("partition", &partition.to_string());
            let response = self.send(account, reqwest::Method::GET, &url, None).await?;
            if !response.status().is_success() {
                return Err(upstream::failure(response, "Snowflake result partition").await);
            }
            rows.extend(rows_of(&upstream::json(response).await?)?);
        }
        rows.truncate(MAX_ROWS);
        Ok(StatementResult {
            handle,
            columns,
            rows,
            total_rows,
        })
    }
}

/// A statement's handle, checked before it goes into a URL path.
fn statement_handle(answer: &Value) -> Result<&str, SourceError> {
    answer["statementHandle"]
        .as_str()
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 128
                && h.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .ok_or_else(|| {
            SourceError::BadResponse("Snowflake answered without a statement handle".to_owned())
        })
}

fn rows_of(answer: &Value) -> Result<Vec<Vec<Option<String>>>, SourceError> {
    let data = answer["data"]
        .as_array()
        .ok_or_else(|| SourceError::BadResponse("Snowflake answered without `data`".to_owned()))?;
    Ok(data
        .iter()
        .map(|row| {
            row.as_array()
                .into_iter()
                .flatten()
                .map(|cell| as_text(Some(cell)))
                .collect()
        })
        .collect())
}

fn analyst_title(answer: &Answer) -> String {
    let first_line = answer.interpretation.lines().next().unwrap_or_default();
    let mut title: String = first_line.chars().take(160).collect();
    if title.is_empty() {
        title = format!("Cortex Analyst: {}", answer.question);
    }
    title
}

struct StatementResult {
    handle: String,
    columns: Vec<String>,
    rows: Vec<Vec<Option<String>>>,
    total_rows: u64,
}

impl StatementResult {
    /// The rows as a Markdown table, with a note when rows were left out.
    fn table(&self) -> String {
        let cell = |value: Option<&str>| -> String {
            let value = value.unwrap_or("NULL");
            let mut shown: String = value
                .chars()
                .take(MAX_CELL)
                .map(|c| if c == '\n' || c == '\r' { ' ' } else { c })
                .collect();
            if value.chars().count() > MAX_CELL {
                shown.push('…');
            }
            shown.replace('|', "\\|")
        };
        let mut table = format!(
            "| {} |\n|{}\n",
            self.columns
                .iter()
                .map(|c| cell(Some(c)))
                .collect::<Vec<_>>()
                .join(" | "),
            " --- |".repeat(self.columns.len().max(1))
        );
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(|v| cell(v.as_deref())).collect();
            table.push_str(&format!("| {} |\n", cells.join(" | ")));
        }
        let shown = self.rows.len() as u64;
        if self.total_rows > shown {
            table.push_str(&format!("\n({shown} of {} rows shown)\n", self.total_rows));
        } else {
            table.push_str(&format!("\n({shown} rows)\n"));
        }
        table
    }
}

crate::source_handler!(Snowflake, SnowflakeConfig, search: search_all, fetch: fetch_any);
