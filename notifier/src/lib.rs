//! Confab's notifier: push notifications to the devices a user registered, for
//! messages that user should hear about while offline.
//!
//! # What this crate owns
//!
//! * [`push`]: the vocabulary every provider shares: a [`DeviceAddress`] (an APNs
//!   or FCM token, or a Web Push subscription), a [`Notification`], the
//!   [`SendOutcome`] of one attempt and the [`PushProvider`] trait.
//! * [`providers`]: one client per push service, each speaking the real protocol:
//!   [`providers::apns`] (HTTP/2, ES256 provider tokens), [`providers::fcm`] (HTTP
//!   v1, OAuth2 from a service account) and [`providers::webpush`] (RFC 8030 with
//!   RFC 8291 message encryption, [`providers::ece`], and RFC 8292 VAPID).
//! * [`recipients`]: who should hear about a posted message (DMs, mentions, `@channel`,
//!   threads, preferences and mutes), as a pure function.
//! * [`fake`] (feature `test-support`): local servers that speak each provider's
//!   protocol, verify the credentials and the payload (the Web Push one decrypts
//!   it) and record every request with its arrival time.
//!
//! # How data flows
//!
//! A send is one HTTP request: the provider builds the payload from the
//! [`Notification`], attaches its credentials (minted and cached: an APNs provider
//! token for 50 minutes, an FCM access token until it expires, a VAPID token per
//! push-service origin), posts it, and turns the answer into a [`SendOutcome`]:
//! `Delivered` (remove from the outbox), `Retry` (keep, back off, honouring the
//! provider's `Retry-After`), `InvalidToken` (prune the device registration) or
//! `Rejected` (drop the message, keep the device). A provider never returns an
//! error: transport failures are `Retry`. When the provider says our credentials
//! expired, the client mints fresh ones and resends once before answering.
//!
//! * [`pipeline`]: the notifier itself: a projection of the events log that enqueues
//!   pushes for offline recipients into the outbox (`confab_core::ports::NotifyStore`), and the
//!   sender that drains the outbox through the providers.

pub mod error;
pub mod jwt;
pub mod keys;
pub mod pipeline;
pub mod providers;
pub mod push;
pub mod recipients;

#[cfg(feature = "test-support")]
pub mod fake;

pub use error::PushError;
pub use push::{DeviceAddress, Notification, Platform, Priority, ProviderSet, PushProvider, SendOutcome};
