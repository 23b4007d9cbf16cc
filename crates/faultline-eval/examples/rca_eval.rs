//! Runs the root-cause evaluation from the command line during development:
//! `cargo run --release -p faultline-eval --example rca_eval -- <dir> [--json]`.
//! Not the product CLI (that is `faultline rca eval`).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(dir) = args.iter().find(|a| !a.starts_with("--")) else {
        eprintln!("usage: rca_eval <dir> [--json]");
        std::process::exit(2);
    };
    match faultline_eval::rca_eval(std::path::Path::new(dir)) {
        Ok(r) if args.iter().any(|a| a == "--json") => println!("{}", faultline_eval::render_json(&r)),
        Ok(r) => print!("{}", faultline_eval::render_table(&r)),
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    }
}
