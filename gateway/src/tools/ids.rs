//! Result ids: `<source type>:<source uuid>:<upstream id>`. Split on the first two `:` only:
//! the upstream part may contain anything (including `:`) and is case-sensitive.

use shared::model::SourceType;
use uuid::Uuid;

/// A decoded result id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultId<'a> {
    pub source_type: SourceType,
    pub source_id: Uuid,
    pub upstream: &'a str,
}

/// Builds the id of an upstream item.
pub fn encode(source_type: SourceType, source_id: Uuid, upstream: &str) -> String {
    format!("{}:{source_id}:{upstream}", source_type.as_str())
}

/// Parses an id; `None` for anything malformed (unknown type, bad uuid, empty upstream part).
pub fn decode(id: &str) -> Option<ResultId<'_>> {
    let mut parts = id.splitn(3, ':');
    let source_type = SourceType::parse(parts.next()?)?;
    let source_id = Uuid::parse_str(parts.next()?).ok()?;
    let upstream = parts.next().filter(|u| !u.is_empty())?;
    Some(ResultId {
        source_type,
        source_id,
        upstream,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_ids_round_trip_whatever_they_contain() {
        let source = Uuid::new_v4();
        for upstream in [
            "AAMkAGI2+/=",
            "aamkagi2+/=",
            "a:b:c",
            "with space",
            "ünïcødé",
            "x",
        ] {
            let id = encode(SourceType::Outlook, source, upstream);
            let decoded = decode(&id).unwrap();
            assert_eq!(
                (decoded.source_type, decoded.source_id, decoded.upstream),
                (SourceType::Outlook, source, upstream)
            );
        }
    }

    #[test]
    fn malformed_ids_are_refused() {
        let source = Uuid::new_v4();
        for bad in [
            "",
            "outlook",
            "outlook:",
            &format!("outlook:{source}"),
            &format!("outlook:{source}:"),
            &format!("gmail:{source}:x"),
            "box:not-a-uuid:x",
            &format!("OUTLOOK:{source}:x"),
        ] {
            assert!(decode(bad).is_none(), "{bad:?}");
        }
    }
}
