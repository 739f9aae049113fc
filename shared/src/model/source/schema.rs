//! A type's `source_metadata` as a JSON schema (for the OpenAPI document), built from the same
//! field table validation reads.

use serde_json::{Map, Value};

use super::{field::WHITE_SPACE, rules::SourceRules, spec::TypeSpec};

/// A JSON schema of a type's `source_metadata`, stating the rules validation applies: required
/// fields, one pattern and length per field (of the value as given; the server trims white
/// space first, and an optional field that is empty, blank or null counts as left out), and no
/// other field. Lengths count characters where the server counts UTF-8 bytes (4,096 at most),
/// which agree for ASCII. With `update`, secret fields may be left out (the stored value stays
/// when the type does).
pub fn metadata_schema(spec: &TypeSpec, rules: &SourceRules, update: bool) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for field in spec.fields {
        let check = field.check;
        if let Some(structured) = &check.structured {
            if field.required {
                required.push(Value::String(field.name.to_owned()));
            }
            properties.insert(field.name.to_owned(), (structured.schema)());
            continue;
        }
        let (pattern, max_length) = (check.pattern)(rules);
        let mut schema = Map::new();
        let description = match field.default {
            Some(default) => format!("{} Default `{default}`.", check.hint),
            None => check.hint.to_owned(),
        };
        let description = if check.secret {
            format!(
                "{description} Write-only: encrypted at rest and never shown again; on \
                 update, leaving it out keeps the stored value (same type only)."
            )
        } else {
            description
        };
        schema.insert("description".to_owned(), Value::String(description));
        if check.secret {
            schema.insert("writeOnly".to_owned(), true.into());
        }
        if field.required && !(update && check.secret) {
            required.push(Value::String(field.name.to_owned()));
            schema.insert("type".to_owned(), "string".into());
            schema.insert("minLength".to_owned(), 1.into());
            schema.insert("pattern".to_owned(), format!("^(?:{pattern})$").into());
        } else {
            schema.insert("type".to_owned(), serde_json::json!(["string", "null"]));
            schema.insert(
                "pattern".to_owned(),
                format!("^(?:[{WHITE_SPACE}]*|{pattern})$").into(),
            );
        }
        schema.insert("maxLength".to_owned(), max_length.into());
        properties.insert(field.name.to_owned(), Value::Object(schema));
    }
    serde_json::json!({
        "type": "object",
        "description": format!("The settings of a {} source.{}", spec.name, spec.schema_notes),
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}
