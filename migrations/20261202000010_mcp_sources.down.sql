-- Back to the three types before `mcp` (refused while an `mcp` source exists).
alter table sources drop constraint sources_type_check;
alter table sources add constraint sources_type_check
    check (type in ('outlook', 'box', 'snowflake'));
