-- Back to the four types before `mcp`. `mcp` sources are deleted first (their server links go
-- with them), or the old constraint could not be added.
delete from sources where type = 'mcp';
alter table sources drop constraint sources_type_check;
alter table sources add constraint sources_type_check
    check (type in ('outlook', 'box', 'snowflake', 'postgres'));
