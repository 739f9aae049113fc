drop table if exists tool_calls;
drop trigger if exists mcp_server_keys_notify on mcp_server_keys;
drop function if exists notify_key_change();
drop table if exists mcp_server_key_usage;
drop table if exists mcp_server_keys;
alter table mcp_servers drop column if exists public;
