//! The `earmark` command: parses the command line, calls the library, prints. Nothing else.

mod cli;

/// mimalloc instead of the system allocator: a posting batch makes and drops a few hundred thousand
/// small strings (bound values, keys), where glibc's malloc and free were a fifth of the CPU.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
