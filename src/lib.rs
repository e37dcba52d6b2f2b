//! anonrelay: an SMTP relay that lets two people email each other through
//! random aliases on an alias domain, without either learning the other's
//! real address. See DESIGN.md (beside the repository) for the promises.

pub mod bounce;
pub mod cli;
pub mod compose;
pub mod config;
pub mod core;
pub mod daemon;
pub mod dkim;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzz_support;
pub mod hook;
pub mod logging;
pub mod loop_guard;
pub mod metrics;
pub mod postmaster;
pub mod relay;
pub mod retention;
pub mod rewrite;
pub mod smtp;
pub mod store;
pub mod upstream;
pub mod verify;
