//! Names people give things and others read (channels, workspaces, users, files, emoji): they
//! must look like what they are. Refused: control characters, characters that render as
//! nothing (zero-width spaces and joiners, invisible fillers, tag characters), bidirectional
//! overrides and isolates (`invoice<U+202E>fdp.exe` shows as `invoiceexe.pdf`), line and
//! paragraph separators, and leading or trailing whitespace. Look-alike letters from other
//! scripts are allowed: telling `paypal` from `pаypal` needs a confusables table, not a rule.

/// Whether `c` may not appear in a name: control, invisible, or direction-changing.
pub fn is_hidden_or_control(c: char) -> bool {
    c.is_control()
        || matches!(
            c as u32,
            0x00AD                  // soft hyphen
            | 0x034F                // combining grapheme joiner
            | 0x061C                // Arabic letter mark
            | 0x115F | 0x1160       // Hangul choseong/jungseong fillers
            | 0x17B4 | 0x17B5       // Khmer inherent vowels (invisible)
            | 0x180B..=0x180F       // Mongolian variation selectors and vowel separator
            | 0x200B..=0x200F       // zero-width space, non-joiner, joiner; LRM, RLM
            | 0x2028 | 0x2029       // line and paragraph separators
            | 0x202A..=0x202E       // bidi embeddings and overrides
            | 0x2060..=0x2064       // word joiner, invisible operators
            | 0x2066..=0x206F       // bidi isolates, deprecated format characters
            | 0x3164 | 0xFFA0       // Hangul fillers
            | 0xFEFF                // zero-width no-break space (BOM)
            | 0xFFF9..=0xFFFB       // interlinear annotation
            | 0x1D173..=0x1D17A     // musical formatting
            | 0xE0000..=0xE007F // tag characters
        )
}

/// Checks a name: 1 to `max_chars` characters, none hidden or control, no whitespace at
/// either end. `what` names it in the error ("channel name").
pub fn validate_name(what: &str, name: &str, max_chars: usize) -> Result<(), String> {
    let chars = name.chars().count();
    if name.trim().is_empty() || chars > max_chars {
        return Err(format!("{what} must be 1..={max_chars} characters"));
    }
    if let Some(c) = name.chars().find(|c| is_hidden_or_control(*c)) {
        return Err(format!("{what} must not contain invisible, control or direction characters (U+{:04X})", c as u32));
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return Err(format!("{what} must not start or end with whitespace"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_names_in_any_script_pass() {
        for name in ["general", "design-team", "Équipe ventes", "営業チーム", "فريق", "🚀 launch", "a b"] {
            assert_eq!(validate_name("name", name, 80), Ok(()), "{name}");
        }
    }

    #[test]
    fn hidden_control_and_direction_characters_are_refused() {
        for name in [
            "general\u{200B}",        // zero-width space: two channels that look the same
            "gen\u{200D}eral",        // zero-width joiner
            "invoice\u{202E}fdp.exe", // right-to-left override
            "a\u{2066}b\u{2069}",     // isolates
            "\u{FEFF}general",        // BOM
            "tab\there",              // control
            "line\u{2028}break",      // line separator
            "\u{3164}",               // a filler that renders blank
            "x\u{E0041}",             // tag character
            "soft\u{00AD}hyphen",
        ] {
            let err = validate_name("channel name", name, 80).unwrap_err();
            assert!(err.contains("invisible") || err.contains("1..="), "{name:?}: {err}");
        }
    }

    #[test]
    fn blank_too_long_and_padded_names_are_refused() {
        assert!(validate_name("name", "", 80).is_err());
        assert!(validate_name("name", "   ", 80).is_err());
        assert!(validate_name("name", &"x".repeat(81), 80).is_err());
        assert!(validate_name("name", &"é".repeat(80), 80).is_ok(), "characters, not bytes");
        assert!(validate_name("name", " general", 80).unwrap_err().contains("whitespace"));
        assert!(validate_name("name", "general\u{00A0}", 80).unwrap_err().contains("whitespace"));
    }
}
