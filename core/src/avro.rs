//! Avro encoding of [`Event`]s in the Confluent wire format: magic byte 0, the 4-byte big-endian
//! schema id from the registry, then the Avro binary datum. Any Confluent-compatible deserializer
//! reads these records.

use apache_avro::reader::datum::GenericDatumReader;
use apache_avro::types::Value;
use apache_avro::writer::datum::GenericDatumWriter;
use apache_avro::Schema;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, RwLock};
use uuid::Uuid;

use crate::event::{ChannelKind, Event, Payload, Sealing, ThreadState};
use crate::files::Attachment;
use crate::ports::{PortError, PortErrorKind, SchemaSource};
use crate::sealing::{SealedBox, SealedField};

/// The event schema this build writes.
pub const EVENT_SCHEMA: &str = include_str!("../../schemas/avro/event.avsc");
pub const SCHEMA_VERSION: i32 = 6;

#[derive(Debug, thiserror::Error)]
pub enum AvroError {
    #[error("schema registry: {0}")]
    Registry(PortError),
    #[error("avro: {0}")]
    Avro(#[from] apache_avro::Error),
    #[error("record is not in the Confluent wire format")]
    NotFramed,
    #[error("event field `{0}` is missing or has the wrong type")]
    Field(&'static str),
}

/// A record that cannot be encoded or decoded is invalid (the same bytes fail the same way); a
/// registry that could not answer keeps its own kind (a transient outage is retried).
impl From<AvroError> for PortError {
    fn from(e: AvroError) -> Self {
        match e {
            AvroError::Registry(p) => PortError::new(p.kind(), format!("schema registry: {}", p.message())),
            other => PortError::new(PortErrorKind::Invalid, other),
        }
    }
}

pub fn event_schema() -> Schema {
    Schema::parse_str(EVENT_SCHEMA).expect("schemas/avro/event.avsc is valid Avro")
}

/// The subject under which the events topic's value schema is registered (TopicNameStrategy).
pub fn value_subject(topic: &str) -> String {
    format!("{topic}-value")
}

/// Encodes events with the schema registered for the events topic, and decodes any registered
/// writer schema into this build's reader schema.
///
/// apache-avro resolves a schema's names each time a reader or writer is built, which costs
/// more than the datum itself; the codec builds one writer, and one reader per writer schema,
/// and keeps them (they borrow schemas kept for the process's lifetime, see [`kept_schema`]).
#[derive(Clone)]
pub struct EventCodec {
    schema_id: u32,
    source: Arc<dyn SchemaSource>,
    writer: Arc<GenericDatumWriter<'static>>,
    readers: Arc<RwLock<HashMap<u32, Arc<Reader>>>>,
}

/// A writer schema ready to decode with: its datum reader and its payload branches' names.
struct Reader {
    datum: GenericDatumReader<'static>,
    branches: Vec<String>,
}

impl Reader {
    fn new(schema: &'static Schema) -> Result<Self, AvroError> {
        Ok(Self { datum: GenericDatumReader::builder(schema).build()?, branches: payload_branches(schema) })
    }
}

/// The schema parsed from `text`, parsed once per process and kept for its lifetime (so cached
/// readers and writers may borrow it). Bounded by the distinct schema texts a process meets:
/// this build's and the registry's versions of the event schema.
fn kept_schema(text: &str) -> Result<&'static Schema, AvroError> {
    static KEPT: LazyLock<Mutex<HashMap<String, &'static Schema>>> = LazyLock::new(Default::default);
    let mut kept = KEPT.lock().expect("schema cache lock");
    if let Some(s) = kept.get(text) {
        return Ok(s);
    }
    let schema: &'static Schema = Box::leak(Box::new(Schema::parse_str(text)?));
    kept.insert(text.to_string(), schema);
    Ok(schema)
}

impl EventCodec {
    /// Registers (or finds) this build's schema under `<topic>-value` in `source`.
    pub async fn register_with(source: Arc<dyn SchemaSource>, topic: &str) -> Result<Self, AvroError> {
        let id = source.register(&value_subject(topic), EVENT_SCHEMA).await.map_err(AvroError::Registry)?;
        let schema = kept_schema(EVENT_SCHEMA)?;
        let writer = Arc::new(GenericDatumWriter::builder(schema).build()?);
        let mut readers = HashMap::new();
        readers.insert(id, Arc::new(Reader::new(schema)?));
        Ok(Self { schema_id: id, source, writer, readers: Arc::new(RwLock::new(readers)) })
    }

