//! Control of the fakeups daemon; see fakeupsctl(8).

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;

fn main() -> ExitCode {
    match fakeups::cli::CtlArgs::try_parse() {
        Ok(args) => fakeups::ctl::main(args),
        // --help and --version print as clap formats them.
        Err(e) if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = e.print();
            ExitCode::SUCCESS
        }
        Err(e) if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(fakeups::sysexits::EX_USAGE)
        }
        // Every other error is one line, as every error of fakeupsctl.
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            eprintln!("fakeupsctl: {}", first.trim_start_matches("error: "));
            ExitCode::from(fakeups::sysexits::EX_USAGE)
        }
    }
}
