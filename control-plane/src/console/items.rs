//! What the console reads from the REST API, as its pages show it: an organization, member,
//! server, grant (connected agent) and invitation as the API lists them, and how times read
//! ([`when`]). Shapes only: the pages read them.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::orgs::Role;

/// An organization as the API shows it to one of its members.
#[derive(Debug, Clone, Deserialize)]
pub struct OrgItem {
    pub id: Uuid,
    pub name: String,
    pub slug: Option<String>,
    pub personal: bool,
    /// The caller's role in it.
    pub role: Role,
    pub member_count: i64,
    pub created_at: DateTime<Utc>,
}

impl OrgItem {
    /// How the switcher and lists name it.
    pub fn label(&self) -> String {
        if self.personal {
            "Personal".to_owned()
        } else {
            self.name.clone()
        }
    }

    /// The caller runs it (owner or admin).
    pub fn manages(&self) -> bool {
        self.role >= Role::Admin
    }

    pub fn role_name(&self) -> &'static str {
        self.role.as_str()
    }
}

/// A member as the API lists them.
#[derive(Deserialize)]
pub struct MemberItem {
    pub user_id: Uuid,
    pub email: String,
    pub role: Role,
    pub joined_at: DateTime<Utc>,
}

#[derive(Deserialize)]
pub struct Members {
    pub items: Vec<MemberItem>,
}

/// A grant as the API lists it.
#[derive(Deserialize)]
pub struct GrantItem {
    pub id: Uuid,
    pub server_id: Uuid,
    pub server_name: String,
    pub organization_id: Uuid,
    pub user_email: String,
    pub client_name: String,
    pub redirect_host: String,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl GrantItem {
    pub fn created(&self) -> String {
        when(&self.created_at)
    }

    pub fn last_used(&self) -> String {
        self.last_used_at
            .as_ref()
            .map_or_else(|| "never".to_owned(), when)
    }
}

#[derive(Deserialize)]
pub struct Grants {
    pub items: Vec<GrantItem>,
}

/// A server as the API shows it.
#[derive(Deserialize)]
pub struct ServerItem {
    pub id: Uuid,
    pub organization_id: Uuid,
    pub name: String,
    pub mcp_url: String,
    pub source_ids: Vec<Uuid>,
    pub public: bool,
    /// `all` members may connect, or only the `listed_members`.
    pub member_access: String,
    pub listed_members: Vec<Uuid>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// An invitation as the API lists it.
#[derive(Deserialize)]
pub struct InvitationItem {
    pub id: Uuid,
    pub email: String,
    pub role: Role,
    /// `pending`, `accepted`, `revoked` or `expired`.
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

impl InvitationItem {
    pub fn created(&self) -> String {
        when(&self.created_at)
    }

    pub fn expires(&self) -> String {
        when(&self.expires_at)
    }
}

#[derive(Deserialize)]
pub struct Invitations {
    pub items: Vec<InvitationItem>,
}

/// A time as people read it.
pub fn when(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M UTC").to_string()
}

pub fn when_opt(at: Option<&DateTime<Utc>>) -> String {
    at.map_or_else(|| "never".to_owned(), when)
}

impl ServerItem {
    pub fn deleted(&self) -> String {
        when_opt(self.deleted_at.as_ref())
    }
}
