//! A Box file's text: its extracted-text representation (asked for, then polled while Box
//! makes it), or the raw content of a plain-text file, read up to the size cap.

use reqwest::{StatusCode, header};
use serde_json::Value;
use url::Url;

use crate::{
    caps,
    snapshot::ServedSource,
    sources::{
        SourceError,
        upstream::{self, retry},
    },
};

use super::{Account, BoxFiles};

/// Extensions whose raw content is readable text (the `/content` fallback).
pub(super) const PLAIN_TEXT: &[&str] = &[
    "txt", "md", "markdown", "csv", "tsv", "json", "log", "xml", "yaml", "yml",
];

pub(super) fn bad_representation() -> SourceError {
    SourceError::BadResponse("Box answered a malformed representation".to_owned())
}

pub(super) fn is_plain_text(name: &str) -> bool {
    name.rsplit_once('.')
        .is_some_and(|(_, ext)| PLAIN_TEXT.contains(&ext.to_ascii_lowercase().as_str()))
}

/// The text of a download, read only up to the tools' text cap (a file's text can be any size).
pub(super) async fn capped(response: reqwest::Response) -> Result<String, SourceError> {
    let (mut text, cut) = upstream::text(response, caps::MAX_TEXT_BYTES).await?;
    if cut {
        text.push_str(caps::TEXT_CUT_NOTE);
    }
    Ok(text)
}

impl BoxFiles {
    /// The file's text: its extracted-text representation, or the raw content of a plain-text
    /// file.
    pub(super) async fn file_text(
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
    pub(super) async fn representation_text(
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

    pub(super) async fn download(
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
    pub(super) async fn content(
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
