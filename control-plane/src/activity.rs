//! The activity log: what the control plane records about every state-changing action (who,
//! what, on which objects, when, from which address, under which request id).
//!
//! [`Action`] is the closed set of recorded actions, serialised here only. Handlers build an
//! [`Activity`] from the request's [`Seen`] (client address and request id) and write it
//! **inside the transaction of the change** ([`Activity::record`]), so a change that rolls back
//! leaves no record and a record never outlives a change that failed. Events without a database
//! change of their own (a sign-in) are written on their own ([`Activity::record_now`]), best
//! effort: the action already happened, so a failed write is logged and counted, never turned
//! into an error. Refusals worth an operator's attention (wrong passwords, 409s such as
//! `pool_exhausted`) are recorded as failures after the rollback ([`Activity::record_refusal`]).
//!
//! Never a secret or a request body: an activity carries ids, an action, an outcome, an error
//! code and a few values the code chooses (`detail`), nothing a caller typed.
//!
//! This module only describes records; writing them is `db::activity`'s.

use std::net::IpAddr;

use axum::http::request::Parts;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::extract::client_ip;

/// Longest request id kept (clients may send their own `X-Request-Id`).
const MAX_REQUEST_ID: usize = 128;

/// Every recorded action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// `POST /signup`.
    Signup,
    /// `POST /signin` or the OAuth sign-in page (`detail.via = "oauth"`); failures too.
    Signin,
    /// `POST /signout`.
    Signout,
    /// `PUT /me/password`; a wrong current password is a failure.
    PasswordChange,
    /// `DELETE /me`.
    AccountDelete,
    SourceCreate,
    SourceUpdate,
    SourceDelete,
    /// `POST /mcp-servers`; `pool_exhausted` and `server_limit_reached` are failures.
    ServerCreate,
    /// `PUT /mcp-servers/{id}`; `detail.changed` names the fields (never their values).
    ServerUpdate,
    /// Soft delete by the owner.
    ServerDelete,
    ServerRestore,
    ServerSourceAttach,
    ServerSourceDetach,
    /// `DELETE /admin/mcp-servers/{id}` (actor: the administrator, user: the owner).
    ServerHardDelete,
    /// An agent access key created (`key_limit_reached` is a failure).
    KeyCreate,
    KeyRevoke,
    /// The owner approved an agent on the OAuth consent page.
    GrantApprove,
    /// The owner disconnected an agent (`DELETE /mcp-servers/{id}/grants/{grant_id}`).
    GrantDelete,
    /// An agent revoked its own grant at `POST /oauth/revoke`.
    GrantRevoke,
    /// `control-plane admin grant EMAIL`.
    RoleGrant,
    /// `control-plane admin revoke EMAIL`.
    RoleRevoke,
    /// `control-plane secrets rotate`.
    SecretsRotate,
    /// `control-plane oauth rotate-signing-key`.
    SigningKeyRotate,
    /// `POST /organizations`.
    OrganizationCreate,
    /// `PUT /organizations/{id}`; `detail.changed` names the fields.
    OrganizationUpdate,
    /// `DELETE /organizations/{id}`.
    OrganizationDelete,
    /// A member's role changed (`detail.role`; `user_id` is the member).
    MemberRoleChange,
    /// A member removed, or one who left (`user_id` is the member).
    MemberRemove,
    /// An invitation made (`detail.role`; never its link).
    InvitationCreate,
    InvitationRevoke,
    /// An invitation accepted: the person joined (`user_id`).
    InvitationAccept,
}

impl Action {
    /// Every action, in declaration order.
    pub const ALL: [Action; 32] = [
        Self::Signup,
        Self::Signin,
        Self::Signout,
        Self::PasswordChange,
        Self::AccountDelete,
        Self::SourceCreate,
        Self::SourceUpdate,
        Self::SourceDelete,
        Self::ServerCreate,
        Self::ServerUpdate,
        Self::ServerDelete,
        Self::ServerRestore,
        Self::ServerSourceAttach,
        Self::ServerSourceDetach,
        Self::ServerHardDelete,
        Self::KeyCreate,
        Self::KeyRevoke,
        Self::GrantApprove,
        Self::GrantDelete,
        Self::GrantRevoke,
        Self::RoleGrant,
        Self::RoleRevoke,
        Self::SecretsRotate,
        Self::SigningKeyRotate,
        Self::OrganizationCreate,
        Self::OrganizationUpdate,
        Self::OrganizationDelete,
        Self::MemberRoleChange,
        Self::MemberRemove,
        Self::InvitationCreate,
        Self::InvitationRevoke,
        Self::InvitationAccept,
    ];

    /// The stored and shown name (`server_create`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Signup => "signup",
            Self::Signin => "signin",
            Self::Signout => "signout",
            Self::PasswordChange => "password_change",
            Self::AccountDelete => "account_delete",
            Self::SourceCreate => "source_create",
            Self::SourceUpdate => "source_update",
            Self::SourceDelete => "source_delete",
            Self::ServerCreate => "server_create",
            Self::ServerUpdate => "server_update",
            Self::ServerDelete => "server_delete",
            Self::ServerRestore => "server_restore",
            Self::ServerSourceAttach => "server_source_attach",
            Self::ServerSourceDetach => "server_source_detach",
            Self::ServerHardDelete => "server_hard_delete",
            Self::KeyCreate => "key_create",
            Self::KeyRevoke => "key_revoke",
            Self::GrantApprove => "grant_approve",
            Self::GrantDelete => "grant_delete",
            Self::GrantRevoke => "grant_revoke",
            Self::RoleGrant => "role_grant",
            Self::RoleRevoke => "role_revoke",
            Self::SecretsRotate => "secrets_rotate",
            Self::SigningKeyRotate => "signing_key_rotate",
            Self::OrganizationCreate => "organization_create",
            Self::OrganizationUpdate => "organization_update",
            Self::OrganizationDelete => "organization_delete",
            Self::MemberRoleChange => "member_role_change",
            Self::MemberRemove => "member_remove",
            Self::InvitationCreate => "invitation_create",
            Self::InvitationRevoke => "invitation_revoke",
            Self::InvitationAccept => "invitation_accept",
        }
    }

    /// The action named `name`, if there is one.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == name)
    }
}

