drop trigger oauth_grants_announce_delete on oauth_grants;
drop trigger oauth_grants_announce_insert on oauth_grants;
drop trigger mcp_server_keys_announce_delete on mcp_server_keys;
drop trigger mcp_server_keys_announce_update on mcp_server_keys;
drop trigger mcp_server_keys_announce_insert on mcp_server_keys;
drop trigger sources_announce_update on sources;
drop trigger mcp_server_sources_announce_delete on mcp_server_sources;
drop trigger mcp_server_sources_announce_insert on mcp_server_sources;
drop trigger mcp_servers_announce_delete on mcp_servers;
drop trigger mcp_servers_announce_update on mcp_servers;
drop trigger mcp_servers_announce_insert on mcp_servers;
drop function announce_changed_sources();
drop function announce_changed_rows();
drop function announce_servers(uuid[]);

-- The per-row triggers of migrations 0003, 0004 and 0006 (their functions were kept).
create trigger mcp_servers_notify
    after insert or update or delete on mcp_servers
    for each row execute function notify_server_change();
create trigger mcp_server_sources_notify
    after insert or delete on mcp_server_sources
    for each row execute function notify_server_change();
create trigger sources_notify
    after update on sources
    for each row
    when (old.source_metadata is distinct from new.source_metadata
          or old.secrets is distinct from new.secrets
          or old.type is distinct from new.type)
    execute function notify_source_change();
create trigger mcp_server_keys_notify
    after insert or update or delete on mcp_server_keys
    for each row execute function notify_key_change();
create trigger oauth_grants_notify
    after insert or delete on oauth_grants
    for each row execute function notify_grant_change();
