//! The man pages in man/ follow the code: every option of `--help` (of each
//! binary and each subcommand) and every configuration key is in its page,
//! each page names the package version, and `mandoc -T lint` finds nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::CommandFactory;
use fakeups::cli::{CtlArgs, DaemonArgs};

use crate::support;

fn page(name: &str) -> (PathBuf, String) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("man").join(name);
    let roff = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    // Plain text: escaped hyphens as hyphens, font changes dropped.
    let text = roff
        .replace("\\-", "-")
        .replace("\\fB", "")
        .replace("\\fI", "")
        .replace("\\fR", "")
        .replace("\\fP", "");
    (path, text)
}

/// Every `--long` and `-s` flag of `cmd` and its subcommands, with the
/// subcommand path for messages.
fn flags(cmd: &clap::Command, path: &str, out: &mut Vec<(String, String)>) {
    for arg in cmd.get_arguments() {
        if arg.is_hide_set() {
            continue;
        }
        if let Some(long) = arg.get_long() {
            out.push((path.to_string(), format!("--{long}")));
        }
        if let Some(short) = arg.get_short() {
            out.push((path.to_string(), format!("-{short}")));
        }
    }
    for sub in cmd.get_subcommands() {
        if sub.get_name() == "help" {
            continue;
        }
        out.push((path.to_string(), sub.get_name().to_string()));
        flags(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

fn check_page(cmd: clap::Command, page_name: &str) {
    let mut cmd = cmd;
    cmd.build();
    let (path, text) = page(page_name);
    let mut all = vec![];
    flags(&cmd, cmd.get_name(), &mut all);
    assert!(
        all.iter().any(|(_, f)| f == "--help"),
        "clap's --help is listed"
    );
    let missing: Vec<String> = all
        .iter()
        .filter(|(_, flag)| {
            // A flag as a word of its own: not a prefix of a longer one.
            !text.match_indices(flag.as_str()).any(|(i, _)| {
                let after = text[i + flag.len()..].chars().next();
                !after.is_some_and(|c| c.is_alphanumeric() || c == '-')
            })
        })
        .map(|(cmd, flag)| format!("{cmd}: {flag}"))
        .collect();
    assert!(missing.is_empty(), "{} lacks {missing:?}", path.display());
    let version = format!("\"fakeups {}\"", env!("CARGO_PKG_VERSION"));
    assert!(
        text.lines().next().is_some_and(|l| l.contains(&version)),
        "{}: .TH does not name {version}",
        path.display()
    );
}

#[test]
fn fakeups_8_documents_every_option() {
    check_page(DaemonArgs::command(), "fakeups.8");
}

#[test]
fn fakeupsctl_8_documents_every_command_and_option() {
    check_page(CtlArgs::command(), "fakeupsctl.8");
}

#[test]
fn fakeups_toml_5_documents_every_key() {
    let (path, text) = page("fakeups.toml.5");
    let config = toml::Table::try_from(fakeups::config::Config::default()).unwrap();
    let mut keys = vec![];
    for (k, v) in &config {
        match v.as_table() {
            Some(t) => {
                assert!(text.contains(&format!(".SH [{k}]")), "no section [{k}]");
                keys.extend(t.keys().cloned());
            }
            None => keys.push(k.clone()),
        }
    }
    for key in keys {
        assert!(
            text.contains(&format!(".B {key}\n")),
            "{} does not document {key}",
            path.display()
        );
    }
}

#[test]
fn mandoc_lint_finds_nothing() {
    if !support::have("mandoc") {
        support::skip(
            "mandoc_lint_finds_nothing",
            "needs mandoc (apt-get install mandoc)",
        );
        return;
    }
    for name in ["fakeups.8", "fakeupsctl.8", "fakeups.toml.5"] {
        let (path, _) = page(name);
        let out = Command::new("mandoc")
            .args(["-T", "lint", "-W", "all"])
            .arg(&path)
            .output()
            .unwrap();
        let report = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() && report.trim().is_empty(),
            "{}:\n{report}",
            path.display()
        );
    }
}

/// The bash completion the package installs is committed (so that `cargo
/// deb` works on a fresh clone) and must be what the command line gives.
#[test]
fn the_committed_bash_completion_matches_the_command_line() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fakeupsctl.bash");
    let committed =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let out = support::FAKEUPSCTL
        .command()
        .args(["completions", "bash"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", support::stderr(&out));
    assert!(
        support::stdout(&out) == committed,
        "{} is out of date: run `fakeupsctl completions bash > packaging/fakeupsctl.bash`",
        path.display()
    );
}
