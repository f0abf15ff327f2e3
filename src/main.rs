//! The `earmark` command: parses the command line, calls the library, prints. Nothing else.

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
