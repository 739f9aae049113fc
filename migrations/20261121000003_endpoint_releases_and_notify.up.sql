-- When an endpoint stops being held by a live server (soft delete, hard delete, or the owner's
-- account deleted), remember who held it and when: another user may only get it after a
-- cooldown, so an agent still holding the old URL cannot reach a stranger's data. Kept by
-- triggers so that every path, cascades included, records it. No foreign key to users: the
-- record must outlive a deleted account.
create table endpoint_releases (
    endpoint_host text        not null,
    user_id       uuid        not null,
    released_at   timestamptz not null default now()
);

create index endpoint_releases_host_released_idx on endpoint_releases (endpoint_host, released_at desc);

create function record_endpoint_release() returns trigger
language plpgsql as $$
begin
    if tg_op = 'UPDATE' then
        if old.deleted_at is null and new.deleted_at is not null then
            insert into endpoint_releases (endpoint_host, user_id) values (old.endpoint_host, old.user_id);
        end if;
        return new;
    end if;
    -- DELETE of a live server frees its endpoint; a soft-deleted one was freed already.
    if old.deleted_at is null then
        insert into endpoint_releases (endpoint_host, user_id) values (old.endpoint_host, old.user_id);
    end if;
    return old;
end;
$$;

create trigger mcp_servers_record_endpoint_release
    after update of deleted_at or delete on mcp_servers
    for each row execute function record_endpoint_release();

-- Change notifications for gateways (`LISTEN mcp_config`). The payload is the affected
-- server's id. pg_notify inside a transaction is delivered only on commit, and not at all on
-- rollback; identical payloads in one transaction are delivered once.
create function notify_server_change() returns trigger
language plpgsql as $$
declare
    affected uuid;
begin
    if tg_table_name = 'mcp_server_sources' then
        affected := coalesce(new.server_id, old.server_id);
    else
        affected := coalesce(new.id, old.id);
    end if;
    perform pg_notify('mcp_config', affected::text);
    return null;
end;
$$;

create trigger mcp_servers_notify
    after insert or update or delete on mcp_servers
    for each row execute function notify_server_change();

create trigger mcp_server_sources_notify
    after insert or delete on mcp_server_sources
    for each row execute function notify_server_change();

-- A source's settings or secret changed: every server it is assigned to is affected.
-- (Deleting a source deletes its links, which notify through the trigger above.)
create function notify_source_change() returns trigger
language plpgsql as $$
begin
    perform pg_notify('mcp_config', link.server_id::text)
    from mcp_server_sources link
    where link.source_id = new.id;
    return null;
end;
$$;

create trigger sources_notify
    after update on sources
    for each row
    when (old.source_metadata is distinct from new.source_metadata
          or old.secrets is distinct from new.secrets
          or old.type is distinct from new.type)
    execute function notify_source_change();