/// Who acted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A signed-in user (`actor_id`).
    User,
    /// A request without a session (sign-up, sign-in).
    Anonymous,
    /// The `control-plane` command line, run by an operator.
    Cli,
    /// An agent's OAuth client (token revocation).
    OauthClient,
}

impl ActorKind {
    /// The stored and shown name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Anonymous => "anonymous",
            Self::Cli => "cli",
            Self::OauthClient => "oauth_client",
        }
    }
}

/// Where a request came from: the client address as the sign-in limits see it
/// ([`client_ip`]) and the `X-Request-Id` the middleware set. An extractor that never fails
/// (`session` reads it).
#[derive(Debug, Clone, Default)]
pub struct Seen {
    pub client_ip: Option<IpAddr>,
    pub request_id: Option<String>,
}

impl Seen {
    /// From a request's parts; `trust_forwarded_for` as in [`client_ip`].
    pub fn of(parts: &Parts, trust_forwarded_for: bool) -> Self {
        let request_id = parts
            .headers
            .get(shared::request_id::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|id| id.chars().take(MAX_REQUEST_ID).collect());
        Self {
            client_ip: Some(client_ip(parts, trust_forwarded_for)),
            request_id,
        }
    }

    /// An anonymous activity seen in this request; see [`Activity::by`].
    pub fn activity(&self, action: Action) -> Activity {
        Activity {
            seen: self.clone(),
            ..Activity::new(action, ActorKind::Anonymous)
        }
    }
}

/// One record to write.
#[derive(Debug, Clone)]
pub struct Activity {
    pub action: Action,
    pub actor_kind: ActorKind,
    pub actor_id: Option<Uuid>,
    pub user_id: Option<Uuid>,
    /// The organization the action was in (admins of it read the record).
    pub organization_id: Option<Uuid>,
    pub error_code: Option<&'static str>,
    pub source_id: Option<Uuid>,
    pub server_id: Option<Uuid>,
    pub key_id: Option<Uuid>,
    pub grant_id: Option<Uuid>,
    pub detail: Map<String, Value>,
    pub seen: Seen,
}

impl Activity {
    fn new(action: Action, actor_kind: ActorKind) -> Self {
        Self {
            action,
            actor_kind,
            actor_id: None,
            user_id: None,
            organization_id: None,
            error_code: None,
            source_id: None,
            server_id: None,
            key_id: None,
            grant_id: None,
            detail: Map::new(),
            seen: Seen::default(),
        }
    }

    /// An action of the command line (no address, no request id).
    pub fn cli(action: Action) -> Self {
        Self::new(action, ActorKind::Cli)
    }

    /// Done by the signed-in `user`, on their own account unless [`Activity::on_user`] says
    /// otherwise.
    pub fn by(mut self, user: Uuid) -> Self {
        self.actor_kind = ActorKind::User;
        self.actor_id = Some(user);
        self.user_id = self.user_id.or(Some(user));
        self
    }

    /// Done by an agent's OAuth client.
    pub fn by_oauth_client(mut self) -> Self {
        self.actor_kind = ActorKind::OauthClient;
        self.actor_id = None;
        self
    }

    /// The account the record belongs to (shown to that user); none leaves it unset.
    pub fn on_user(mut self, user: impl Into<Option<Uuid>>) -> Self {
        self.user_id = user.into().or(self.user_id);
        self
    }

    /// The organization the action was in.
    pub fn in_org(mut self, id: Uuid) -> Self {
        self.organization_id = Some(id);
        self
    }

    pub fn source(mut self, id: Uuid) -> Self {
        self.source_id = Some(id);
        self
    }

    pub fn server(mut self, id: Uuid) -> Self {
        self.server_id = Some(id);
        self
    }

    pub fn key(mut self, id: Uuid) -> Self {
        self.key_id = Some(id);
        self
    }

    pub fn grant(mut self, id: Uuid) -> Self {
        self.grant_id = Some(id);
        self
    }

    /// A value the code chose (never something the caller typed, never a secret).
    pub fn detail(mut self, name: &'static str, value: impl Into<Value>) -> Self {
        self.detail.insert(name.to_owned(), value.into());
        self
    }

    /// `detail.changed`: the names of the fields the caller gave (never their values).
    pub fn changed<const N: usize>(self, fields: [(bool, &'static str); N]) -> Self {
        let names: Vec<&str> = fields
            .into_iter()
            .filter_map(|(given, name)| given.then_some(name))
            .collect();
        self.detail("changed", names)
    }

    /// Records a failure with this error code.
    pub fn failed(mut self, code: &'static str) -> Self {
        self.error_code = Some(code);
        self
    }
}
