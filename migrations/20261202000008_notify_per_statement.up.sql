-- Configuration changes are announced once per statement instead of once per row, so that a
-- bulk change (an import, `secrets rotate`, an account with many servers deleted) sends a few
-- notifications rather than one per server. Gateways take every waiting notification at once
-- and apply the batch as one patch (or one full reload past a threshold).
--
-- Payload: up to 100 distinct server ids separated by commas, then `@` and the transaction's
-- start in milliseconds since the epoch (gateways measure the lag from it). Still delivered
-- only on commit, never on rollback; identical payloads of one transaction arrive once.
-- `signing_keys` stays per row (see migration 0006): a purge that deletes nothing must not
-- wake every gateway.

create function announce_servers(changed uuid[]) returns void
language plpgsql as $$
declare
    at constant text := '@' || (extract(epoch from now()) * 1000)::bigint::text;
begin
    perform pg_notify('mcp_config', string_agg(id::text, ',') || at)
    from (select id, (row_number() over (order by id) - 1) / 100 as chunk
          from (select distinct unnest(changed) as id) ids
          where id is not null) numbered
    group by chunk;
end;
$$;

-- The rows a statement touched, by the server column named in the trigger's argument (`id`
-- on mcp_servers, `server_id` elsewhere): the new rows, or the old ones of a delete.
create function announce_changed_rows() returns trigger
language plpgsql as $$
declare
    changed uuid[];
begin
    execute format('select array(select %I from %I)', tg_argv[0],
                   case when tg_op = 'DELETE' then 'old_rows' else 'new_rows' end)
        into changed;
    perform announce_servers(changed);
    return null;
end;
$$;

-- A source's settings or secret changed: every server it is assigned to is affected.
create function announce_changed_sources() returns trigger
language plpgsql as $$
begin
    perform announce_servers(array(
        select link.server_id
        from new_rows n
        join old_rows o on o.id = n.id
        join mcp_server_sources link on link.source_id = n.id
        where o.source_metadata is distinct from n.source_metadata
           or o.secrets is distinct from n.secrets
           or o.type is distinct from n.type));
    return null;
end;
$$;

drop trigger mcp_servers_notify on mcp_servers;
drop trigger mcp_server_sources_notify on mcp_server_sources;
drop trigger sources_notify on sources;
drop trigger mcp_server_keys_notify on mcp_server_keys;
drop trigger oauth_grants_notify on oauth_grants;

-- A trigger with transition tables serves one event, hence three per table.
create trigger mcp_servers_announce_insert after insert on mcp_servers
    referencing new table as new_rows
    for each statement execute function announce_changed_rows('id');
create trigger mcp_servers_announce_update after update on mcp_servers
    referencing new table as new_rows
    for each statement execute function announce_changed_rows('id');
create trigger mcp_servers_announce_delete after delete on mcp_servers
    referencing old table as old_rows
    for each statement execute function announce_changed_rows('id');

create trigger mcp_server_sources_announce_insert after insert on mcp_server_sources
    referencing new table as new_rows
    for each statement execute function announce_changed_rows('server_id');
create trigger mcp_server_sources_announce_delete after delete on mcp_server_sources
    referencing old table as old_rows
    for each statement execute function announce_changed_rows('server_id');

create trigger sources_announce_update after update on sources
    referencing old table as old_rows new table as new_rows
    for each statement execute function announce_changed_sources();

create trigger mcp_server_keys_announce_insert after insert on mcp_server_keys
    referencing new table as new_rows
    for each statement execute function announce_changed_rows('server_id');
create trigger mcp_server_keys_announce_update after update on mcp_server_keys
    referencing new table as new_rows
    for each statement execute function announce_changed_rows('server_id');
create trigger mcp_server_keys_announce_delete after delete on mcp_server_keys
    referencing old table as old_rows
    for each statement execute function announce_changed_rows('server_id');

create trigger oauth_grants_announce_insert after insert on oauth_grants
    referencing new table as new_rows
    for each statement execute function announce_changed_rows('server_id');
create trigger oauth_grants_announce_delete after delete on oauth_grants
    referencing old table as old_rows
    for each statement execute function announce_changed_rows('server_id');
