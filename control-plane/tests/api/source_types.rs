//! Every source type in the closed enum has what the control plane needs of it: its place in
//! the database's type check, and a console form that labels every field its table states.

use std::collections::BTreeSet;

use reqwest::StatusCode;
use shared::model::SourceType;
use sqlx::PgPool;

use crate::{console::Person, helpers::spawn_app};

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn the_database_type_check_names_exactly_the_source_types(pool: PgPool) {
    let definition: String = sqlx::query_scalar(
        "select pg_get_constraintdef(oid) from pg_constraint where conname = 'sources_type_check'",
    )
    .fetch_one(&pool)
    .await
    .expect("the sources table has a type check");
    let in_check: BTreeSet<&str> = definition.split('\'').skip(1).step_by(2).collect();
    let in_enum: BTreeSet<&str> = SourceType::ALL.iter().map(|t| t.as_str()).collect();
    assert_eq!(
        in_check, in_enum,
        "a migration must add each source type to sources_type_check ({definition})"
    );
}

#[sqlx::test(migrator = "shared::db::MIGRATOR")]
async fn every_source_type_has_a_console_form_labelling_each_field(pool: PgPool) {
    let app = spawn_app(pool).await;
    let ada = Person::new(&app);
    ada.sign_up("ada@example.com").await;
    for source_type in SourceType::ALL {
        let form = ada
            .get(&format!("/sources/new?type={}", source_type.as_str()))
            .await;
        assert_eq!(form.status, StatusCode::OK, "{source_type:?}");
        for field in source_type.field_specs() {
            let input = format!(r#"id="f-{}""#, field.name);
            assert!(
                form.html.contains(&input) && form.html.contains(field.label),
                "the {source_type:?} form lacks {} ({})",
                field.name,
                field.label
            );
        }
    }
}
