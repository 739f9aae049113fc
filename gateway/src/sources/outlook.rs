//! Outlook mail through Microsoft Graph with an app-only token (client credentials).
//!
//! search: `GET /users/{mailbox}/messages?$search="…"&$top&$select`, following
//! `@odata.nextLink` only on the configured Graph host. fetch: the message with a text body
//! (`Prefer: outlook.body-content-type="text"`), the id sent in its REST form. A 401 drops the
//! cached token and retries once.

use reqwest::StatusCode;
use secrecy::ExposeSecret;
use serde_json::{Value, json};
use shared::model::source::OutlookConfig;
use url::Url;

use crate::{
    caps,
    snapshot::ServedSource,
    sources::{
        Document, Hit, SourceError,
        upstream::{self, Token, TokenCache},
    },
};

const SELECT: &str = "id,subject,bodyPreview,from,toRecipients,ccRecipients,receivedDateTime,webLink,conversationId,hasAttachments";
/// Pages of results followed at most.
const MAX_PAGES: usize = 5;

/// The `outlook` handler.
pub struct Outlook {
    http: reqwest::Client,
    graph: Url,
    login: String,
    scope: String,
    tokens: TokenCache,
}

/// A source's settings, checked.
struct Mailbox<'a> {
    tenant: &'a str,
    client_id: &'a str,
    secret: &'a str,
    user: &'a str,
}

fn mailbox(config: &OutlookConfig) -> Mailbox<'_> {
    Mailbox {
        tenant: &config.tenant_id,
        client_id: &config.client_id,
        secret: config.client_secret.expose_secret(),
        user: &config.user_id,
    }
}

impl Mailbox<'_> {
    /// Cache key: the source and its credentials, so changed credentials get a new token.
    fn key(&self, source: &ServedSource) -> String {
        upstream::credentials_key(source.id, &[self.tenant, self.client_id, self.secret])
    }
}

/// Graph ids use letters, digits and `-_=+/`; anything else cannot be a message id (and must
/// not reach a URL path).
fn is_message_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 512
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_=+/".contains(c))
}

impl Outlook {
    /// A handler for the Graph and login endpoints of one cloud.
    pub fn new(
        http: reqwest::Client,
        graph_base: &str,
        login_base: &str,
    ) -> Result<Self, url::ParseError> {
        let graph = Url::parse(graph_base.trim_end_matches('/'))?;
        let scope = format!("{}/.default", graph.origin().ascii_serialization());
        Ok(Self {
            http,
            graph,
            login: login_base.trim_end_matches('/').to_owned(),
            scope,
            tokens: TokenCache::default(),
        })
    }

    async fn token(&self, mailbox: &Mailbox<'_>) -> Result<Token, SourceError> {
        let url = format!("{}/{}/oauth2/v2.0/token", self.login, mailbox.tenant);
        let form = [
            ("client_id", mailbox.client_id),
            ("client_secret", mailbox.secret),
            ("scope", self.scope.as_str()),
            ("grant_type", "client_credentials"),
        ];
        upstream::client_credentials(&self.http, &url, &form).await
    }

    /// GET with the source's token (renewed once after a 401).
    async fn get(
        &self,
        source: &ServedSource,
        mailbox: &Mailbox<'_>,
        url: &Url,
        text_body: bool,
    ) -> Result<Value, SourceError> {
        let key = mailbox.key(source);
        let response = upstream::with_token(
            &self.tokens,
            &key,
            || self.token(mailbox),
            |token| {
                let request = self.http.get(url.clone()).bearer_auth(token);
                if text_body {
                    request.header("Prefer", "outlook.body-content-type=\"text\"")
                } else {
                    request
                }
            },
        )
        .await?;
        match response.status() {
            StatusCode::NOT_FOUND => Err(SourceError::NotFound),
            status if status.is_success() => upstream::json(response).await,
            _ => Err(upstream::failure(response, "Graph request").await),
        }
    }

    fn messages_url(&self, user: &str) -> Url {
        let mut url = self.graph.clone();
        url.path_segments_mut()
            .expect("an http URL")
            .push("users")
            .push(user)
            .push("messages");
        url
    }

