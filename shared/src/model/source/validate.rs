//! Checking a source's settings against its type's field table: every problem is reported,
//! secrets are split off, documented defaults filled in.

use serde_json::{Map, Value};

use super::{
    field::{FieldProblem, MAX_VALUE_LEN, ValidatedMetadata},
    rules::SourceRules,
    spec::TypeSpec,
};

/// Validates `input` for the type `spec` describes. A secret field left out keeps its value
/// from `stored_secrets` (an update that does not repeat the secret).
pub fn validate(
    spec: &TypeSpec,
    input: &Map<String, Value>,
    stored_secrets: &Map<String, Value>,
    rules: &SourceRules,
) -> Result<ValidatedMetadata, Vec<FieldProblem>> {
    let mut problems = unknown_fields(spec, input);
    let mut out = ValidatedMetadata {
        public: Map::new(),
        secrets: Map::new(),
    };
    for field in spec.fields {
        if let Some(structured) = &field.check.structured {
            match (structured.parse)(input.get(field.name)) {
                Ok(value) => {
                    out.public.insert(field.name.to_owned(), value);
                }
                Err(found) => {
                    problems.extend(found.into_iter().map(|(path, message)| FieldProblem {
                        field: format!("source_metadata.{}{path}", field.name),
                        message,
                    }));
                }
            }
            continue;
        }
        let value = match input.get(field.name) {
            Some(Value::String(s)) => Some(s.trim().to_owned()),
            Some(Value::Null) | None => None,
            Some(_) => {
                problems.push(FieldProblem::new(field.name, "must be a string"));
                continue;
            }
        };
        let value = match value {
            Some(v) if !v.is_empty() => v,
            _ if field.check.secret => match stored_secrets.get(field.name) {
                Some(stored) => {
                    out.secrets.insert(field.name.to_owned(), stored.clone());
                    continue;
                }
                None if field.required => {
                    problems.push(FieldProblem::new(field.name, "is required"));
                    continue;
                }
                None => continue,
            },
            _ => match field.default {
                Some(default) => default.to_owned(),
                None if field.required => {
                    problems.push(FieldProblem::new(field.name, "is required"));
                    continue;
                }
                None => continue,
            },
        };
        if value.len() > MAX_VALUE_LEN {
            problems.push(FieldProblem::new(
                field.name,
                format!("must be at most {MAX_VALUE_LEN} characters"),
            ));
        } else if let Err(message) = (field.check.accept)(&value, rules) {
            problems.push(FieldProblem::new(field.name, message));
        } else if field.check.secret {
            out.secrets
                .insert(field.name.to_owned(), Value::String(value));
        } else {
            out.public.insert(
                field.name.to_owned(),
                Value::String((field.check.normalise)(value)),
            );
        }
    }
    (spec.cross_check)(input, &mut out, rules, &mut problems);
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(problems)
    }
}

/// Fields the type does not have, each named (some with a reason of their own).
fn unknown_fields(spec: &TypeSpec, input: &Map<String, Value>) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    for key in input.keys() {
        if spec.refused.contains(&key.as_str()) {
            problems.push(FieldProblem::new(key, spec.refused_reason));
        } else if !spec.fields.iter().any(|f| f.name == key) {
            let known: Vec<&str> = spec.fields.iter().map(|f| f.name).collect();
            problems.push(FieldProblem::new(
                key,
                format!(
                    "is not a {} field (expected: {})",
                    spec.name,
                    known.join(", ")
                ),
            ));
        }
    }
    problems
}
