//! The `earmark` command: parses the command line, calls the library, prints. Nothing else.

mod cli;

/// mimalloc instead of the system allocator: a posting batch makes and drops a few hundred thousand
/// small strings (bound values, keys), where glibc's malloc and free were a fifth of the CPU. Without
/// transparent huge pages (`no_thp`): a short command spent a fifth of its time zeroing fresh 2 MiB
/// pages (`payout create`, 4,000 lines, five runs each: median 398 ms with, 311 ms without).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
