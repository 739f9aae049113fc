-- Lighter audit inserts. Gateways add a row to `tool_calls` for every tool call, so each row's
-- cost in the database is paid at the gateway's full call rate. Measured on 20,000 rows with
-- three sources each (INSERT … SELECT, PostgreSQL 15, see the closing note of issue 6): about
-- 10 µs a row with the schema of migration 0004, 4 µs with this one. In that order of weight:
--
-- * No foreign key to `mcp_servers`: it cost a lookup and a row lock for every inserted row.
--   The calls of a server deleted for good (an administrator's hard delete, or its owner's
--   account deleted) are removed by the trigger below instead of by a cascade. A record a
--   gateway writes in the same instant as that delete may survive it; such a row belongs to no
--   server, so no API shows it, and the retention purge removes it.
-- * `sources` as `json`, not `jsonb`: `json` input only checks the syntax, where `jsonb` builds
--   and sorts a binary document. The column is read rarely (by owners, a page at a time), and
--   `json_array_elements` serves the summary as before. Gateways always write an array.
-- * No primary key: `id` still orders calls of the same instant (paging) and the
--   (server_id, called_at, id) index still serves every read; the retention purge deletes by
--   physical row address.
alter table tool_calls drop constraint tool_calls_server_fkey;
alter table tool_calls drop constraint tool_calls_pkey;
alter table tool_calls drop constraint tool_calls_sources_array_check;
alter table tool_calls alter column sources drop default;
alter table tool_calls alter column sources type json using sources::json;
alter table tool_calls alter column sources set default '[]'::json;

create function delete_calls_of_deleted_servers() returns trigger
language plpgsql as $$
begin
    delete from tool_calls where server_id in (select id from deleted_servers);
    return null;
end;
$$;

create trigger mcp_servers_delete_calls
    after delete on mcp_servers
    referencing old table as deleted_servers
    for each statement execute function delete_calls_of_deleted_servers();
