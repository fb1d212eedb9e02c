//! Control of the fakeups daemon; see fakeupsctl(8).

fn main() -> std::process::ExitCode {
    fakeups::ctl::main()
}
