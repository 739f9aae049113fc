//! What a source type states about itself: its name, its fields and the rules across them.

use serde_json::{Map, Value};

use super::{
    field::{Field, FieldProblem, ValidatedMetadata},
    rules::SourceRules,
};

/// One source type's description, written once in the type's own module.
pub struct TypeSpec {
    /// The name used in the API, the database and result ids.
    pub name: &'static str,
    /// Its fields, in documentation order.
    pub fields: &'static [Field],
    /// The field that tells one source of the type from another in a list (a mailbox, a
    /// service, a URL).
    pub identity: &'static str,
    /// Field names refused with [`Self::refused_reason`] (an `mcp` source's stdio fields).
    pub refused: &'static [&'static str],
    pub refused_reason: &'static str,
    /// Rules across fields, run once every field was checked on its own.
    pub cross_check: CrossCheck,
    /// What the schema's description adds: rules a JSON schema here does not state.
    pub schema_notes: &'static str,
}

/// Checks across fields: the input, what passed so far (may be amended), the rules, and the
/// problems found so far (to add to).
pub type CrossCheck =
    fn(&Map<String, Value>, &mut ValidatedMetadata, &SourceRules, &mut Vec<FieldProblem>);

/// No rule across fields.
pub fn no_cross_check(
    _: &Map<String, Value>,
    _: &mut ValidatedMetadata,
    _: &SourceRules,
    _: &mut Vec<FieldProblem>,
) {
}

impl TypeSpec {
    /// A type whose fields are checked one by one only.
    pub const fn plain(
        name: &'static str,
        fields: &'static [Field],
        identity: &'static str,
    ) -> Self {
        Self {
            name,
            fields,
            identity,
            refused: &[],
            refused_reason: "",
            cross_check: no_cross_check,
            schema_notes: "",
        }
    }
}
