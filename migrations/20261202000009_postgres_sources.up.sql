-- `postgres` sources (issue 16): the type constraint admits the new type.
alter table sources drop constraint sources_type_check;
alter table sources add constraint sources_type_check
    check (type in ('outlook', 'box', 'snowflake', 'postgres'));
