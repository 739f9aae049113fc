//! What `/mcp-servers` reads and answers: the request bodies and parameters, their checks,
//! and the server as the API shows it.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::{
    db::servers::ServerRow,
    error::{ApiError, FieldError},
    orgs::Role,
};

/// Most sources one server may have.
pub(super) const MAX_SOURCES: usize = shared::model::MAX_SOURCES_PER_SERVER;
/// Most members one server may list.
const MAX_LISTED_MEMBERS: usize = 1000;

/// A server to create (`name` required), or the changes to one (fields left out stay).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ServerInput {
    /// 1 to 200 characters after trimming, not only white space, no control characters.
    #[schema(
        example = "Sales research",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub(super) name: Option<String>,
    /// The caller's sources this server may search (at most 100 distinct ids); replaces the
    /// current list.
    #[schema(max_items = 100)]
    pub(super) source_ids: Option<Vec<Uuid>>,
    /// Answer agents without an access key (default false: every MCP request needs a key of
    /// this server, see `/mcp-servers/{id}/keys`).
    pub(super) public: Option<bool>,
    /// Who may connect an agent: `all` members of the organization (default) or only the
    /// `listed_members` (owners and admins always may).
    #[schema(value_type = Option<String>, example = "all", pattern = "^(all|listed)$")]
    pub(super) member_access: Option<String>,
    /// The members who may connect when `member_access` is `listed` (user ids of members of
    /// the server's organization; at most 1,000); replaces the current list.
    #[schema(max_items = 1000)]
    pub(super) listed_members: Option<Vec<Uuid>>,
    /// Create only: the organization to create it in (default: the caller's personal one;
    /// the caller must be an owner or admin there). On update, only the server's own.
    pub(super) organization_id: Option<Uuid>,
    /// Refused, whatever its value (even null): the endpoint is assigned by the server.
    #[serde(default, deserialize_with = "present")]
    #[schema(ignore)]
    pub(super) endpoint: bool,
}

/// A server to create: as [`ServerInput`], with `name` required. Documentation only; the
/// handler reads a `ServerInput` and checks the name.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct NewServer {
    /// 1 to 200 characters after trimming, not only white space, no control characters.
    #[schema(
        example = "Sales research",
        min_length = 1,
        max_length = 200,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\x00-\\x20\\x7f-\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub(super) name: String,
    /// The caller's sources this server may search (at most 100 distinct ids).
    #[schema(max_items = 100)]
    pub(super) source_ids: Option<Vec<Uuid>>,
    /// Answer agents without an access key (default false: every MCP request needs a key of
    /// this server, see `/mcp-servers/{id}/keys`).
    pub(super) public: Option<bool>,
    /// Who may connect an agent: `all` members of the organization (default) or only the
    /// `listed_members` (owners and admins always may).
    #[schema(value_type = Option<String>, example = "all", pattern = "^(all|listed)$")]
    pub(super) member_access: Option<String>,
    /// The members who may connect when `member_access` is `listed` (user ids of members of
    /// the server's organization; at most 1,000); replaces the current list.
    #[schema(max_items = 1000)]
    pub(super) listed_members: Option<Vec<Uuid>>,
    /// The organization to create it in (default: the caller's personal one; the caller must
    /// be an owner or admin there).
    pub(super) organization_id: Option<Uuid>,
}

/// A server as the API shows it.
#[derive(Serialize, ToSchema)]
pub struct ServerView {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    /// Assigned from the pool; read-only.
    #[schema(example = "https://mcp1.example.com")]
    pub endpoint: String,
    /// What to give an MCP client: the endpoint followed by `/mcp`.
    #[schema(example = "https://mcp1.example.com/mcp")]
    pub mcp_url: String,
    /// Its sources (empty in a member's view: members never see the organization's sources).
    pub source_ids: Vec<Uuid>,
    /// Whether agents may call it without an access key.
    pub public: bool,
    /// Who may connect an agent: `all` members, or the `listed_members` (owners and admins
    /// always may).
    #[schema(example = "all")]
    pub member_access: String,
    /// The members who may connect when `listed` (empty in a member's view).
    pub listed_members: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// Set when soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
}

impl From<ServerRow> for ServerView {
    fn from(row: ServerRow) -> Self {
        Self {
            mcp_url: format!("{}/mcp", row.endpoint),
            id: row.id,
            organization_id: row.organization_id,
            name: row.name,
            endpoint: row.endpoint,
            source_ids: row.source_ids,
            public: row.public,
            member_access: row.member_access,
            listed_members: row.listed_members,
            created_at: row.created_at,
            updated_at: row.updated_at,
            deleted_at: row.deleted_at,
        }
    }
}

impl ServerView {
    /// What a member (not an owner or admin) is shown: the server, not how it is made.
    pub(super) fn seen_by(mut self, role: Role) -> Self {
        if role < Role::Admin {
            self.source_ids.clear();
            self.listed_members.clear();
        }
        self
    }
}

/// One page of servers.
#[derive(Serialize, ToSchema)]
pub struct ServerPage {
    pub items: Vec<ServerView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// Listing options.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only this organization's servers.
    pub(super) organization_id: Option<Uuid>,
    /// Include soft-deleted servers (default false; owners and admins only see them).
    pub(super) include_deleted: Option<bool>,
    /// Items per page, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    pub(super) limit: Option<i64>,
    /// Items to skip (default 0).
    #[param(minimum = 0)]
    pub(super) offset: Option<i64>,
}

/// Whether to show a soft-deleted server.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ShowParams {
    /// Also find a soft-deleted server (default false).
    pub(super) include_deleted: Option<bool>,
}

/// `true` when the field is in the body at all.
fn present<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<bool, D::Error> {
    serde::de::IgnoredAny::deserialize(deserializer)?;
    Ok(true)
}

/// Checks the input; `(trimmed name, distinct source ids)`.
pub(super) fn validate(
    input: &ServerInput,
    creating: bool,
) -> Result<(Option<String>, Option<Vec<Uuid>>), ApiError> {
    let mut fields = Vec::new();
    if input.endpoint {
        fields.push(FieldError::new(
            "endpoint",
            "is assigned by the server and cannot be set or changed",
        ));
    }
    let name = crate::domain::name::display_name(input.name.as_deref(), 200, creating)
        .map_err(|problem| fields.push(FieldError::new("name", problem)))
        .unwrap_or_default();
    let source_ids = input.source_ids.as_ref().map(|ids| {
        let mut seen = HashSet::new();
        ids.iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect::<Vec<_>>()
    });
    if source_ids
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_SOURCES)
    {
        fields.push(FieldError::new(
            "source_ids",
            format!("must list at most {MAX_SOURCES} sources"),
        ));
    }
    if input
        .member_access
        .as_deref()
        .is_some_and(|a| a != "all" && a != "listed")
    {
        fields.push(FieldError::new(
            "member_access",
            "must be `all` or `listed`",
        ));
    }
    if input
        .listed_members
        .as_ref()
        .is_some_and(|ids| ids.len() > MAX_LISTED_MEMBERS)
    {
        fields.push(FieldError::new(
            "listed_members",
            format!("must list at most {MAX_LISTED_MEMBERS} members"),
        ));
    }
    if !fields.is_empty() {
        return Err(ApiError::validation(fields));
    }
    Ok((name, source_ids))
}
