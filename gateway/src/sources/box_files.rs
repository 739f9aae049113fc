//! Box files through the Box API with a client-credentials (server authentication) token for
//! an enterprise or a user.
//!
//! search: `GET /search?query=…&type=file&fields=…`, paged by `offset`. fetch: the file's info
//! with its `extracted_text` representation (`x-rep-hints`); `success` downloads the text,
//! `pending` is polled, `none` is started and then polled; plain-text files without a
//! representation fall back to `/content`. The token is sent only to Box's own hosts.

use reqwest::{StatusCode, header};
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::model::source::BoxConfig;
use url::Url;

use crate::{
    caps,
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self, Token, TokenCache, retry},
    },
};

const SEARCH_FIELDS: &str = "name,description,modified_at,size,path_collection,shared_link";
const FILE_FIELDS: &str = "name,description,size,modified_at,path_collection,representations";
/// Box refuses a page larger than this.
const MAX_PAGE: usize = 200;
/// Box refuses offsets beyond this.
const MAX_OFFSET: usize = 10_000;
/// Pages of results followed at most.
const MAX_PAGES: usize = 5;
/// Extensions whose raw content is readable text (the `/content` fallback).
const PLAIN_TEXT: &[&str] = &[
    "txt", "md", "markdown", "csv", "tsv", "json", "log", "xml", "yaml", "yml",
];
/// Hosts Box serves its API, representations and downloads from (besides the configured API).
const BOX_DOMAINS: &[&str] = &["box.com", "boxcloud.com"];

/// The `box` handler.
pub struct BoxFiles {
    http: reqwest::Client,
    api: Url,
    token_url: String,
    tokens: TokenCache,
}

/// A source's credentials, checked.
struct Account<'a> {
    client_id: &'a str,
    secret: &'a str,
    subject_type: &'a str,
    subject_id: &'a str,
}

fn account(config: &BoxConfig) -> Account<'_> {
    Account {
        client_id: &config.client_id,
        secret: config.client_secret.expose_secret(),
        subject_type: &config.subject_type,
        subject_id: &config.subject_id,
    }
}

impl Account<'_> {
    fn key(&self, source: &ServedSource) -> String {
        upstream::credentials_key(
            source.id,
            &[
                self.client_id,
                self.secret,
                self.subject_type,
                self.subject_id,
            ],
        )
    }
}

/// Box file ids are decimal (and may exceed 32 bits).
fn is_file_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_digit())
}

impl BoxFiles {
    /// A handler for a Box API base URL and token endpoint.
    pub fn new(
        http: reqwest::Client,
        api_base: &str,
        token_url: &str,
    ) -> Result<Self, url::ParseError> {
        Url::parse(token_url)?;
        Ok(Self {
            http,
            api: Url::parse(api_base.trim_end_matches('/'))?,
            token_url: token_url.to_owned(),
            tokens: TokenCache::default(),
        })
    }

