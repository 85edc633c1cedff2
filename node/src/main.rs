//! The `lotline` binary; everything lives in `lotline_node::cli`.

fn main() -> std::process::ExitCode {
    lotline_node::cli::main()
}
