drop table if exists mcp_server_sources;
drop table if exists mcp_servers;
drop table if exists sources;
