//! Writes the session fuzz target's seed corpus: one SMTP dialog around
//! each fixture. Used by fuzz/run.sh.
//!     cargo run --example fuzz_seeds -- FIXTURES_DIR OUT_DIR

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(fixtures), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: fuzz_seeds FIXTURES_DIR OUT_DIR");
        std::process::exit(2);
    };
    std::fs::create_dir_all(&out)?;
    for entry in std::fs::read_dir(fixtures)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "eml") {
            let seed = anonrelay::fuzz_support::session_seed(&std::fs::read(&path)?);
            let name = path
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            std::fs::write(std::path::Path::new(&out).join(name), seed)?;
        }
    }
    Ok(())
}
