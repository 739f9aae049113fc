//! Sources in the console: the list, one form per type that labels every field and marks
//! secrets (shown as "set" or "not set", replaceable, never shown), and deletion after a
//! warning that names the servers using the source.

use std::collections::BTreeMap;

use askama::Template;
use axum::{
    extract::{Path, Query},
    http::{Method, StatusCode},
    response::Response,
};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use shared::model::{SourceType, source::FieldShape};
use uuid::Uuid;

use crate::console::{
    pages::{Confirm, Fail, Nav, done, segment, show, show_with},
    session::{Form, Session},
};

/// A source as the API lists it.
#[derive(Deserialize)]
pub struct SourceItem {
    pub id: Uuid,
    pub organization_id: Uuid,
    #[serde(rename = "type")]
    pub source_type: String,
    pub source_metadata: Map<String, Value>,
    pub secrets: BTreeMap<String, bool>,
}

impl SourceItem {
    /// A short name for pickers and lists: the type and its identifying setting.
    pub fn label(&self) -> String {
        let id = SourceType::parse(&self.source_type)
            .and_then(|kind| self.source_metadata.get(kind.identity_field()))
            .and_then(Value::as_str);
        match id {
            Some(id) => format!("{} · {id}", self.source_type),
            None => self.source_type.clone(),
        }
    }

    /// What a form calls the setting `name`.
    fn label_of(&self, name: &str) -> String {
        SourceType::parse(&self.source_type)
            .map_or_else(|| name.to_owned(), |kind| kind.label_of(name))
    }

    /// `name = value` of the non-secret settings.
    pub fn settings(&self) -> Vec<(String, String)> {
        self.source_metadata
            .iter()
            .map(|(k, v)| (self.label_of(k), shown(v, false)))
            .collect()
    }
}

#[derive(Deserialize)]
pub struct SourcePage {
    pub items: Vec<SourceItem>,
    pub total: i64,
}

/// Up to 200 of organization `org`'s sources (the API's largest page; the default limit is
/// 200 sources).
pub async fn all(session: &Session, org: Uuid) -> Result<SourcePage, Fail> {
    let path = format!("/sources?limit=200&organization_id={org}");
    Ok(session.api.get(&session.caller, &path).await.parse()?)
}

#[derive(Template)]
#[template(path = "console/sources.html")]
struct List {
    nav: Option<Nav>,
    sources: Vec<SourceItem>,
    total: i64,
    types: Vec<&'static str>,
}

/// `GET /sources`: the current organization's.
pub async fn list(session: Session) -> Result<Response, Fail> {
    let page = all(&session, session.nav.org.id).await?;
    let list = List {
        nav: Some(session.nav.clone()),
        sources: page.items,
        total: page.total,
        types: SourceType::ALL.iter().map(|t| t.as_str()).collect(),
    };
    Ok(show(session.jar, &list))
}

/// A stored value as a form or list shows it: strings as they are, anything else (a port,
/// a table list) as JSON.
fn shown(value: &Value, pretty: bool) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other if pretty => serde_json::to_string_pretty(other).unwrap_or_default(),
        other => other.to_string(),
    }
}

/// The API's problems with `name` and the parts inside it (`tables[1].text_columns`), as
/// one sentence.
fn errors_of(name: &str, errors: &BTreeMap<String, String>) -> Option<String> {
    let found: Vec<String> = errors
        .iter()
        .filter_map(|(field, message)| {
            let inner = field.strip_prefix(name)?;
            if inner.is_empty() {
                Some(message.clone())
            } else if inner.starts_with('[') || inner.starts_with('.') {
                Some(format!("{inner}: {message}"))
            } else {
                None
            }
        })
        .collect();
    (!found.is_empty()).then(|| found.join("; "))
}

/// One input of a source form.
struct Input {
    name: &'static str,
    label: String,
    value: String,
    secret: bool,
    /// Secrets: whether a value is stored.
    set: bool,
    required: bool,
    hint: String,
    error: Option<String>,
    /// A text area (the JSON of a structured field).
    multiline: bool,
}

#[derive(Template)]
#[template(path = "console/source_form.html")]
struct SourceForm {
    nav: Option<Nav>,
    source_type: &'static str,
    /// Editing this source (creating one when none).
    editing: Option<Uuid>,
    inputs: Vec<Input>,
    error: Option<String>,
}

/// The inputs of `kind`: values from `values` except secrets, which are never filled in. When
/// editing, a secret may stay blank (the stored one is kept), so it is not required.
fn inputs(
    kind: SourceType,
    editing: bool,
    values: &Map<String, Value>,
    secrets: &BTreeMap<String, bool>,
    errors: &BTreeMap<String, String>,
) -> Vec<Input> {
    kind.field_specs()
        .map(|f| Input {
            name: f.name,
            label: f.label.to_owned(),
            value: if f.secret {
                String::new()
            } else {
                values
                    .get(f.name)
                    .map(|v| shown(v, true))
                    .unwrap_or_default()
            },
            secret: f.secret,
            set: secrets.get(f.name).copied().unwrap_or(false),
            required: f.required && !(f.secret && editing),
            hint: match f.default {
                Some(default) => format!("Optional; default {default}. It {}.", f.hint),
                None if !f.required => format!("Optional. It {}.", f.hint),
                None => format!("It {}.", f.hint),
            }
            .replace('`', ""),
            error: errors_of(f.name, errors),
            multiline: f.shape == FieldShape::Json,
        })
        .collect()
}

