//! Defaults of `relay.toml` keys, named for serde's `default = "…"`.

use std::path::PathBuf;

pub fn max_message_bytes() -> usize {
    25 * 1024 * 1024
}
pub fn max_line_length() -> usize {
    2048
}
pub fn max_connections() -> usize {
    512
}
pub fn max_errors() -> u32 {
    10
}
pub fn command_timeout_secs() -> u64 {
    300
}
pub fn data_timeout_secs() -> u64 {
    180
}
pub fn hook_max_connections() -> usize {
    64
}
pub fn idle_timeout_secs() -> u64 {
    60
}
/// 25 MiB at 45 KB/s.
pub fn max_data_secs() -> u64 {
    600
}
pub fn session_timeout_secs() -> u64 {
    1800
}
pub fn max_header_bytes() -> usize {
    102_400
}
/// Far above what a sending MTA puts on one connection: Postfix
/// reuses a connection for as long as it has mail for us (up to
/// `smtp_connection_reuse_time_limit`, 300 s), and a 421 to its next
/// MAIL would defer that message to the next queue run.
pub fn max_transactions_per_connection() -> u32 {
    10_000
}
pub fn max_connections_per_client() -> u32 {
    20
}
pub fn max_messages_per_client_per_minute() -> u32 {
    60
}
pub fn max_failed_rcpts_per_client_per_hour() -> u32 {
    30
}
pub fn max_messages_per_alias_per_hour() -> u32 {
    120
}
pub fn max_buffered_bytes() -> usize {
    512 * 1024 * 1024
}
pub fn shutdown_grace_secs() -> u64 {
    30
}
pub fn upstream_timeout_secs() -> u64 {
    60
}
pub fn upstream_pool_size() -> usize {
    8
}
pub fn hook_max_body_bytes() -> usize {
    1024 * 1024
}
pub fn store_path() -> PathBuf {
    PathBuf::from("anonrelay.db")
}
