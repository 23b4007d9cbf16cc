//! Stand-alone driver for the `faultline sim` command until the `faultline`
//! binary wires it in: `cargo run --release -p faultline-sim --example sim -- run retry-storm`.

use clap::Parser;

#[derive(Parser)]
#[command(name = "sim")]
struct Cli {
    #[command(flatten)]
    sim: faultline_sim::cli::SimArgs,
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = faultline_sim::cli::run(cli.sim) {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