#[derive(Deserialize)]
pub struct TypeQuery {
    #[serde(rename = "type")]
    source_type: Option<String>,
}

fn kind_of(name: &str) -> Result<SourceType, Fail> {
    SourceType::parse(name)
        .ok_or_else(|| Fail::new(StatusCode::NOT_FOUND, "There is no such source type."))
}

/// `GET /sources/new?type=box`.
pub async fn new_page(session: Session, Query(query): Query<TypeQuery>) -> Result<Response, Fail> {
    let kind = kind_of(query.source_type.as_deref().unwrap_or("box"))?;
    let form = SourceForm {
        nav: Some(session.nav.clone()),
        source_type: kind.as_str(),
        editing: None,
        inputs: inputs(kind, false, &Map::new(), &BTreeMap::new(), &BTreeMap::new()),
        error: None,
    };
    Ok(show(session.jar, &form))
}

/// The form's fields as the API's `source_metadata`: blank fields left out (a blank secret
/// keeps the stored one). A structured field's text is sent as the JSON it holds (as text
/// when it is not JSON, for the API to say what is wrong).
fn metadata(kind: SourceType, form: &Form) -> Map<String, Value> {
    kind.field_specs()
        .filter(|f| !form.get(f.name).trim().is_empty())
        .map(|f| {
            let text = form.get(f.name);
            let value = match f.shape {
                FieldShape::Json => {
                    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
                }
                FieldShape::Text | FieldShape::Number => Value::String(text.to_owned()),
            };
            (f.name.to_owned(), value)
        })
        .collect()
}

/// `POST /sources/new`.
pub async fn create(session: Session, form: Form) -> Result<Response, Fail> {
    let kind = kind_of(form.get("type"))?;
    let body = json!({"type": kind.as_str(), "source_metadata": metadata(kind, &form),
                      "organization_id": session.nav.org.id});
    let reply = session
        .api
        .call(&session.caller, Method::POST, "/sources", Some(&body))
        .await;
    if reply.is_success() {
        return Ok(done(session.jar, "/sources"));
    }
    refill(session, kind, None, &form, &BTreeMap::new(), reply)
}

/// The form again after the API refused it: the errors beside their fields, the values the
/// person typed, secrets blank (never sent back to the browser).
fn refill(
    session: Session,
    kind: SourceType,
    editing: Option<Uuid>,
    form: &Form,
    secrets: &BTreeMap<String, bool>,
    reply: crate::console::api::Reply,
) -> Result<Response, Fail> {
    if !matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
    ) {
        return Err(reply.into());
    }
    let errors = reply.field_errors();
    let page = SourceForm {
        nav: Some(session.nav.clone()),
        source_type: kind.as_str(),
        editing,
        inputs: inputs(
            kind,
            editing.is_some(),
            &metadata(kind, form),
            secrets,
            &errors,
        ),
        error: Some(reply.message()),
    };
    Ok(show_with(session.jar, reply.status, &page))
}

async fn one(session: &Session, id: &str) -> Result<SourceItem, Fail> {
    Ok(session
        .api
        .get(&session.caller, &format!("/sources/{}", segment(id)))
        .await
        .parse()?)
}

/// `GET /sources/{id}/edit`.
pub async fn edit_page(mut session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let source = one(&session, &id).await?;
    session.enter(source.organization_id);
    let kind = kind_of(&source.source_type)?;
    let form = SourceForm {
        nav: Some(session.nav.clone()),
        source_type: kind.as_str(),
        editing: Some(source.id),
        inputs: inputs(
            kind,
            true,
            &source.source_metadata,
            &source.secrets,
            &BTreeMap::new(),
        ),
        error: None,
    };
    Ok(show(session.jar, &form))
}

/// `POST /sources/{id}/edit`: the new state; a blank secret keeps the stored one.
pub async fn update(
    session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let source = one(&session, &id).await?;
    let kind = kind_of(&source.source_type)?;
    let body = json!({"type": kind.as_str(), "source_metadata": metadata(kind, &form)});
    let path = format!("/sources/{}", source.id);
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &path, Some(&body))
        .await;
    if reply.is_success() {
        return Ok(done(session.jar, "/sources"));
    }
    refill(
        session,
        kind,
        Some(source.id),
        &form,
        &source.secrets,
        reply,
    )
}

/// `GET /sources/{id}/delete`: names the servers that lose this source.
pub async fn delete_page(session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let source = one(&session, &id).await?;
    let using = crate::db::server_sources::using_source(
        &session.state.pool,
        source.organization_id,
        source.id,
    )
    .await
    .map_err(|err| Fail::internal(&err.to_string()))?;
    let warnings = using
        .into_iter()
        .map(|(name, deleted)| {
            let deleted = if deleted { " (deleted)" } else { "" };
            format!("The server “{name}”{deleted} uses it and will no longer search it.")
        })
        .collect();
    let page = Confirm::new(
        &session.nav,
        format!("Delete the source {}?", source.label()),
        format!("/sources/{}/delete", source.id),
        "/sources".into(),
    )
    .message("Its settings and secrets are deleted for good.")
    .warnings(warnings)
    .button("Delete source");
    Ok(show(session.jar, &page))
}

/// `POST /sources/{id}/delete`.
pub async fn delete(
    session: Session,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let path = format!("/sources/{}", segment(&id));
    session.act(Method::DELETE, &path, "/sources").await
}
