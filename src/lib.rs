//! anonrelay: an SMTP relay that lets two people email each other through
//! random aliases on an alias domain, without either learning the other's
//! real address. See DESIGN.md (beside the repository) for the promises.

pub mod cli;
pub mod config;
pub mod core;
pub mod daemon;
pub mod deliver;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod fuzz_support;
pub mod hook;
#[cfg(feature = "testing")]
#[doc(hidden)]
pub mod in_process;
pub mod logging;
pub mod metrics;
pub mod retention;
pub mod rewrite;
pub mod route;
pub mod smtp;
pub mod store;
pub mod upstream;
