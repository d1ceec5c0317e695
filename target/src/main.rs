//! The `lamina` binary: parses the command line and hands over to `lamina_target`.

use clap::Parser;

/// Lamina, an NVMe-over-TCP target server.
#[derive(Debug, Parser)]
#[command(name = "lamina", version = lamina_target::VERSION)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    println!(
        "lamina {}: the NVMe/TCP server is not built yet; see README.md",
        lamina_target::VERSION
    );
}
