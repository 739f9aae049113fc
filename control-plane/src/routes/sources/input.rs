//! What a source's request body is: [`SourceInput`] (create) and [`SourceUpdate`] (its
//! `PUT` documentation), and their OpenAPI schemas, one per source type, built from the rules
//! `shared` applies so they cannot drift from them.

use serde::Deserialize;
use serde_json::{Map, Value};
use shared::model::{SourceRules, SourceType};
use utoipa::ToSchema;
use uuid::Uuid;

/// A source to create, or the new state of one: `type` and that type's `source_metadata`.
/// Secret fields are write-only; on update, leaving one out keeps the stored value.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourceInput {
    #[serde(rename = "type")]
    pub source_type: String,
    #[serde(default)]
    pub source_metadata: Map<String, Value>,
    /// The organization (create: default the caller's personal one; update: must be the
    /// source's own, sources do not move).
    #[serde(default)]
    pub organization_id: Option<Uuid>,
}

/// The new state of a source (`PUT`): as [`SourceInput`], but secret fields may be left out to
/// keep the stored ones. Documentation only; the handler reads a `SourceInput`.
pub struct SourceUpdate;

/// The schema name of one type's input, e.g. `BoxSource` (`BoxSourceUpdate` for `PUT`).
fn input_schema_name(source_type: SourceType, update: bool) -> String {
    let name = source_type.as_str();
    let suffix = if update { "Update" } else { "" };
    format!("{}{}Source{suffix}", name[..1].to_uppercase(), &name[1..])
}

/// The schema of one type's input, built from the rules `shared` applies (so it cannot drift
/// from them). Snowflake URLs are shown with the default host suffix; a deployment that sets
/// `SNOWFLAKE_ALLOWED_HOST_SUFFIXES` accepts its own.
fn input_schema(source_type: SourceType, update: bool) -> Value {
    let rules = SourceRules::from_settings(&shared::config::SourceSettings::default());
    serde_json::json!({
        "type": "object",
        "description": format!("A {} source.", source_type.as_str()),
        "properties": {
            "type": {"type": "string", "enum": [source_type.as_str()]},
            "source_metadata": source_type.metadata_schema(&rules, update),
            "organization_id": {
                "type": ["string", "null"], "format": "uuid",
                "description": if update {
                    "The source's own organization, if given (sources do not move: another \
                     one is 422)."
                } else {
                    "The organization to create it in (default: the caller's personal one); \
                     the caller must be an owner or admin there."
                },
            },
        },
        "required": ["type", "source_metadata"],
        "additionalProperties": false,
    })
}

/// `oneOf` the per-type schemas, chosen by `type`.
fn one_of(update: bool) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    let reference =
        |t: SourceType| format!("#/components/schemas/{}", input_schema_name(t, update));
    let refs: Vec<Value> = SourceType::ALL
        .into_iter()
        .map(|t| serde_json::json!({"$ref": reference(t)}))
        .collect();
    let mapping: Map<String, Value> = SourceType::ALL
        .into_iter()
        .map(|t| (t.as_str().to_owned(), reference(t).into()))
        .collect();
    let description = if update {
        "The new state of a source: one schema per type, chosen by `type`. A secret field left \
         out (or blank) keeps its stored value when the type stays the same; with a new type \
         every required secret must be given (422 otherwise)."
    } else {
        "A source to create: one schema per type, chosen by `type`. Secret fields are \
         write-only: encrypted at rest and never shown again."
    };
    serde_json::from_value(serde_json::json!({
        "description": description,
        "oneOf": refs,
        "discriminator": {"propertyName": "type", "mapping": mapping},
    }))
    .expect("a valid schema")
}

/// The per-type schemas behind [`one_of`].
fn per_type(
    update: bool,
    schemas: &mut Vec<(
        String,
        utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
    )>,
) {
    for source_type in SourceType::ALL {
        schemas.push((
            input_schema_name(source_type, update),
            serde_json::from_value(input_schema(source_type, update)).expect("a valid schema"),
        ));
    }
}

impl utoipa::PartialSchema for SourceInput {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        one_of(false)
    }
}

impl ToSchema for SourceInput {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        per_type(false, schemas);
    }
}

impl utoipa::PartialSchema for SourceUpdate {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        one_of(true)
    }
}

impl ToSchema for SourceUpdate {
    fn schemas(
        schemas: &mut Vec<(
            String,
            utoipa::openapi::RefOr<utoipa::openapi::schema::Schema>,
        )>,
    ) {
        per_type(true, schemas);
    }
}
