//! What the gateway serves: servers with their keys, grants and parsed sources, and the
//! immutable [`Snapshot`] of them all by routing host. Patching a snapshot copies it cheaply
//! (persistent maps) and replaces only the servers that changed.

use std::{
    collections::HashMap,
    sync::{Arc, OnceLock},
};

use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use serde_json::{Map, Value};
use shared::{
    access_key::{self, KeyHash},
    model::{
        SourceRules, SourceType,
        source::{SourceConfig, describe_problems},
    },
    oauth::canonical_resource,
};
use uuid::Uuid;

use crate::types::SourceError;

/// A source as the gateway serves it: its configuration parsed once, when loaded.
#[derive(Debug)]
pub struct ServedSource {
    pub id: Uuid,
    pub source_type: SourceType,
    /// Ready to call, or why not (each call then fails with the reason instead of the whole
    /// server going down).
    pub config: Result<SourceConfig, Broken>,
}

/// Why a loaded source cannot be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Broken {
    /// Its secrets were sealed with a key this gateway does not have.
    Undecryptable,
    /// Its stored settings break the rules (e.g. a Snowflake host no longer allowed).
    Invalid(String),
}

impl std::fmt::Display for Broken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Undecryptable => f.write_str(
                "its credentials cannot be decrypted by this gateway (check SECRETS_KEY / SECRETS_OLD_KEYS)",
            ),
            Self::Invalid(reason) => f.write_str(reason),
        }
    }
}

impl ServedSource {
    /// Parses a source's stored settings and decrypted secrets (or the reason they could not
    /// be decrypted) by the deployment's source `rules`.
    pub fn parse(
        id: Uuid,
        source_type: SourceType,
        metadata: &Map<String, Value>,
        secrets: Result<Map<String, Value>, Broken>,
        rules: &SourceRules,
    ) -> Self {
        let config = secrets.and_then(|secrets| {
            SourceConfig::parse(source_type, metadata, &secrets, rules)
                .map_err(|problems| Broken::Invalid(describe_problems(&problems)))
        });
        Self {
            id,
            source_type,
            config,
        }
    }

    /// The configuration, or why the source cannot be called.
    pub fn ready(&self) -> Result<&SourceConfig, SourceError> {
        self.config
            .as_ref()
            .map_err(|broken| SourceError::Unusable(broken.to_string()))
    }
}

/// An access key a server accepts (revoked keys are not loaded).
#[derive(Debug, Clone)]
pub struct ServedKey {
    pub id: Uuid,
    /// SHA-256 of the key.
    pub hash: KeyHash,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A live MCP server.
#[derive(Debug)]
pub struct ServedServer {
    pub id: Uuid,
    pub name: String,
    /// Routing key (the same text as the snapshot's key for it).
    pub host: Arc<str>,
    /// `scheme://host[:port]`, the server's own origin.
    pub endpoint: String,
    /// Answers agents without a key.
    pub public: bool,
    /// The canonical `mcp_url`, worked out on first use: only OAuth calls need it, and a
    /// million URL parses would add a second to every full load.
    pub(super) resource: OnceLock<String>,
    pub keys: Vec<ServedKey>,
    /// Live OAuth grants and the member who approved each; a token is accepted only while its
    /// grant is here, for that member (a grant ends in the database when its member leaves
    /// the organization, is taken off a `listed` server or has their role lowered).
    pub grants: HashMap<Uuid, Uuid>,
    pub sources: Vec<Arc<ServedSource>>,
}

impl ServedServer {
    /// The id of the unexpired key whose hash is `hash`. Every key is compared (in constant
    /// time), so the answer's timing says nothing about which key came close.
    pub fn key(&self, hash: &KeyHash, now: DateTime<Utc>) -> Option<Uuid> {
        let mut found = None;
        for key in &self.keys {
            if access_key::same(&key.hash, hash) && key.expires_at.is_none_or(|at| at > now) {
                found = Some(key.id);
            }
        }
        found
    }

