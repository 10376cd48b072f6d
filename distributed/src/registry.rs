//! The schema registry port on any Confluent-compatible registry over HTTP (`confab registry`,
//! Confluent Schema Registry, Redpanda's, Apicurio's ccompat API).

use async_trait::async_trait;
use confab_core::ports::{PortError, PortErrorKind, PortResult, SchemaSource};
use schema_registry_converter::async_impl::schema_registry::{
    get_schema_by_id, perform_sr_call, post_schema, SrSettings,
};
use schema_registry_converter::error::SRCError;
use schema_registry_converter::schema_registry_common::{SchemaType, SrCall, SuppliedSchema};

pub struct HttpSchemaSource {
    settings: SrSettings,
    /// With the write key (`registry.write_key`) as a bearer token, when one is configured.
    writer: SrSettings,
}

impl HttpSchemaSource {
    pub fn new(url: &str, write_key: &str) -> PortResult<Self> {
        let url = url.trim_end_matches('/').to_string();
        let mut writer = SrSettings::new_builder(url.clone());
        if !write_key.is_empty() {
            writer.set_token_authorization(write_key);
        }
        let writer = writer.build().map_err(|e| PortError::fatal(format!("schema registry client for {url}: {e}")))?;
        Ok(Self { settings: SrSettings::new(url), writer })
    }

    /// The id `schema` has under `subject`, if it is registered there (a read: no key needed).
    async fn find(&self, subject: &str, schema: &str) -> PortResult<u32> {
        let body = serde_json::json!({ "schema": schema }).to_string();
        let found = perform_sr_call(&self.settings, SrCall::PostForVersion(subject, &body))
            .await
            .map_err(|e| port_error(&format!("looking up the schema under {subject}"), e))?;
        found.id.ok_or_else(|| PortError::invalid(format!("schema registry: no id for the schema under {subject}")))
    }
}

/// The client reports HTTP answers only in its message: a registry that cannot be reached or
/// answers 5xx is transient; 404 not found; 409 (incompatible schema) a conflict; 401 and 403
/// fatal; any other refusal invalid.
fn kind_of(e: &SRCError) -> PortErrorKind {
    let text = format!("{} {}", e.error, e.cause.as_deref().unwrap_or_default());
    let Some(status) = text.split("failed with status ").nth(1).and_then(|s| s.get(..3)) else {
        return PortErrorKind::Transient;
    };
    match status {
        "404" => PortErrorKind::NotFound,
        "409" => PortErrorKind::Conflict,
        "401" | "403" => PortErrorKind::Fatal,
        s if s.starts_with('5') => PortErrorKind::Transient,
        _ if e.retriable => PortErrorKind::Transient,
        _ => PortErrorKind::Invalid,
    }
}

fn port_error(what: &str, e: SRCError) -> PortError {
    PortError::new(kind_of(&e), format!("schema registry, {what}: {e}"))
}

#[async_trait]
impl SchemaSource for HttpSchemaSource {
    /// Finds the schema first, so that a process whose schema `confab setup` registered needs
    /// no write key; registers it (with the key) only when it is not there yet.
    async fn register(&self, subject: &str, schema: &str) -> PortResult<u32> {
        match self.find(subject, schema).await {
            Err(e) if e.kind() == PortErrorKind::NotFound => {}
            found => return found,
        }
        let supplied = SuppliedSchema::new(Some("io.confab.events.Event".into()), SchemaType::Avro, schema.to_string());
        let registered = post_schema(&self.writer, subject.to_string(), supplied)
            .await
            .map_err(|e| port_error(&format!("registering under {subject}"), e))?;
        Ok(registered.id)
    }

    async fn schema(&self, id: u32) -> PortResult<String> {
        let found = get_schema_by_id(id, &self.settings).await.map_err(|e| port_error(&format!("schema {id}"), e))?;
        Ok(found.schema)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_unreachable_registry_is_transient() {
        // a port nothing listens on
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let e = HttpSchemaSource::new(&url, "").unwrap().schema(1).await.unwrap_err();
        assert_eq!(e.kind(), PortErrorKind::Transient, "{e}");
    }
}
