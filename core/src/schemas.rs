//! The event schema's history and compatibility, and the event catalogue for data teams.

use apache_avro::schema::{RecordSchema, Schema, UnionSchema};
use apache_avro::schema_compatibility::SchemaCompatibility;

/// Every released version of the event schema, oldest first (`schemas/avro/history/`).
pub const HISTORY: &[(&str, &str)] = &[
    ("v1", include_str!("../../schemas/avro/history/event.v1.avsc")),
    ("v2", include_str!("../../schemas/avro/history/event.v2.avsc")),
    ("v3", include_str!("../../schemas/avro/history/event.v3.avsc")),
    ("v4", include_str!("../../schemas/avro/history/event.v4.avsc")),
    ("v5", include_str!("../../schemas/avro/history/event.v5.avsc")),
];

/// Why `new` cannot replace `old` in each direction (empty when compatible).
pub fn problems(old: &Schema, new: &Schema) -> (Option<String>, Option<String>) {
    let backward = SchemaCompatibility::can_read(old, new).err().map(|e| e.to_string());
    let forward = SchemaCompatibility::can_read(new, old).err().map(|e| e.to_string());
    (backward, forward)
}

/// Checks `candidate` against every version in `history`: errors when it is not BACKWARD
/// compatible with one of them (naming the version and the reason); returns the versions it is
/// not FORWARD compatible with as warnings.
pub fn check_against_history(candidate: &str, history: &[(&str, &str)]) -> Result<Vec<String>, String> {
    let new = Schema::parse_str(candidate).map_err(|e| format!("the schema does not parse: {e}"))?;
    let mut warnings = Vec::new();
    for (name, text) in history {
        let old = Schema::parse_str(text).map_err(|e| format!("history {name} does not parse: {e}"))?;
        let (backward, forward) = problems(&old, &new);
        if let Some(b) = backward {
            return Err(format!(
                "not backward compatible with {name}: readers of this schema cannot read {name} data: {b}"
            ));
        }
        if let Some(f) = forward {
            warnings.push(format!(
                "not forward compatible with {name} (consumers still on {name} cannot read new data): {f}"
            ));
        }
    }
    Ok(warnings)
}

fn type_name(s: &Schema) -> String {
    match s {
        Schema::Null => "null".into(),
        Schema::Boolean => "boolean".into(),
        Schema::Int => "int".into(),
        Schema::Long => "long".into(),
        Schema::String => "string".into(),
        Schema::TimestampMillis => "timestamp-millis".into(),
        Schema::Array(a) => format!("array<{}>", type_name(&a.items)),
        Schema::Union(u) => u.variants().iter().map(type_name).collect::<Vec<_>>().join(" or "),
        Schema::Record(r) => r.name.name().to_string(),
        other => format!("{other:?}").split('(').next().unwrap_or("?").to_lowercase(),
    }
}

fn fields_table(r: &RecordSchema) -> String {
    let mut out = String::from("| field | type | notes |\n|---|---|---|\n");
    for f in &r.fields {
        out += &format!("| `{}` | {} | {} |\n", f.name, type_name(&f.schema), f.doc.clone().unwrap_or_default());
    }
    out
}

/// A Markdown catalogue of the events (the envelope and each payload), generated from the schema.
pub fn catalogue(schema_text: &str) -> String {
    let schema = Schema::parse_str(schema_text).expect("valid schema");
    let Schema::Record(envelope) = &schema else { return String::new() };
    let mut out = format!("**Envelope `{}`**: {}\n\n", envelope.name.name(), envelope.doc.clone().unwrap_or_default());
    out += &fields_table(envelope);
    let payload = envelope.fields.iter().find(|f| f.name == "payload").map(|f| f.schema.clone());
    if let Some(Schema::Union(u)) = payload {
        let u: UnionSchema = u;
        out += "\n**Payloads** (the `payload` union, in branch order):\n";
        for (i, v) in u.variants().iter().enumerate() {
            if let Schema::Record(r) = v {
                out += &format!("\n{}. `{}`\n\n{}", i, r.name.name(), fields_table(r));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::avro::{event_schema, to_value, EVENT_SCHEMA};
    use crate::event::{Event, Payload};

    #[test]
    fn the_current_schema_is_compatible_with_every_released_version() {
        let warnings = check_against_history(EVENT_SCHEMA, HISTORY).unwrap_or_else(|e| panic!("{e}"));
        // v2 appended payload branches: v1 readers cannot read those events (known, and why
        // data teams upgrade their reader schema); everything else must be fully compatible
        assert!(warnings.iter().all(|w| w.contains("with v1")), "{warnings:?}");
    }

    #[test]
    fn a_breaking_change_is_refused_naming_the_field() {
        let mut v: serde_json::Value = serde_json::from_str(EVENT_SCHEMA).unwrap();
        v["fields"].as_array_mut().unwrap().push(serde_json::json!({"name": "tenant_region", "type": "string"}));
        let err = check_against_history(&v.to_string(), HISTORY).unwrap_err();
        assert!(err.contains("tenant_region") && err.contains("v1"), "{err}");
    }

    #[test]
    #[allow(deprecated)]
    fn old_and_new_readers_read_each_others_events() {
        // an evolved schema: a new optional field, as a compatible change would add it
        let mut v: serde_json::Value = serde_json::from_str(EVENT_SCHEMA).unwrap();
        v["fields"]
            .as_array_mut()
            .unwrap()
            .push(serde_json::json!({"name": "client", "type": ["null", "string"], "default": null}));
        let newer = Schema::parse_str(&v.to_string()).unwrap();
        let older = event_schema();
        assert!(check_against_history(&v.to_string(), HISTORY).unwrap().is_empty());
        let e = Event {
            event_id: uuid::Uuid::new_v4(),
            workspace_id: uuid::Uuid::new_v4(),
            channel_id: uuid::Uuid::new_v4(),
            actor_id: uuid::Uuid::new_v4(),
            occurred_at: 1,
            seq: 1,
            schema_version: 1,
            payload: Payload::MemberJoined { user_id: uuid::Uuid::new_v4() },
            sealing: Default::default(),
        };
        // new consumer, old event
        let old_bytes = apache_avro::to_avro_datum(&older, to_value(&e)).unwrap();
        let read = apache_avro::from_avro_datum(&older, &mut &old_bytes[..], Some(&newer)).unwrap();
        let apache_avro::types::Value::Record(fields) = read else { panic!() };
        assert!(fields.iter().any(|(k, v)| k == "client"
            && *v == apache_avro::types::Value::Union(0, Box::new(apache_avro::types::Value::Null))));
        // old consumer, new event
        let apache_avro::types::Value::Record(mut f) = to_value(&e) else { panic!() };
        f.push((
            "client".into(),
            apache_avro::types::Value::Union(1, Box::new(apache_avro::types::Value::String("web".into()))),
        ));
        let new_bytes = apache_avro::to_avro_datum(&newer, apache_avro::types::Value::Record(f)).unwrap();
        let read = apache_avro::from_avro_datum(&newer, &mut &new_bytes[..], None).unwrap();
        assert_eq!(crate::avro::from_value_named(read, &crate::avro::payload_branches(&newer)).unwrap(), e);
    }

    #[test]
    fn the_readme_carries_the_current_event_catalogue() {
        let readme = include_str!("../../README.md");
        let cat = catalogue(EVENT_SCHEMA);
        assert!(
            readme.contains(cat.trim()),
            "README.md's event catalogue is stale: regenerate it with `confab schemas catalogue`"
        );
    }
}