    pub fn schema_id(&self) -> u32 {
        self.schema_id
    }

    pub fn encode(&self, event: &Event) -> Result<Vec<u8>, AvroError> {
        let mut out = Vec::with_capacity(256);
        out.push(0u8);
        out.extend_from_slice(&self.schema_id.to_be_bytes());
        self.writer.write_value(&mut out, to_value(event))?;
        Ok(out)
    }

    pub async fn decode(&self, bytes: &[u8]) -> Result<Event, AvroError> {
        if bytes.len() < 5 || bytes[0] != 0 {
            return Err(AvroError::NotFramed);
        }
        let id = u32::from_be_bytes([bytes[1], bytes[2], bytes[3], bytes[4]]);
        let reader = self.reader(id).await?;
        let mut body = &bytes[5..];
        // decode with the writer's schema and resolve by name: apache-avro's reader-schema
        // resolution matches union branches structurally, and a record with more fields also
        // "matches" a branch with fewer (a ReactionChanged would read as a MessageDeleted)
        let value = reader.datum.read_value(&mut body)?;
        from_value_named(value, &reader.branches)
    }

    async fn reader(&self, id: u32) -> Result<Arc<Reader>, AvroError> {
        if let Some(r) = self.readers.read().expect("codec lock").get(&id) {
            return Ok(r.clone());
        }
        let text = self.source.schema(id).await.map_err(AvroError::Registry)?;
        let reader = Arc::new(Reader::new(kept_schema(&text)?)?);
        self.readers.write().expect("codec lock").insert(id, reader.clone());
        Ok(reader)
    }
}

fn s(v: impl ToString) -> Value {
    Value::String(v.to_string())
}

fn opt_uuid(v: &Option<Uuid>) -> Value {
    match v {
        None => Value::Union(0, Box::new(Value::Null)),
        Some(t) => Value::Union(1, Box::new(s(t))),
    }
}

pub fn to_value(e: &Event) -> Value {
    let record =
        |fields: Vec<(&str, Value)>| Value::Record(fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect());
    let (index, payload) = match &e.payload {
        Payload::MessagePosted { message_id, client_msg_id, text, thread_ts, also_in_channel, thread, attachments } => {
            (
                0,
                record(vec![
                    ("message_id", s(message_id)),
                    ("client_msg_id", s(client_msg_id)),
                    ("text", s(text)),
                    ("thread_ts", opt_uuid(thread_ts)),
                    ("also_in_channel", Value::Boolean(*also_in_channel)),
                    (
                        "thread",
                        match thread {
                            None => Value::Union(0, Box::new(Value::Null)),
                            Some(t) => Value::Union(
                                1,
                                Box::new(record(vec![
                                    ("reply_count", Value::Int(t.reply_count)),
                                    ("reply_users", Value::Array(t.reply_users.iter().map(s).collect())),
                                ])),
                            ),
                        },
                    ),
                    ("attachments", Value::Array(attachments.iter().map(attachment).collect())),
                ]),
            )
        }
        Payload::ChannelCreated { name, kind, members } => (
            1,
            record(vec![
                ("name", s(name)),
                ("is_private", Value::Boolean(kind.is_private())),
                ("members", Value::Array(members.iter().map(s).collect())),
                ("kind", s(kind.as_str())),
            ]),
        ),
        Payload::MemberJoined { user_id } => (2, record(vec![("user_id", s(user_id))])),
        Payload::MessageEdited { message_id, text } => {
            (3, record(vec![("message_id", s(message_id)), ("text", s(text))]))
        }
        Payload::MessageDeleted { message_id, file_ids } => (
            4,
            record(vec![("message_id", s(message_id)), ("file_ids", Value::Array(file_ids.iter().map(s).collect()))]),
        ),
        Payload::ReactionChanged { message_id, emoji, added, users } => (
            5,
            record(vec![
                ("message_id", s(message_id)),
                ("emoji", s(emoji)),
                ("added", Value::Boolean(*added)),
                ("users", Value::Array(users.iter().map(s).collect())),
            ]),
        ),
        Payload::MemberLeft { user_id } => (6, record(vec![("user_id", s(user_id))])),
        Payload::ChannelRenamed { name } => (7, record(vec![("name", s(name))])),
        Payload::ChannelArchived { archived } => (8, record(vec![("archived", Value::Boolean(*archived))])),
        Payload::MessagePinned { message_id, pinned } => {
            (9, record(vec![("message_id", s(message_id)), ("pinned", Value::Boolean(*pinned))]))
        }
        // the record's `channel_id` is the actor's own stream; the channel read is in the payload
        Payload::ReadMarked { read_seq } => {
            (10, record(vec![("channel_id", s(e.channel_id)), ("seq", Value::Long(*read_seq))]))
        }
        Payload::FileShared { file } => (11, record(vec![("file", attachment(file))])),
        Payload::FileDeleted { file_id } => (12, record(vec![("file_id", s(file_id))])),
        Payload::AdminActed { action, subject_id, details } => (
            13,
            record(vec![
                ("action", s(action)),
                ("subject_id", opt_uuid(subject_id)),
                ("details", Value::Map(details.iter().map(|(k, v)| (k.clone(), s(v))).collect())),
            ]),
        ),
    };
    Value::Record(vec![
        ("event_id".into(), s(e.event_id)),
        ("workspace_id".into(), s(e.workspace_id)),
        ("channel_id".into(), s(e.stream_id())),
        ("actor_id".into(), s(e.actor_id)),
        ("occurred_at".into(), Value::TimestampMillis(e.occurred_at)),
        ("seq".into(), Value::Long(e.seq)),
        ("schema_version".into(), Value::Int(e.schema_version)),
        ("payload".into(), Value::Union(index, Box::new(payload))),
        ("sealed".into(), Value::Array(e.sealing.boxes.iter().map(sealed_box).collect())),
        ("destroys_keys".into(), Value::Array(e.sealing.destroys_keys.iter().map(s).collect())),
    ])
}

fn sealed_box(b: &SealedBox) -> Value {
    Value::Record(vec![
        ("key_id".into(), s(b.key_id)),
        ("field".into(), s(b.field.label())),
        ("nonce".into(), Value::Bytes(b.nonce.clone())),
        ("ciphertext".into(), Value::Bytes(b.ciphertext.clone())),
    ])
}

fn sealed_box_of(v: Value) -> Result<SealedBox, AvroError> {
    let mut b = Fields::of(v, "sealed")?;
    let bytes = |v: Value| match v {
        Value::Bytes(b) => Ok(b),
        _ => Err(AvroError::Field("sealed")),
    };
    Ok(SealedBox {
        key_id: b.uuid("key_id")?,
        field: SealedField::parse(&b.string("field")?).ok_or(AvroError::Field("sealed"))?,
        nonce: bytes(b.take("nonce")?)?,
        ciphertext: bytes(b.take("ciphertext")?)?,
    })
}

/// The v5 sealing fields (empty when the writer is older).
fn sealing_of(f: &mut Fields) -> Result<Sealing, AvroError> {
    Ok(Sealing {
        boxes: array_or_empty(f.take("sealed")).into_iter().map(sealed_box_of).collect::<Result<_, _>>()?,
        redacted: Vec::new(),
        destroys_keys: uuids(Value::Array(array_or_empty(f.take("destroys_keys"))), "destroys_keys")?,
    })
}

fn attachment(a: &Attachment) -> Value {
    Value::Record(vec![
        ("file_id".into(), s(a.file_id)),
        ("name".into(), s(&a.name)),
        ("size".into(), Value::Long(a.size)),
        ("content_type".into(), s(&a.content_type)),
    ])
}

fn attachment_of(v: Value) -> Result<Attachment, AvroError> {
    let mut a = Fields::of(v, "attachment")?;
    Ok(Attachment {
        file_id: a.uuid("file_id")?,
        name: a.string("name")?,
        size: a.long("size")?,
        content_type: a.string("content_type")?,
    })
}

/// An array field added in a later version: empty when the writer is older.
fn array_or_empty(v: Result<Value, AvroError>) -> Vec<Value> {
    match v {
        Ok(Value::Array(items)) => items,
        _ => Vec::new(),
    }
}

struct Fields(HashMap<String, Value>);

impl Fields {
    fn of(v: Value, what: &'static str) -> Result<Self, AvroError> {
        match v {
            Value::Record(f) => Ok(Fields(f.into_iter().collect())),
            _ => Err(AvroError::Field(what)),
        }
    }
    fn take(&mut self, name: &'static str) -> Result<Value, AvroError> {
        let v = self.0.remove(name).ok_or(AvroError::Field(name))?;
        Ok(match v {
            Value::Union(_, inner) => *inner,
            other => other,
        })
    }
    fn string(&mut self, name: &'static str) -> Result<String, AvroError> {
        match self.take(name)? {
            Value::String(s) => Ok(s),
            _ => Err(AvroError::Field(name)),
        }
    }
    fn uuid(&mut self, name: &'static str) -> Result<Uuid, AvroError> {
        self.string(name)?.parse().map_err(|_| AvroError::Field(name))
    }
    fn long(&mut self, name: &'static str) -> Result<i64, AvroError> {
        match self.take(name)? {
            Value::Long(n) | Value::TimestampMillis(n) => Ok(n),
            Value::Int(n) => Ok(n as i64),
            _ => Err(AvroError::Field(name)),
        }
    }
}

fn uuids(v: Value, field: &'static str) -> Result<Vec<Uuid>, AvroError> {
    match v {
        Value::Array(items) => items
            .into_iter()
            .map(|i| match i {
                Value::String(s) => s.parse().map_err(|_| AvroError::Field(field)),
                _ => Err(AvroError::Field(field)),
            })
            .collect(),
        _ => Err(AvroError::Field(field)),
    }
}

/// The record names of the `payload` union's branches, in the schema's order.
pub fn payload_branches(schema: &Schema) -> Vec<String> {
    let Schema::Record(r) = schema else { return vec![] };
    match r.fields.iter().find(|f| f.name == "payload").map(|f| &f.schema) {
        Some(Schema::Union(u)) => u
            .variants()
            .iter()
            .map(|v| match v {
                Schema::Record(r) => r.name.name().to_string(),
                _ => String::new(),
            })
            .collect(),
        _ => vec![],
    }
}

/// Decodes a record written with this build's schema.
pub fn from_value(v: Value) -> Result<Event, AvroError> {
    from_value_named(v, &payload_branches(&event_schema()))
}

/// Decodes a record written with a schema whose payload branches are named `branches`:
/// the payload is dispatched on the branch's record name, fields are taken by name.
pub fn from_value_named(v: Value, branches: &[String]) -> Result<Event, AvroError> {
    let mut f = Fields::of(v, "event")?;
    let (branch, payload) = match f.0.remove("payload").ok_or(AvroError::Field("payload"))? {
        Value::Union(i, inner) => (i, *inner),
        _ => return Err(AvroError::Field("payload")),
    };
    let name = branches.get(branch as usize).map(String::as_str).unwrap_or("");
    let mut p = Fields::of(payload, "payload")?;
    // a read marker's record names the reader's stream; the channel read is in its payload
    let read_channel = if name == "ReadMarked" { Some(p.uuid("channel_id")?) } else { None };
    let payload = payload_of(name, p)?;
    Ok(Event {
        event_id: f.uuid("event_id")?,
        workspace_id: f.uuid("workspace_id")?,
        channel_id: match read_channel {
            Some(channel) => channel,
            None => f.uuid("channel_id")?,
        },
        actor_id: f.uuid("actor_id")?,
        occurred_at: f.long("occurred_at")?,
        seq: f.long("seq")?,
        schema_version: f.long("schema_version").unwrap_or(1) as i32,
        sealing: sealing_of(&mut f)?,
        payload,
    })
}

/// The payload of branch `name`.
fn payload_of(name: &str, mut p: Fields) -> Result<Payload, AvroError> {
    Ok(match name {
        "MessagePosted" => message_posted(p)?,
        "ChannelCreated" => {
            let members = uuids(p.take("members")?, "members")?;
            let is_private = matches!(p.take("is_private")?, Value::Boolean(true));
            let kind = match p.take("kind") {
                Ok(Value::String(k)) => ChannelKind::parse(&k).ok_or(AvroError::Field("kind"))?,
                _ if is_private => ChannelKind::Private,
                _ => ChannelKind::Public,
            };
            Payload::ChannelCreated { name: p.string("name")?, kind, members }
        }
        "MemberJoined" => Payload::MemberJoined { user_id: p.uuid("user_id")? },
        "MessageEdited" => Payload::MessageEdited { message_id: p.uuid("message_id")?, text: p.string("text")? },
        "MessageDeleted" => {
            let file_ids = uuids(Value::Array(array_or_empty(p.take("file_ids"))), "file_ids")?;
            Payload::MessageDeleted { message_id: p.uuid("message_id")?, file_ids }
        }
        "ReactionChanged" => Payload::ReactionChanged {
            message_id: p.uuid("message_id")?,
            emoji: p.string("emoji")?,
            added: matches!(p.take("added")?, Value::Boolean(true)),
            users: uuids(p.take("users")?, "users")?,
        },
        "MemberLeft" => Payload::MemberLeft { user_id: p.uuid("user_id")? },
        "ChannelRenamed" => Payload::ChannelRenamed { name: p.string("name")? },
        "ChannelArchived" => Payload::ChannelArchived { archived: matches!(p.take("archived")?, Value::Boolean(true)) },
        "MessagePinned" => Payload::MessagePinned {
            message_id: p.uuid("message_id")?,
            pinned: matches!(p.take("pinned")?, Value::Boolean(true)),
        },
        "ReadMarked" => Payload::ReadMarked { read_seq: p.long("seq")? },
        "FileShared" => Payload::FileShared { file: attachment_of(p.take("file")?)? },
        "FileDeleted" => Payload::FileDeleted { file_id: p.uuid("file_id")? },
        "AdminActed" => admin_acted(p)?,
        // a branch this build does not know (a newer writer): say so rather than guess
        _ => return Err(AvroError::Field("payload")),
    })
}

/// An `AdminActed` payload (v6).
fn admin_acted(mut p: Fields) -> Result<Payload, AvroError> {
    let subject_id = match p.take("subject_id")? {
        Value::Null => None,
        Value::String(id) => Some(id.parse().map_err(|_| AvroError::Field("subject_id"))?),
        _ => return Err(AvroError::Field("subject_id")),
    };
    let details = match p.take("details")? {
        Value::Map(m) => m
            .into_iter()
            .map(|(k, v)| match v {
                Value::String(v) => Ok((k, v)),
                _ => Err(AvroError::Field("details")),
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(AvroError::Field("details")),
    };
    Ok(Payload::AdminActed { action: p.string("action")?, subject_id, details })
}

/// A `MessagePosted` payload; fields added in v3 default when the writer is older.
fn message_posted(mut p: Fields) -> Result<Payload, AvroError> {
    let thread_ts = match p.take("thread_ts")? {
        Value::Null => None,
        Value::String(t) => Some(t.parse().map_err(|_| AvroError::Field("thread_ts"))?),
        _ => return Err(AvroError::Field("thread_ts")),
    };
    let also_in_channel = matches!(p.take("also_in_channel"), Ok(Value::Boolean(true)));
    let thread = match p.take("thread") {
        Ok(v @ Value::Record(_)) => {
            let mut t = Fields::of(v, "thread")?;
            Some(ThreadState {
                reply_count: t.long("reply_count")? as i32,
                reply_users: uuids(t.take("reply_users")?, "reply_users")?,
            })
        }
        _ => None,
    };
    let attachments = array_or_empty(p.take("attachments")).into_iter().map(attachment_of).collect::<Result<_, _>>()?;
    Ok(Payload::MessagePosted {
        message_id: p.uuid("message_id")?,
        client_msg_id: p.string("client_msg_id")?,
        text: p.string("text")?,
        thread_ts,
        also_in_channel,
        thread,
        attachments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ports::PortResult;

    fn sample(payload: Payload) -> Event {
        Event {
            event_id: Uuid::new_v4(),
            workspace_id: Uuid::new_v4(),
            channel_id: Uuid::new_v4(),
            actor_id: Uuid::new_v4(),
            occurred_at: 1_700_000_000_123,
            seq: 7,
            schema_version: SCHEMA_VERSION,
            payload,
            sealing: Default::default(),
        }
    }

    #[test]
    #[allow(deprecated)]
    fn every_payload_round_trips_through_avro_binary() {
        let schema = event_schema();
        for p in [
            Payload::MessagePosted {
                message_id: crate::ids::TimeUuidGen::new().next(0),
                client_msg_id: "c-1".into(),
                text: "héllo <@U1>".into(),
                thread_ts: Some(Uuid::new_v4()),
                also_in_channel: true,
                thread: Some(ThreadState { reply_count: 3, reply_users: vec![Uuid::new_v4(), Uuid::new_v4()] }),
                attachments: vec![],
            },
            Payload::MessagePosted {
                message_id: Uuid::new_v4(),
                client_msg_id: "c".into(),
                text: "x".into(),
                thread_ts: None,
                also_in_channel: false,
                thread: None,
                attachments: vec![Attachment {
                    file_id: Uuid::new_v4(),
                    name: "a.png".into(),
                    size: 12,
                    content_type: "image/png".into(),
                }],
            },
            Payload::FileShared {
                file: Attachment {
                    file_id: Uuid::new_v4(),
                    name: "ré sumé.pdf".into(),
                    size: 1 << 33,
                    content_type: "application/pdf".into(),
                },
            },
            Payload::FileDeleted { file_id: Uuid::new_v4() },
            Payload::MessageDeleted { message_id: Uuid::new_v4(), file_ids: vec![Uuid::new_v4()] },
            Payload::ChannelCreated {
                name: "general".into(),
                kind: ChannelKind::Private,
                members: vec![Uuid::new_v4(), Uuid::new_v4()],
            },
            Payload::ChannelCreated {
                name: "dm".into(),
                kind: ChannelKind::Dm,
                members: vec![Uuid::new_v4(), Uuid::new_v4()],
            },
            Payload::MemberLeft { user_id: Uuid::new_v4() },
            Payload::ChannelRenamed { name: "renamed".into() },
            Payload::ChannelArchived { archived: true },
            Payload::MessagePinned { message_id: Uuid::new_v4(), pinned: true },
            Payload::ReadMarked { read_seq: 42 },
            Payload::MemberJoined { user_id: Uuid::new_v4() },
            Payload::MessageEdited { message_id: Uuid::new_v4(), text: "fixed".into() },
            Payload::MessageDeleted { message_id: Uuid::new_v4(), file_ids: vec![] },
            Payload::ReactionChanged {
                message_id: Uuid::new_v4(),
                emoji: "tada".into(),
                added: true,
                users: vec![Uuid::new_v4()],
            },
            Payload::AdminActed {
                action: "retention_changed".into(),
                subject_id: None,
                details: [("retention_secs".to_string(), "86400".to_string())].into_iter().collect(),
            },
            Payload::AdminActed {
                action: "user_deactivated".into(),
                subject_id: Some(Uuid::new_v4()),
                details: Default::default(),
            },
        ] {
            let e = sample(p);
            let bytes = apache_avro::to_avro_datum(&schema, to_value(&e)).unwrap();
            let back = apache_avro::from_avro_datum(&schema, &mut &bytes[..], None).unwrap();
            assert_eq!(from_value(back).unwrap(), e);
        }
    }

    /// A registry in memory: this build's schema is id 7, the v3 history schema id 3.
    struct Registry;

    #[async_trait::async_trait]
    impl SchemaSource for Registry {
        async fn register(&self, _subject: &str, _schema: &str) -> PortResult<u32> {
            Ok(7)
        }
        async fn schema(&self, id: u32) -> PortResult<String> {
            match id {
                7 => Ok(EVENT_SCHEMA.to_string()),
                3 => Ok(include_str!("../../schemas/avro/history/event.v3.avsc").to_string()),
                _ => Err(PortError::not_found(format!("no schema {id}"))),
            }
        }
    }

    #[tokio::test]
    async fn the_codec_decodes_its_own_records_and_older_writers() {
        let codec = EventCodec::register_with(Arc::new(Registry), "t.events").await.unwrap();
        let e = sample(Payload::MessageDeleted { message_id: Uuid::new_v4(), file_ids: vec![Uuid::new_v4()] });
        let bytes = codec.encode(&e).unwrap();
        assert_eq!(&bytes[..5], &[0, 0, 0, 0, 7]);
        assert_eq!(codec.decode(&bytes).await.unwrap(), e);
        // the same again: the cached reader
        assert_eq!(codec.decode(&bytes).await.unwrap(), e);

        // a record written with v3, which had no file ids on a delete
        let v3 = Schema::parse_str(include_str!("../../schemas/avro/history/event.v3.avsc")).unwrap();
        let old = GenericDatumWriter::builder(&v3).validate(false).build().unwrap();
        let mut framed = vec![0, 0, 0, 0, 3];
        old.write_value(&mut framed, to_value(&e)).unwrap();
        let back = codec.decode(&framed).await.unwrap();
        assert_eq!(
            back.payload,
            Payload::MessageDeleted {
                message_id: match e.payload {
                    Payload::MessageDeleted { message_id, .. } => message_id,
                    _ => unreachable!(),
                },
                file_ids: vec![]
            }
        );

        // an unknown writer schema and a record without the frame are errors, not panics
        assert!(matches!(codec.decode(&[0, 0, 0, 0, 9, 1]).await, Err(AvroError::Registry(_))));
        assert!(matches!(codec.decode(&[1, 2]).await, Err(AvroError::NotFramed)));
    }
}
