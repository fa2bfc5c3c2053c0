//! The `custos` binary: everything is in the library; this only runs the CLI.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    custos::cli::run()
}
