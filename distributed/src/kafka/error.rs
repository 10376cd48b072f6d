//! What a Kafka client error means for the caller: most are a broker, leader or coordinator
//! that is away for a while (transient: retry, as librdkafka itself does); refused credentials
//! and authorization, a fenced transactional producer and bad configuration are fatal; a record
//! the broker refuses as malformed or too large is invalid.

use confab_core::ports::{PortError, PortErrorKind};
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

pub(crate) fn kind_of(e: &KafkaError) -> PortErrorKind {
    match e {
        KafkaError::ClientConfig(..)
        | KafkaError::ClientCreation(_)
        | KafkaError::Subscription(_)
        | KafkaError::Nul(_)
        | KafkaError::MessageConsumptionFatal(_) => PortErrorKind::Fatal,
        KafkaError::Transaction(t) if t.is_fatal() => PortErrorKind::Fatal,
        _ => e.rdkafka_error_code().map(kind_of_code).unwrap_or(PortErrorKind::Transient),
    }
}

fn kind_of_code(code: RDKafkaErrorCode) -> PortErrorKind {
    use RDKafkaErrorCode as C;
    match code {
        C::Fatal
        | C::Fenced
        | C::ProducerFenced
        | C::InvalidProducerEpoch
        | C::TransactionCoordinatorFenced
        | C::FencedInstanceId
        | C::Authentication
        | C::SaslAuthenticationFailed
        | C::TopicAuthorizationFailed
        | C::GroupAuthorizationFailed
        | C::ClusterAuthorizationFailed
        | C::TransactionalIdAuthorizationFailed
        | C::InvalidConfig
        | C::UnsupportedFeature => PortErrorKind::Fatal,
        C::InvalidMessage | C::MessageSizeTooLarge | C::InvalidArgument => PortErrorKind::Invalid,
        _ => PortErrorKind::Transient,
    }
}

/// A consumer whose static membership was fenced: it could not reach its group's coordinator
/// for a whole session (the broker coordinating the group was lost, the group moved), and the
/// broker gave its identity to the member that joined since. librdkafka reports that as fatal
/// and the client is finished, but a new client with the same identity joins again: a caller
/// that can make one treats it as transient (a second live process with the same identity is
/// still stopped, by its transactional producer's fencing or by its operator).
pub(crate) fn is_fenced_static_member(e: &KafkaError) -> bool {
    e.rdkafka_error_code() == Some(RDKafkaErrorCode::FencedInstanceId)
}

/// A Kafka error as a port error, with what was being done.
pub(crate) fn port_error(what: &str, e: KafkaError) -> PortError {
    PortError::new(kind_of(&e), format!("kafka, {what}: {e}"))
}

/// `result.or_port("what was being done")?` for rdkafka results.
pub(crate) trait KafkaResultExt<T> {
    fn or_port(self, what: &str) -> Result<T, PortError>;
}

impl<T> KafkaResultExt<T> for Result<T, KafkaError> {
    fn or_port(self, what: &str) -> Result<T, PortError> {
        self.map_err(|e| port_error(what, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_broker_is_transient_and_refused_credentials_are_fatal() {
        let down = KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure);
        assert_eq!(kind_of(&down), PortErrorKind::Transient);
        assert_eq!(
            kind_of(&KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown)),
            PortErrorKind::Transient
        );
        assert_eq!(kind_of(&KafkaError::Global(RDKafkaErrorCode::SaslAuthenticationFailed)), PortErrorKind::Fatal);
        assert_eq!(kind_of(&KafkaError::MessageProduction(RDKafkaErrorCode::ProducerFenced)), PortErrorKind::Fatal);
        assert_eq!(
            kind_of(&KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)),
            PortErrorKind::Invalid
        );
        assert_eq!(kind_of(&KafkaError::ClientCreation("bad".into())), PortErrorKind::Fatal);
    }

    #[test]
    fn a_fenced_static_member_is_told_apart_from_other_fatal_errors() {
        assert!(is_fenced_static_member(&KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::FencedInstanceId)));
        assert!(!is_fenced_static_member(&KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::ProducerFenced)));
        assert!(!is_fenced_static_member(&KafkaError::Global(RDKafkaErrorCode::SaslAuthenticationFailed)));
    }
}
