//! The `lotline` binary; everything lives in `lotline_node::cli`.

/// sled copies a tree node on every insert; under glibc's allocator the
/// commit path spent about a third of its time in malloc and its arena
/// locks (see docs/performance.md). mimalloc halves the cost of a block.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lotline_node::cli::main()
}
