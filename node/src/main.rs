//! The `lotline` binary; everything lives in `lotline_node::cli`.

/// sled copies a tree node on every insert; under glibc's allocator the
/// commit path spent about a third of its time in malloc and its arena
/// locks (see docs/performance.md). mimalloc halves the cost of a block.
/// It is built without transparent huge pages (the workspace's `no_thp`
/// feature): asked for them, the kernel zeroed a whole 2 MiB page for each
/// fresh region the heap touched, 10 % of four validators' CPU
/// (docs/performance.md, "Huge pages off, and each attestation hashed once
/// per node").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    lotline_node::cli::main()
}