    async fn token(&self, account: &Account<'_>) -> Result<Token, SourceError> {
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", account.client_id),
            ("client_secret", account.secret),
            ("box_subject_type", account.subject_type),
            ("box_subject_id", account.subject_id),
        ];
        upstream::client_credentials(&self.http, &self.token_url, &form).await
    }

    /// The configured API origin, or an https URL on one of Box's own domains. Anything else
    /// (a link in an answer pointing elsewhere) never receives the token.
    fn is_box_url(&self, url: &Url) -> bool {
        if url.origin() == self.api.origin() {
            return true;
        }
        let host = url.host_str().unwrap_or_default();
        url.scheme() == "https"
            && BOX_DOMAINS
                .iter()
                .any(|d| host == *d || host.strip_suffix(d).is_some_and(|h| h.ends_with('.')))
    }

    fn api_url(&self, segments: &[&str]) -> Url {
        let mut url = self.api.clone();
        url.path_segments_mut()
            .expect("an http URL")
            .extend(segments);
        url
    }

    /// GET with the source's token (renewed once after a 401), only to Box hosts.
    async fn get(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        url: &Url,
        rep_hints: bool,
    ) -> Result<reqwest::Response, SourceError> {
        if !self.is_box_url(url) {
            return Err(SourceError::BadResponse(
                "Box pointed to a host outside Box; not followed".to_owned(),
            ));
        }
        upstream::with_token(
            &self.tokens,
            &account.key(source),
            || self.token(account),
            |token| {
                let request = self.http.get(url.clone()).bearer_auth(token);
                if rep_hints {
                    request.header("x-rep-hints", "[extracted_text]")
                } else {
                    request
                }
            },
        )
        .await
    }

    async fn get_json(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        url: &Url,
        rep_hints: bool,
    ) -> Result<Value, SourceError> {
        let response = self.get(source, account, url, rep_hints).await?;
        match response.status() {
            StatusCode::NOT_FOUND => Err(SourceError::NotFound),
            status if status.is_success() => upstream::json(response).await,
            _ => Err(upstream::failure(response, "Box request").await),
        }
    }

    async fn search_files(
        &self,
        source: &ServedSource,
        config: &BoxConfig,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, SourceError> {
        let account = account(config);
        let page_size = limit.clamp(1, MAX_PAGE);
        let mut hits = Vec::new();
        let mut offset = 0;
        for _ in 0..MAX_PAGES {
            let mut url = self.api_url(&["search"]);
            url.query_pairs_mut()
                .append_pair("query", query)
                .append_pair("type", "file")
                .append_pair("limit", &page_size.to_string())
                .append_pair("offset", &offset.to_string())
                .append_pair("fields", SEARCH_FIELDS);
            let page = self.get_json(source, &account, &url, false).await?;
            let entries = page["entries"].as_array().ok_or_else(|| {
                SourceError::BadResponse("Box answered without `entries`".to_owned())
            })?;
            hits.extend(entries.iter().filter_map(hit));
            offset += entries.len();
            // `total_count` is approximate: stop on an empty page too.
            let total = page["total_count"].as_u64().unwrap_or(0) as usize;
            if entries.is_empty() || hits.len() >= limit || offset >= total || offset >= MAX_OFFSET
            {
                break;
            }
        }
        hits.truncate(limit);
        Ok(hits)
    }

    async fn fetch_file(
        &self,
        source: &ServedSource,
        config: &BoxConfig,
        id: &str,
    ) -> Result<Document, SourceError> {
        let account = account(config);
        if !is_file_id(id) {
            return Err(SourceError::NotFound);
        }
        let mut url = self.api_url(&["files", id]);
        url.query_pairs_mut().append_pair("fields", FILE_FIELDS);
        let file = self.get_json(source, &account, &url, true).await?;
        let text = self.file_text(source, &account, &file, id).await?;
        Ok(document(&file, id, text))
    }

    /// The file's text: its extracted-text representation, or the raw content of a plain-text
    /// file.
    async fn file_text(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        file: &Value,
        id: &str,
    ) -> Result<String, SourceError> {
        let representation = file["representations"]["entries"]
            .as_array()
            .and_then(|entries| {
                entries
                    .iter()
                    .find(|e| e["representation"] == "extracted_text")
            })
            .cloned();
        if let Some(representation) = representation
            && let Some(text) = self
                .representation_text(source, account, representation)
                .await?
        {
            return Ok(text);
        }
        let name = file["name"].as_str().unwrap_or_default();
        if is_plain_text(name) {
            return self.content(source, account, id).await;
        }
        Err(SourceError::BadResponse(
            "Box has no text for this file (no extracted_text representation)".to_owned(),
        ))
    }

    /// Follows a representation to its text: downloads it when ready, polls while pending,
    /// starts generation when not yet made. `None` when Box cannot make one.
    async fn representation_text(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        mut representation: Value,
    ) -> Result<Option<String>, SourceError> {
        // Status checks at most (the tool call's deadline usually ends them first).
        let most = retry::BOX_TEXT.retries;
        let mut waits = retry::BOX_TEXT.waits();
        for poll in 0..=most {
            let state = representation["status"]["state"]
                .as_str()
                .unwrap_or_default();
            match state {
                "success" | "viewable" => {
                    let template = representation["content"]["url_template"]
                        .as_str()
                        .unwrap_or_default();
                    let url = Url::parse(&template.replace("{+asset_path}", ""))
                        .map_err(|_| bad_representation())?;
                    return self.download(source, account, &url).await.map(Some);
                }
                "pending" | "none" if poll < most => {
                    // `none`: the first GET of the info URL starts generation.
                    if state == "pending"
                        && let Some(wait) = waits.next()
                    {
                        tokio::time::sleep(wait).await;
                    }
                    let info = representation["info"]["url"].as_str().unwrap_or_default();
                    let url = Url::parse(info).map_err(|_| bad_representation())?;
                    let answer = self.get_json(source, account, &url, true).await?;
                    // The info URL answers the representation itself (or, from some
                    // endpoints, the file with its representations).
                    representation = match answer["representations"]["entries"].as_array() {
                        Some(entries) => entries
                            .iter()
                            .find(|e| e["representation"] == "extracted_text")
                            .cloned()
                            .unwrap_or_default(),
                        None => answer,
                    };
                }
                "pending" | "none" => {
                    return Err(SourceError::BadResponse(
                        "Box is still extracting the text; try again shortly".to_owned(),
                    ));
                }
                _ => return Ok(None),
            }
        }
        Ok(None)
    }

    async fn download(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        url: &Url,
    ) -> Result<String, SourceError> {
        let response = self.get(source, account, url, false).await?;
        if !response.status().is_success() {
            return Err(upstream::failure(response, "Box download").await);
        }
        capped(response).await
    }

    /// `GET /files/{id}/content`: a redirect to a pre-signed download URL (fetched without
    /// our token), or 202 with `Retry-After` while Box prepares it.
    async fn content(
        &self,
        source: &ServedSource,
        account: &Account<'_>,
        id: &str,
    ) -> Result<String, SourceError> {
        let url = self.api_url(&["files", id, "content"]);
        let attempt = || self.get(source, account, &url, false);
        let preparing = retry::on_status(&[StatusCode::ACCEPTED]);
        let response = retry::run(retry::BOX_DOWNLOAD, "Box", attempt, preparing).await?;
        match response.status() {
            StatusCode::ACCEPTED => Err(SourceError::BadResponse(
                "Box is still preparing the download; try again shortly".to_owned(),
            )),
            status if status.is_redirection() => {
                let location = response
                    .headers()
                    .get(header::LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| url.join(v).ok())
                    .filter(|u| self.is_box_url(u))
                    .ok_or_else(|| {
                        SourceError::BadResponse("Box download link is not a Box host".to_owned())
                    })?;
                let download = upstream::send(|| self.http.get(location.clone())).await?;
                if !download.status().is_success() {
                    return Err(upstream::failure(download, "Box download").await);
                }
                capped(download).await
            }
            StatusCode::NOT_FOUND => Err(SourceError::NotFound),
            status if status.is_success() => capped(response).await,
            _ => Err(upstream::failure(response, "Box download").await),
        }
    }
}

