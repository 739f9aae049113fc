//! Box files through the Box API with a client-credentials (server authentication) token for
//! an enterprise or a user.
//!
//! search: `GET /search?query=…&type=file&fields=…`, paged by `offset`. fetch: the file's info
//! with its `extracted_text` representation (`x-rep-hints`); `success` downloads the text,
//! `pending` is polled, `none` is started and then polled; plain-text files without a
//! representation fall back to `/content`. The token is sent only to Box's own hosts.

mod text;

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::model::source::BoxConfig;
use url::Url;

use crate::{
    caps,
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self, Token, TokenCache},
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
