//! Cortex Analyst: a question answered with SQL over a semantic model, the statement run
//! (polled to its end, rows capped) and the answer sealed into a result id that `fetch` opens.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::{
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self, retry},
    },
};

use super::{Account, MAX_CELL, MAX_ROWS, STATEMENT_TIMEOUT_SECS, Snowflake, as_text, sql};

/// What an analyst result id carries (sealed).
#[derive(Serialize, Deserialize)]
pub(super) struct Answer {
    question: String,
    interpretation: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sql: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    suggestions: Vec<String>,
}

/// A statement's handle, checked before it goes into a URL path.
pub(super) fn statement_handle(answer: &Value) -> Result<&str, SourceError> {
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

pub(super) fn rows_of(answer: &Value) -> Result<Vec<Vec<Option<String>>>, SourceError> {
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

pub(super) fn analyst_title(answer: &Answer) -> String {
    let first_line = answer.interpretation.lines().next().unwrap_or_default();
    let mut title: String = first_line.chars().take(160).collect();
    if title.is_empty() {
        title = format!("Cortex Analyst: {}", answer.question);
    }
    title
}

pub(super) struct StatementResult {
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

impl Snowflake {
    /// Asks Cortex Analyst; an answer with SQL or suggestions becomes a result.
    pub(super) async fn ask_analyst(
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

    pub(super) fn seal(&self, source: &ServedSource, answer: &Answer) -> String {
        let plain = serde_json::to_vec(answer).expect("an answer serializes");
        let (sealed, key_id) = self.keyring.seal(&plain, source.id.as_bytes());
        format!("a.{key_id}.{}", URL_SAFE_NO_PAD.encode(sealed))
    }

    /// The answer sealed into `id`, if it was sealed by us for this source.
    pub(super) fn open(&self, source: &ServedSource, id: &str) -> Option<Answer> {
        let (key_id, sealed) = id.split_once('.')?;
        let sealed = URL_SAFE_NO_PAD.decode(sealed).ok()?;
        let plain = self
            .keyring
            .open(&sealed, key_id, source.id.as_bytes())
            .ok()?;
        serde_json::from_slice(&plain).ok()
    }

    pub(super) async fn fetch_answer(
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
    pub(super) async fn run_statement(
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
    pub(super) async fn gather(
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
