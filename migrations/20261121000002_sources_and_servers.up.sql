-- Data sources, MCP servers and which sources each server may reach.

create table sources (
    id              uuid        not null default gen_random_uuid(),
    user_id         uuid        not null,
    type            text        not null,
    -- Non-secret settings only; secret fields live encrypted in `secrets`.
    source_metadata jsonb       not null default '{}'::jsonb,
    -- AEAD ciphertext of the secret fields and the id of the key that sealed it (for rotation).
    secrets         bytea,
    secrets_key_id  text,
    created_at      timestamptz not null default now(),
    updated_at      timestamptz not null default now(),
    constraint sources_pkey primary key (id),
    -- Target of the composite foreign key below: lets the database refuse cross-user links.
    constraint sources_id_user_id_key unique (id, user_id),
    constraint sources_user_id_fkey foreign key (user_id) references users (id) on delete cascade,
    constraint sources_type_check check (type in ('outlook', 'box', 'snowflake')),
    constraint sources_metadata_object_check check (jsonb_typeof(source_metadata) = 'object'),
    constraint sources_secrets_key_check check ((secrets is null) = (secrets_key_id is null))
);

create index sources_user_id_created_at_idx on sources (user_id, created_at desc);

create trigger sources_set_updated_at
    before update on sources
    for each row execute function set_updated_at();

create table mcp_servers (
    id            uuid        not null default gen_random_uuid(),
    user_id       uuid        not null,
    name          text        not null,
    -- The pool URL this server is reached at, e.g. https://mcp1.example.com.
    endpoint      text        not null,
    -- The routing key the gateway matches the Host header against: the endpoint's host name,
    -- lower-case, without port or trailing dot.
    endpoint_host text        not null,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    deleted_at    timestamptz,
    constraint mcp_servers_pkey primary key (id),
    constraint mcp_servers_id_user_id_key unique (id, user_id),
    constraint mcp_servers_user_id_fkey foreign key (user_id) references users (id) on delete cascade,
    constraint mcp_servers_name_check check (char_length(name) between 1 and 200),
    constraint mcp_servers_endpoint_host_check check (
        endpoint_host <> '' and endpoint_host = lower(endpoint_host) and endpoint_host not like '%.'
    )
);

-- At most one live server per endpoint, whatever the concurrency: the final guard of allocation.
create unique index mcp_servers_live_endpoint_key on mcp_servers (endpoint_host) where deleted_at is null;
create index mcp_servers_user_id_created_at_idx on mcp_servers (user_id, created_at desc);

create trigger mcp_servers_set_updated_at
    before update on mcp_servers
    for each row execute function set_updated_at();

-- Server <-> source links. Both foreign keys include user_id, so a link between a server and a
-- source of different users cannot exist; deleting either side drops the link.
create table mcp_server_sources (
    server_id  uuid        not null,
    source_id  uuid        not null,
    user_id    uuid        not null,
    created_at timestamptz not null default now(),
    constraint mcp_server_sources_pkey primary key (server_id, source_id),
    constraint mcp_server_sources_server_fkey foreign key (server_id, user_id)
        references mcp_servers (id, user_id) on delete cascade,
    constraint mcp_server_sources_source_fkey foreign key (source_id, user_id)
        references sources (id, user_id) on delete cascade
);

create index mcp_server_sources_source_id_idx on mcp_server_sources (source_id);