    /// The server's `mcp_url` in canonical form: the audience its OAuth tokens must name.
    pub fn resource(&self) -> &str {
        self.resource.get_or_init(|| {
            canonical_resource(&format!("{}/mcp", self.endpoint)).unwrap_or_default()
        })
    }

    /// The source with this id, if this server has it.
    pub fn source(&self, id: Uuid) -> Option<&Arc<ServedSource>> {
        self.sources.iter().find(|s| s.id == id)
    }
}

/// The public keys OAuth access tokens are verified with, by key id.
#[derive(Default, Clone)]
pub struct VerifyingKeys(pub(super) HashMap<String, DecodingKey>);

impl VerifyingKeys {
    /// The key with this id.
    pub fn get(&self, kid: &str) -> Option<&DecodingKey> {
        self.0.get(kid)
    }
}

impl std::fmt::Debug for VerifyingKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

/// One immutable configuration.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    // Persistent maps: a patched copy shares every untouched entry with its base.
    by_host: imbl::HashMap<Arc<str>, Arc<ServedServer>>,
    host_of: imbl::HashMap<Uuid, Arc<str>>,
    /// Public halves of the OAuth signing keys.
    pub verifying_keys: Arc<VerifyingKeys>,
    /// Increases with every swap.
    pub version: u64,
}

impl Snapshot {
    /// The server behind a routing host.
    pub fn server(&self, host: &str) -> Option<&Arc<ServedServer>> {
        self.by_host.get(host)
    }

    /// Every server served.
    pub fn servers(&self) -> impl Iterator<Item = &Arc<ServedServer>> {
        self.by_host.values()
    }

    /// How many servers are served.
    pub fn len(&self) -> usize {
        self.by_host.len()
    }

    /// Whether no server is served.
    pub fn is_empty(&self) -> bool {
        self.by_host.is_empty()
    }

    /// A snapshot of `servers` (all different), its two maps built side by side.
    pub(super) fn of(
        version: u64,
        verifying_keys: VerifyingKeys,
        servers: Vec<ServedServer>,
    ) -> Self {
        let servers: Vec<Arc<ServedServer>> = servers.into_iter().map(Arc::new).collect();
        let (by_host, host_of) = std::thread::scope(|scope| {
            let host_of = scope.spawn(|| {
                servers
                    .iter()
                    .map(|server| (server.id, Arc::clone(&server.host)))
                    .collect::<imbl::HashMap<_, _>>()
            });
            let mut by_host = imbl::HashMap::new();
            let mut second_on_host = Vec::new();
            for server in &servers {
                if by_host.contains_key(&server.host) {
                    second_on_host.push(server.id);
                } else {
                    by_host.insert(Arc::clone(&server.host), Arc::clone(server));
                }
            }
            let mut host_of = host_of.join().expect("mapping ids does not panic");
            for id in second_on_host {
                tracing::error!(server_id = %id, "two live servers on one host; keeping the first");
                host_of.remove(&id);
            }
            (by_host, host_of)
        });
        Self {
            by_host,
            host_of,
            verifying_keys: Arc::new(verifying_keys),
            version,
        }
    }

    pub(super) fn insert(&mut self, server: ServedServer) {
        self.remove(server.id);
        // Should the database ever hand one host to two servers, the first stays (the partial
        // unique index makes this impossible for live servers).
        if self.by_host.contains_key(&server.host) {
            tracing::error!(host = %server.host, server_id = %server.id, "two live servers on one host; keeping the first");
            return;
        }
        self.host_of.insert(server.id, Arc::clone(&server.host));
        self.by_host
            .insert(Arc::clone(&server.host), Arc::new(server));
    }

    pub(super) fn remove(&mut self, id: Uuid) {
        if let Some(host) = self.host_of.remove(&id) {
            self.by_host.remove(&host);
        }
    }
}
