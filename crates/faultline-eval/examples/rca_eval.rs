//! Runs the root-cause evaluation from the command line during development:
//! `cargo run --release -p faultline-eval --example rca_eval -- <dir> [--json] [--config JSON]`,
//! where `--config` overrides fields of the default `DiagnosisConfig`.
//! Not the product CLI (that is `faultline rca eval`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = args.iter().position(|a| a == "--config").and_then(|i| args.get(i + 1));
    let Some(dir) = args.iter().enumerate().find(|(i, a)| !a.starts_with("--") && (*i == 0 || args[i - 1] != "--config")).map(|(_, a)| a) else {
        eprintln!("usage: rca_eval <dir> [--json] [--config JSON]");
        std::process::exit(2);
    };
    let cfg: faultline_core::diagnose::DiagnosisConfig = match config.map(|c| serde_json::from_str(c)) {
        None => Default::default(),
        Some(Ok(c)) => c,
        Some(Err(e)) => {
            eprintln!("bad --config: {e}");
            std::process::exit(2);
        }
    };
    match faultline_eval::rca_eval_with(std::path::Path::new(dir), &cfg) {
        Ok(r) if args.iter().any(|a| a == "--json") => println!("{}", faultline_eval::render_json(&r)),
        Ok(r) => print!("{}", faultline_eval::render_table(&r)),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
