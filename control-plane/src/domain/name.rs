//! Display names people give things (a server, an organization).

/// Checks a display name: trimmed, 1 to `max` characters, no control characters. `Ok(None)`
/// when it is absent and not `required`; the error is a sentence for the client.
pub fn display_name(
    raw: Option<&str>,
    max: usize,
    required: bool,
) -> Result<Option<String>, String> {
    let Some(name) = raw.map(str::trim) else {
        return if required {
            Err("is required".into())
        } else {
            Ok(None)
        };
    };
    if name.is_empty() || name.chars().count() > max {
        return Err(format!("must be 1 to {max} characters"));
    }
    if name.chars().any(char::is_control) {
        return Err("must not contain control characters".into());
    }
    Ok(Some(name.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::display_name;

    #[test]
    fn names_are_trimmed_bounded_and_free_of_control_characters() {
        assert_eq!(
            display_name(Some("  Sales "), 10, true),
            Ok(Some("Sales".into()))
        );
        assert_eq!(display_name(None, 10, false), Ok(None));
        assert_eq!(display_name(None, 10, true), Err("is required".into()));
        assert!(display_name(Some("   "), 10, false).is_err());
        assert!(display_name(Some("ééééééééééé"), 10, false).is_err());
        assert!(display_name(Some("a\u{7}b"), 10, false).is_err());
    }
}
