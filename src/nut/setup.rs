//! The NUT configuration fakeups needs, from the snippets in nut/ (the same
//! files the package installs under /usr/share/fakeups/nut and its
//! maintainer scripts use): what `fakeupsctl nut-config` prints.

use std::fmt::Write as _;
use std::io;
use std::path::Path;

/// (file under /etc/nut, snippet with @DATA_FILE@ and @FAKEUPS_PASSWORD@).
pub const SNIPPETS: [(&str, &str); 4] = [
    ("nut.conf", include_str!("../../nut/nut.conf")),
    ("ups.conf", include_str!("../../nut/ups.conf")),
    ("upsd.conf", include_str!("../../nut/upsd.conf")),
    ("upsd.users", include_str!("../../nut/upsd.users")),
];

/// What stands in for the password when it cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Password {
    Known(String),
    /// The file exists but this user may not read it.
    Unreadable,
    /// No password was generated (fakeups was not installed as a package).
    None,
}

impl Password {
    /// Reads the generated password from `path`.
    pub fn read(path: &Path) -> Password {
        match std::fs::read_to_string(path) {
            Ok(text) if !text.trim().is_empty() => Password::Known(text.trim().to_string()),
            Ok(_) => Password::None,
            Err(e) if e.kind() == io::ErrorKind::NotFound => Password::None,
            Err(_) => Password::Unreadable,
        }
    }

    fn text(&self) -> &str {
        match self {
            Password::Known(p) => p,
            Password::Unreadable => "(run `sudo fakeupsctl nut-config` to see it)",
            Password::None => "CHOOSE-A-PASSWORD",
        }
    }
}

/// One snippet with its placeholders filled in.
pub fn fill(snippet: &str, data_file: &Path, password: &Password) -> String {
    snippet
        .replace("@DATA_FILE@", &data_file.display().to_string())
        .replace("@FAKEUPS_PASSWORD@", password.text())
}

/// Every snippet, each under a comment naming the file it belongs in.
pub fn render(data_file: &Path, password: &Password) -> String {
    let mut out = String::new();
    for (i, (file, snippet)) in SNIPPETS.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let _ = writeln!(out, "# ---- add to /etc/nut/{file} ----");
        out.push_str(&fill(snippet, data_file, password));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fills_every_placeholder() {
        let p = Password::Known("s3cret".into());
        let text = render(Path::new("/run/fakeups/fakeups.dev"), &p);
        assert!(!text.contains('@'), "{text}");
        assert_eq!(text.matches("port = /run/fakeups/fakeups.dev").count(), 3);
        assert!(text.contains("[qnapups]") && text.contains("[ups]") && text.contains("[fakeups]"));
        assert!(text.contains("password = s3cret"));
        assert!(text.contains("MODE=netserver"));
        assert!(text.contains("LISTEN 0.0.0.0 3493"));
        assert_eq!(text.matches("mode = dummy-loop").count(), 3);
        assert_eq!(text.matches("pollinterval = 1").count(), 3);
    }

    #[test]
    fn users_are_read_only() {
        let (_, users) = SNIPPETS[3];
        let settings: Vec<&str> = users
            .lines()
            .map(str::trim)
            .filter(|l| !l.starts_with('#'))
            .collect();
        assert!(
            !settings
                .iter()
                .any(|l| l.starts_with("actions") || l.starts_with("instcmds")),
            "{settings:?}"
        );
        assert_eq!(users.matches("upsmon secondary").count(), 3);
    }

    #[test]
    fn password_sources() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        assert_eq!(Password::read(&f), Password::None);
        std::fs::write(&f, "abc\n").unwrap();
        assert_eq!(Password::read(&f), Password::Known("abc".into()));
    }
}
