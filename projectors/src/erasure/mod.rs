//! Erasure projector: owns the destruction of data keys (crypto-shredding, see
//! `confab_core::sealing`). Each committed event lists the keys it destroys (an edit: the
//! previous text's; a delete: the message's), and this projector destroys them in the key store
//! through the [`Keyring`](confab_core::keyring::Keyring), after which that text is unreadable
//! in every copy of the log. Destroying a key twice changes nothing, so it is at-least-once
//! like every projection, and a crash between an event's commit and its keys' destruction only
//! delays the destruction until the projector reads the event again. Keys also expire with their
//! workspace's retention (the key store's TTL); where the store does not remove expired bytes by
//! itself (the embedded one) this projector sweeps them every 10 s.

mod apply;

pub use apply::ErasureProjection;
