//! The `anonrelay` binary: the command line lives in `anonrelay::cli`.

fn main() -> std::process::ExitCode {
    anonrelay::cli::main()
}
