drop trigger if exists mcp_servers_delete_calls on mcp_servers;
drop function if exists delete_calls_of_deleted_servers();
delete from tool_calls t where not exists (select 1 from mcp_servers s where s.id = t.server_id);
alter table tool_calls alter column sources drop default;
alter table tool_calls alter column sources type jsonb using sources::jsonb;
alter table tool_calls alter column sources set default '[]'::jsonb;
alter table tool_calls add constraint tool_calls_sources_array_check check (jsonb_typeof(sources) = 'array');
alter table tool_calls add constraint tool_calls_pkey primary key (id);
alter table tool_calls add constraint tool_calls_server_fkey foreign key (server_id)
    references mcp_servers (id) on delete cascade;
