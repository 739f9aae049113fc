-- Sources may be remote MCP servers (`mcp`).
alter table sources drop constraint sources_type_check;
alter table sources add constraint sources_type_check
    check (type in ('outlook', 'box', 'snowflake', 'postgres', 'mcp'));
