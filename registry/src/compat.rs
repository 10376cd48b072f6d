//! Compatibility between Avro schemas, by Confluent's definitions:
//! BACKWARD = the new schema reads data written with the old one; FORWARD = the old schema reads
//! data written with the new one; FULL = both. `_TRANSITIVE` checks every earlier version,
//! otherwise only the latest.

use apache_avro::schema_compatibility::SchemaCompatibility;
use apache_avro::Schema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Level {
    None,
    Backward,
    BackwardTransitive,
    Forward,
    ForwardTransitive,
    Full,
    FullTransitive,
}

impl Level {
    fn transitive(self) -> bool {
        matches!(self, Level::BackwardTransitive | Level::ForwardTransitive | Level::FullTransitive)
    }
    fn backward(self) -> bool {
        matches!(self, Level::Backward | Level::BackwardTransitive | Level::Full | Level::FullTransitive)
    }
    fn forward(self) -> bool {
        matches!(self, Level::Forward | Level::ForwardTransitive | Level::Full | Level::FullTransitive)
    }
}

/// Checks `new` against `existing` (oldest first). Returns the reasons it is incompatible.
pub fn check(level: Level, new: &Schema, existing: &[Schema]) -> Vec<String> {
    let against: Vec<&Schema> =
        if level.transitive() { existing.iter().collect() } else { existing.last().into_iter().collect() };
    let mut problems = Vec::new();
    for old in against {
        if level.backward() {
            if let Err(e) = SchemaCompatibility::can_read(old, new) {
                problems.push(format!("new schema cannot read data written with an earlier schema: {e}"));
            }
        }
        if level.forward() {
            if let Err(e) = SchemaCompatibility::can_read(new, old) {
                problems.push(format!("an earlier schema cannot read data written with the new schema: {e}"));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(fields: &str) -> Schema {
        Schema::parse_str(&format!(r#"{{"type":"record","name":"R","fields":[{fields}]}}"#)).unwrap()
    }

    #[test]
    fn adding_a_field_with_default_is_full_compatible() {
        let old = rec(r#"{"name":"a","type":"string"}"#);
        let new = rec(r#"{"name":"a","type":"string"},{"name":"b","type":"int","default":0}"#);
        assert!(check(Level::Full, &new, &[old]).is_empty());
    }

    #[test]
    fn adding_a_required_field_breaks_backward_and_names_it() {
        let old = rec(r#"{"name":"a","type":"string"}"#);
        let new = rec(r#"{"name":"a","type":"string"},{"name":"extra_field","type":"int"}"#);
        let problems = check(Level::Backward, &new, std::slice::from_ref(&old));
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("extra_field"), "{problems:?}");
        assert!(check(Level::Forward, &new, &[old]).is_empty());
    }
}
