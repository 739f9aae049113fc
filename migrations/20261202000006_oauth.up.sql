-- OAuth 2.1 for agents: the control plane is the authorization server, each MCP server's
-- domain a protected resource served by the gateways.

-- Keys that sign OAuth access tokens (Ed25519). The private half is sealed with SECRETS_KEY
-- like source secrets; the gateways' role may read only the public columns (see
-- deploy/postgres/gateway-role.sql), so a gateway can verify tokens and never mint them.
-- Exactly one key signs (retired_at is null); a retired key still verifies until the tokens it
-- signed have expired, then the control plane deletes it.
create table oauth_signing_keys (
    kid                 text        not null,
    public_key          bytea       not null,
    private_key         bytea       not null,
    private_key_key_id  text        not null,
    created_at          timestamptz not null default now(),
    retired_at          timestamptz,
    constraint oauth_signing_keys_pkey primary key (kid),
    constraint oauth_signing_keys_public_key_check check (octet_length(public_key) = 32)
);
create unique index oauth_signing_keys_one_active on oauth_signing_keys ((true)) where retired_at is null;

-- Clients: registered through /oauth/register (RFC 7591) or known by their client ID metadata
-- document (then `client_id` is the document's URL). Public clients only: no secrets.
create table oauth_clients (
    client_id      text        not null,
    kind           text        not null,
    client_name    text        not null,
    redirect_uris  text[]      not null,
    created_at     timestamptz not null default now(),
    last_used_at   timestamptz not null default now(),
    constraint oauth_clients_pkey primary key (client_id),
    constraint oauth_clients_kind_check check (kind in ('registered', 'metadata_document')),
    constraint oauth_clients_redirect_uris_check check (cardinality(redirect_uris) between 1 and 10)
);

-- What an owner approved: one client's access to one of the owner's servers. One live grant
-- per (server, client); approving again reuses it. Deleting a grant ends every token issued
-- under it (gateways check the grant on each request; refresh tokens and codes cascade).
create table oauth_grants (
    id            uuid        not null default gen_random_uuid(),
    user_id       uuid        not null,
    server_id     uuid        not null,
    client_id     text        not null,
    redirect_uri  text        not null,
    scope         text        not null,
    created_at    timestamptz not null default now(),
    last_used_at  timestamptz,
    constraint oauth_grants_pkey primary key (id),
    constraint oauth_grants_server_client_key unique (server_id, client_id),
    constraint oauth_grants_server_fkey foreign key (server_id, user_id)
        references mcp_servers (id, user_id) on delete cascade,
    constraint oauth_grants_client_fkey foreign key (client_id)
        references oauth_clients (client_id) on delete cascade
);
create index oauth_grants_user_id_idx on oauth_grants (user_id);
create index oauth_grants_client_id_idx on oauth_grants (client_id);

-- Authorization codes (SHA-256 only), single use, bound to client, redirect URI, PKCE
-- challenge and resource. A used code is kept until it expires so a replay can be detected.
create table oauth_codes (
    code_hash       bytea       not null,
    grant_id        uuid        not null,
    redirect_uri    text        not null,
    code_challenge  text        not null,
    resource        text        not null,
    expires_at      timestamptz not null,
    used_at         timestamptz,
    constraint oauth_codes_pkey primary key (code_hash),
    constraint oauth_codes_grant_fkey foreign key (grant_id)
        references oauth_grants (id) on delete cascade
);
create index oauth_codes_grant_id_idx on oauth_codes (grant_id);

-- Refresh tokens (SHA-256 only), rotated on every use. A used one is kept until it expires:
-- presenting it again means it was stolen, and the grant is deleted.
create table oauth_refresh_tokens (
    token_hash  bytea       not null,
    grant_id    uuid        not null,
    resource    text        not null,
    created_at  timestamptz not null default now(),
    expires_at  timestamptz not null,
    used_at     timestamptz,
    constraint oauth_refresh_tokens_pkey primary key (token_hash),
    constraint oauth_refresh_tokens_grant_fkey foreign key (grant_id)
        references oauth_grants (id) on delete cascade
);
create index oauth_refresh_tokens_grant_id_idx on oauth_refresh_tokens (grant_id);

-- A grant created or deleted changes which tokens its server's gateways accept.
create function notify_grant_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('mcp_config', coalesce(new.server_id, old.server_id)::text);
    return null;
end;
$$;
create trigger oauth_grants_notify
    after insert or delete on oauth_grants
    for each row execute function notify_grant_change();

-- A signing key added, retired or deleted changes what every gateway verifies with.
create function notify_signing_key_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('mcp_config', 'signing_keys');
    return null;
end;
$$;
-- Per row: a statement that changes no key (the periodic purge) must not wake every gateway.
create trigger oauth_signing_keys_notify
    after insert or update or delete on oauth_signing_keys
    for each row execute function notify_signing_key_change();

-- What an owner approved named the server, its sources and the account's password: when any
-- of these changes so that the grant would reach more (or other) data than was consented to,
-- or the account's credentials change, the grants end and agents must ask again. Triggers, so
-- that every path (API, CLI, cascades) obeys.
create function end_grants_of_server() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants where server_id = new.server_id;
    return null;
end;
$$;
-- A source attached to a server (links that already existed insert nothing).
create trigger mcp_server_sources_end_grants
    after insert on mcp_server_sources
    for each row execute function end_grants_of_server();

create function end_grants_of_deleted_server() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants where server_id = new.id;
    return null;
end;
$$;
-- A server soft-deleted (a hard delete cascades).
create trigger mcp_servers_end_grants
    after update of deleted_at on mcp_servers
    for each row when (old.deleted_at is null and new.deleted_at is not null)
    execute function end_grants_of_deleted_server();

create function end_grants_of_changed_source() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants g using mcp_server_sources l
     where l.source_id = new.id and g.server_id = l.server_id;
    return null;
end;
$$;
-- A source pointed elsewhere (its type or settings; re-sealing secrets under a new key is not
-- a change of what it reaches).
create trigger sources_end_grants
    after update of type, source_metadata on sources
    for each row when (old.type is distinct from new.type
                       or old.source_metadata is distinct from new.source_metadata)
    execute function end_grants_of_changed_source();

create function end_grants_of_user() returns trigger
language plpgsql as $$
begin
    delete from oauth_grants where user_id = new.id;
    return null;
end;
$$;
-- A password change (an account deletion cascades).
create trigger users_end_grants
    after update of hashed_password on users
    for each row when (old.hashed_password is distinct from new.hashed_password)
    execute function end_grants_of_user();

-- The audit log names the grant an OAuth call came through, beside the key id.
alter table tool_calls add column grant_id uuid;