    /// A `nextLink` is followed only on the configured Graph origin.
    fn same_origin(&self, link: &str) -> Option<Url> {
        Url::parse(link)
            .ok()
            .filter(|u| u.origin() == self.graph.origin())
    }

    async fn search_messages(
        &self,
        source: &ServedSource,
        config: &OutlookConfig,
        query: &str,
        limit: usize,
    ) -> Result<Vec<Hit>, SourceError> {
        let mailbox = mailbox(config);
        let quoted = format!("\"{}\"", query.replace('\\', "\\\\").replace('"', "\\\""));
        let mut url = self.messages_url(mailbox.user);
        url.query_pairs_mut()
            .append_pair("$search", &quoted)
            .append_pair("$top", &limit.clamp(1, 50).to_string())
            .append_pair("$select", SELECT);
        let mut hits = Vec::new();
        for _ in 0..MAX_PAGES {
            let page = self.get(source, &mailbox, &url, false).await?;
            let messages = page["value"].as_array().ok_or_else(|| {
                SourceError::BadResponse("Graph answered without `value`".to_owned())
            })?;
            hits.extend(messages.iter().filter_map(hit));
            match page["@odata.nextLink"]
                .as_str()
                .and_then(|link| self.same_origin(link))
            {
                Some(next) if hits.len() < limit => url = next,
                _ => break,
            }
        }
        hits.truncate(limit);
        Ok(hits)
    }

    async fn fetch_message(
        &self,
        source: &ServedSource,
        config: &OutlookConfig,
        id: &str,
    ) -> Result<Document, SourceError> {
        let mailbox = mailbox(config);
        if !is_message_id(id) {
            return Err(SourceError::NotFound);
        }
        // Graph refuses `%2F` in a path segment: ids go in their REST form.
        let rest_id = id.replace('/', "-").replace('+', "_");
        let mut url = self.messages_url(mailbox.user);
        url.path_segments_mut().expect("an http URL").push(&rest_id);
        let message = self.get(source, &mailbox, &url, true).await?;
        Ok(document(&message))
    }
}

/// A search hit, its title and URL capped at once: pages are gathered before the tools see
/// them, so an oversized subject must not be kept once per page.
fn hit(message: &Value) -> Option<Hit> {
    Some(Hit {
        upstream_id: message["id"].as_str()?.to_owned(),
        title: caps::title(subject(message)),
        url: caps::url(message["webLink"].as_str().unwrap_or_default().to_owned()),
    })
}

fn subject(message: &Value) -> String {
    message["subject"]
        .as_str()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or("(no subject)")
        .to_owned()
}

fn address(entry: &Value) -> String {
    let email = &entry["emailAddress"];
    match (email["name"].as_str(), email["address"].as_str()) {
        (Some(name), Some(address)) if !name.is_empty() => format!("{name} <{address}>"),
        (_, Some(address)) => address.to_owned(),
        _ => String::new(),
    }
}

fn addresses(list: &Value) -> Vec<String> {
    list.as_array()
        .map(|l| l.iter().map(address).filter(|a| !a.is_empty()).collect())
        .unwrap_or_default()
}

fn document(message: &Value) -> Document {
    let (from, to, cc) = (
        address(&message["from"]),
        addresses(&message["toRecipients"]),
        addresses(&message["ccRecipients"]),
    );
    let received = message["receivedDateTime"].as_str().unwrap_or_default();
    let body = message["body"]["content"]
        .as_str()
        .or_else(|| message["bodyPreview"].as_str())
        .unwrap_or_default();
    let mut text = format!(
        "Subject: {}\nFrom: {from}\nTo: {}\n",
        subject(message),
        to.join(", ")
    );
    if !cc.is_empty() {
        text.push_str(&format!("Cc: {}\n", cc.join(", ")));
    }
    text.push_str(&format!("Date: {received}\n\n{body}"));
    Document {
        title: subject(message),
        text,
        url: message["webLink"].as_str().unwrap_or_default().to_owned(),
        metadata: json!({
            "from": from, "to": to, "cc": cc, "received": received,
            "conversation_id": message["conversationId"], "has_attachments": message["hasAttachments"],
        }),
    }
}

crate::source_handler!(Outlook, OutlookConfig, search: search_messages, fetch: fetch_message);