fn bad_representation() -> SourceError {
    SourceError::BadResponse("Box answered a malformed representation".to_owned())
}

fn is_plain_text(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| PLAIN_TEXT.contains(&ext.to_ascii_lowercase().as_str()))
}

/// The text of a download, read only up to the tools' text cap (a file's text can be any size).
async fn capped(response: reqwest::Response) -> Result<String, SourceError> {
    let (mut text, cut) = upstream::text(response, caps::MAX_TEXT_BYTES).await?;
    if cut {
        text.push_str(caps::TEXT_CUT_NOTE);
    }
    Ok(text)
}

fn web_url(id: &str) -> String {
    format!("https://app.box.com/file/{id}")
}

fn hit(entry: &Value) -> Option<Hit> {
    // `type=file` asks for files only; weblinks or folders slipping through are not fetchable.
    if entry["type"] != "file" {
        return None;
    }
    let id = entry["id"].as_str().filter(|id| is_file_id(id))?;
    // Capped at once: pages are gathered before the tools see them.
    Some(Hit {
        upstream_id: id.to_owned(),
        title: caps::title(
            entry["name"]
                .as_str()
                .unwrap_or("(unnamed file)")
                .to_owned(),
        ),
        url: web_url(id),
    })
}

/// `All Files/Plans` from the file's `path_collection`.
fn folder_path(file: &Value) -> String {
    file["path_collection"]["entries"]
        .as_array()
        .map(|folders| {
            folders
                .iter()
                .filter_map(|f| f["name"].as_str())
                .collect::<Vec<_>>()
                .join("/")
        })
        .unwrap_or_default()
}

fn document(file: &Value, id: &str, text: String) -> Document {
    Document {
        title: file["name"].as_str().unwrap_or("(unnamed file)").to_owned(),
        text,
        url: web_url(id),
        metadata: json!({
            "path": folder_path(file), "size": file["size"], "modified_at": file["modified_at"],
            "description": file["description"],
        }),
    }
}

crate::source_handler!(BoxFiles, BoxConfig, search: search_files, fetch: fetch_file);
