//! Leaf types every layer uses: addresses and domains, the clock, tokens
//! and the server secret, fixed-window counters, and the memory the
//! rewrite of a message may need. Nothing here imports the rest of the
//! crate.

pub mod address;
pub mod budget;
pub mod clock;
pub mod der;
pub mod secret_file;
pub mod tokens;
pub mod window;
