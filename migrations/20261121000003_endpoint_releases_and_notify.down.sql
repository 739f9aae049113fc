drop trigger if exists sources_notify on sources;
drop function if exists notify_source_change();
drop trigger if exists mcp_server_sources_notify on mcp_server_sources;
drop trigger if exists mcp_servers_notify on mcp_servers;
drop function if exists notify_server_change();
drop trigger if exists mcp_servers_record_endpoint_release on mcp_servers;
drop function if exists record_endpoint_release();
drop table if exists endpoint_releases;
