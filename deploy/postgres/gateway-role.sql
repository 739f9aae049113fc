-- The gateway's least-privilege database role.
--
-- The control plane's role owns the schema (it runs the migrations). Gateways only read the
-- configuration, record key usage and append to the audit log; this role can do exactly that.
-- Run it as the schema owner (or a superuser) after `control-plane migrate`, in the product's
-- database, after every upgrade that adds tables (it is idempotent), then give the role a
-- password and point the gateways' DATABASE_URL at it:
--
--   psql "$OWNER_DATABASE_URL" -v ON_ERROR_STOP=1 -f deploy/postgres/gateway-role.sql
--   psql "$OWNER_DATABASE_URL" -c "alter role mcp_gateway password '…'"
--   DATABASE_URL=postgres://mcp_gateway:…@db.internal/mcp_gateway gateway
--
-- The gateway also uses LISTEN, which needs no privilege.

do $$
begin
    if not exists (select from pg_roles where rolname = 'mcp_gateway') then
        create role mcp_gateway login;
    end if;
end
$$;

-- Nothing by default, then exactly what the gateway needs.
revoke all on all tables in schema public from mcp_gateway;
revoke all on all sequences in schema public from mcp_gateway;
grant usage on schema public to mcp_gateway;

-- The configuration snapshot: servers, their sources (with sealed secrets), links and keys.
grant select on mcp_servers, mcp_server_sources, sources, mcp_server_keys to mcp_gateway;
-- Last-used times of keys (batched upserts).
grant select, insert, update on mcp_server_key_usage to mcp_gateway;
-- The audit log: append only.
grant insert on tool_calls to mcp_gateway;
-- OAuth: the public half of the signing keys only (a gateway verifies tokens, never mints
-- them), and which grants are live and whose.
grant select (kid, public_key, created_at, retired_at) on oauth_signing_keys to mcp_gateway;
grant select (id, server_id, user_id) on oauth_grants to mcp_gateway;
