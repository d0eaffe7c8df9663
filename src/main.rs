//! The `onewindow` binary: everything lives in the library.

fn main() -> std::process::ExitCode {
    onewindow::cli::run()
}
