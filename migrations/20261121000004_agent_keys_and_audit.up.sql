-- Agent access keys per MCP server, their last use, and the audit log of tool calls.

-- A public server answers agents without a key. Off by default.
alter table mcp_servers add column public boolean not null default false;

-- Keys an agent presents to the gateway (`Authorization: Bearer mcpk_…`). Only a SHA-256 of the
-- key is kept: keys are 256 random bits, so a fast hash is enough and lets the gateway check a
-- key on every request without bcrypt. The composite foreign key keeps a key with its server's
-- owner; deleting the server (or the account) deletes its keys.
create table mcp_server_keys (
    id         uuid        not null default gen_random_uuid(),
    server_id  uuid        not null,
    user_id    uuid        not null,
    name       text        not null,
    -- The first characters of the key, shown so people can tell keys apart.
    prefix     text        not null,
    key_hash   bytea       not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz,
    revoked_at timestamptz,
    constraint mcp_server_keys_pkey primary key (id),
    constraint mcp_server_keys_key_hash_key unique (key_hash),
    constraint mcp_server_keys_server_fkey foreign key (server_id, user_id)
        references mcp_servers (id, user_id) on delete cascade,
    constraint mcp_server_keys_name_check check (char_length(name) between 1 and 100),
    constraint mcp_server_keys_hash_check check (octet_length(key_hash) = 32)
);
create index mcp_server_keys_server_id_idx on mcp_server_keys (server_id, created_at);

-- When each key was last used, written by gateways in batches (never once per request). A
-- table of its own so that the gateway's role may write here and nowhere in the configuration,
-- and so that these writes do not notify gateways of a configuration change.
create table mcp_server_key_usage (
    key_id       uuid        not null,
    last_used_at timestamptz not null,
    constraint mcp_server_key_usage_pkey primary key (key_id),
    constraint mcp_server_key_usage_key_fkey foreign key (key_id)
        references mcp_server_keys (id) on delete cascade
);

-- A key created, revoked or deleted changes what its server's gateways accept.
create function notify_key_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('mcp_config', coalesce(new.server_id, old.server_id)::text);
    return null;
end;
$$;

create trigger mcp_server_keys_notify
    after insert or update or delete on mcp_server_keys
    for each row execute function notify_key_change();

-- Every tools/call a gateway answered. Written asynchronously in batches by gateways; read by
-- the server's owner through the control plane. `sources` holds one object per source called:
-- {"source_id", "type", "outcome": "ok"|"error"|"timeout"|"not_found", "latency_ms", "results"}.
create table tool_calls (
    id           bigint      generated always as identity,
    server_id    uuid        not null,
    key_id       uuid,
    called_at    timestamptz not null,
    tool         text        not null,
    -- The query or id the agent sent, cut to 1,000 characters.
    argument     text        not null,
    status       text        not null,
    error_class  text,
    result_count integer     not null,
    duration_ms  integer     not null,
    sources      jsonb       not null default '[]'::jsonb,
    constraint tool_calls_pkey primary key (id),
    constraint tool_calls_server_fkey foreign key (server_id)
        references mcp_servers (id) on delete cascade,
    constraint tool_calls_status_check check (status in ('ok', 'partial', 'error')),
    constraint tool_calls_sources_array_check check (jsonb_typeof(sources) = 'array')
);
create index tool_calls_server_called_at_idx on tool_calls (server_id, called_at desc, id desc);
-- Retention deletes by age across all servers. Rows arrive in time order, so a BRIN index
-- serves that range scan at a fraction of a B-tree's cost on every insert.
create index tool_calls_called_at_idx on tool_calls using brin (called_at);
