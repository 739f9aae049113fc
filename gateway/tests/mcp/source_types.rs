//! Every source type in the closed enum reaches its own handler: the registry's one `match`
//! hands each type's typed settings to the handler of that type (a type without a handler does
//! not compile; one wired to another type's handler fails here).

use std::{collections::HashSet, sync::Arc, time::Duration};

use gateway::{
    snapshot::ServedSource,
    sources::{BoxFuture, Document, Hit, Lifecycle, Registry, SourceError, SourceHandler},
};
use serde_json::{Value, json};
use shared::{
    hosts::HostList,
    model::{SourceRules, SourceType},
};

/// Answers every call with its own name, so a test sees which handler was called.
struct Named(&'static str);

impl Lifecycle for Named {}

impl<C: Sync> SourceHandler<C> for Named {
    fn search<'a>(
        &'a self,
        _: &'a ServedSource,
        _: &'a C,
        _: &'a str,
        _: usize,
    ) -> BoxFuture<'a, Result<Vec<Hit>, SourceError>> {
        Box::pin(async move {
            Ok(vec![Hit {
                upstream_id: self.0.to_owned(),
                title: String::new(),
                url: String::new(),
            }])
        })
    }

    fn fetch<'a>(
        &'a self,
        _: &'a ServedSource,
        _: &'a C,
        _: &'a str,
    ) -> BoxFuture<'a, Result<Document, SourceError>> {
        Box::pin(async move {
            Ok(Document {
                title: self.0.to_owned(),
                text: String::new(),
                url: String::new(),
                metadata: json!({}),
            })
        })
    }
}

/// Valid settings and secrets of each type (a new type must add its own here).
fn sample(source_type: SourceType) -> (Value, Value) {
    match source_type {
        SourceType::Outlook => (
            json!({"tenant_id": "contoso.onmicrosoft.com",
                "client_id": "11111111-2222-3333-4444-555555555555", "user_id": "ada@contoso.com"}),
            json!({"client_secret": "s"}),
        ),
        SourceType::Box => (
            json!({"client_id": "abc", "subject_type": "user", "subject_id": "42"}),
            json!({"client_secret": "s"}),
        ),
        SourceType::Snowflake => (
            json!({"account_url": "https://acme.snowflakecomputing.com",
                "search_service": "DOCS.PUBLIC.SEARCH"}),
            json!({"pat": "p"}),
        ),
        SourceType::Postgres => (
            json!({"host": "db.example.com", "database": "crm", "user": "reader",
                "tables": [{"table": "public.tickets", "id_column": "id",
                    "title_column": "subject", "text_columns": ["body"]}]}),
            json!({"password": "p"}),
        ),
        SourceType::Mcp => (json!({"url": "https://mcp.example.com/mcp"}), json!({})),
    }
}

#[tokio::test]
async fn every_source_type_is_served_by_its_own_handler() {
    let registry = Registry {
        outlook: Arc::new(Named("outlook")),
        box_files: Arc::new(Named("box")),
        snowflake: Arc::new(Named("snowflake")),
        postgres: Arc::new(Named("postgres")),
        mcp: Arc::new(Named("mcp")),
    };
    let rules = SourceRules {
        postgres_hosts: HostList::parse(&["db.example.com".to_owned()]).unwrap(),
        ..SourceRules::from_settings(&shared::config::SourceSettings::default())
    };
    let mut served = HashSet::new();
    for source_type in SourceType::ALL {
        let (metadata, secrets) = sample(source_type);
        let source = ServedSource::parse(
            uuid::Uuid::new_v4(),
            source_type,
            metadata.as_object().unwrap(),
            Ok(secrets.as_object().unwrap().clone()),
            &rules,
        );
        let deadline = Duration::from_secs(5);
        let hits = registry.search(&source, "q", 5, deadline).await;
        let name = hits.unwrap_or_else(|e| panic!("{source_type:?}: {e}"))[0]
            .upstream_id
            .clone();
        let document = registry.fetch(&source, "id", deadline).await.unwrap();
        assert_eq!(
            (name.as_str(), document.title.as_str()),
            (source_type.as_str(), source_type.as_str()),
            "a {source_type:?} source reached another type's handler"
        );
        served.insert(name);
    }
    assert_eq!(served.len(), SourceType::ALL.len());
}
