//! The fakeups daemon; see fakeups(8).

use clap::Parser;

fn main() -> std::process::ExitCode {
    fakeups::daemon::main(fakeups::cli::DaemonArgs::parse())
}
