//! `fakeups --check-config` on mutated configuration files: whatever the
//! file holds, the real binary either accepts it or rejects it with exit 78
//! and one line that says where (`PATH:LINE:COL: ...`, or `PATH: KEY: ...`
//! for a problem with a key that has no place in the file). No panic, no
//! hang, no message over two lines.
//!
//! The files come from a fixed seed, so a run is the same every time. The
//! test suite runs a few hundred; `FAKEUPS_FUZZ_FILES=3000` runs more (the
//! figures go to stderr, run with `--nocapture` to see them),
//! `FAKEUPS_FUZZ_SEED=N` another set of files, `FAKEUPS_FUZZ_DIR=DIR` writes
//! them there and leaves them (to compare two builds on the same files), and
//! `FAKEUPS_FUZZ_KEEP=DIR` copies each offending file there.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::thread;
use std::time::{Duration, Instant};

use crate::support;

/// Files in the test suite's run: small enough for a few seconds.
const DEFAULT_FILES: usize = 300;
/// How long one check may take before it counts as hung.
const TIME_LIMIT: Duration = Duration::from_secs(20);

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A number in `0..n` (n > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// The files mutations start from.
fn seeds() -> Vec<Vec<u8>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut seeds = vec![
        fs::read(root.join("packaging/fakeups.toml")).expect("shipped config"),
        fs::read(root.join("packaging/examples/loopback.toml")).expect("example config"),
        b"sentinels = [\"gateway\", \"192.168.1.2\", \"switch.lan\", \"fe80::1%lo\"]\n\
[detection]\ninterval = \"500ms\"\ntimeout = \"300ms\"\nquorum = \"majority\"\n\
on-battery-after = \"1m\"\nonline-after = \"20s\"\n[battery]\nruntime = \"10m\"\n\
low-runtime = \"4m\"\nrecharge-time = \"2h\"\n[pause]\ndefault-duration = \"2h\"\n\
[nut]\nupsd = \"\"\nups = [\"fakeups\"]\n[log]\nlevel = \"debug\"\nfile = \"\"\n"
            .to_vec(),
        b"[detection]\nquorum = 2\n".to_vec(),
    ];
    seeds.push(Vec::new());
    seeds
}

const KEYS: &[&str] = &[
    "sentinels",
    "state-directory",
    "detection.interval",
    "detection.timeout",
    "detection.quorum",
    "detection.on-battery-after",
    "detection.online-after",
    "battery.runtime",
    "battery.low-runtime",
    "battery.recharge-time",
    "pause.default-duration",
    "nut.data-file",
    "nut.upsd",
    "nut.ups",
    "log.file",
    "log.level",
    "control.socket",
];

/// Values of every type and of none, some of them on several lines.
const VALUES: &[&str] = &[
    "1",
    "-1",
    "0",
    "99999999999999999999",
    "1.5",
    "nan",
    "inf",
    "true",
    "1979-05-27T07:32:00Z",
    "07:32:00",
    "[]",
    "[1, \"a\"]",
    "{}",
    "{ a = 1 }",
    "\"\"",
    "\"2s\"",
    "\"0s\"",
    "\"-5s\"",
    "\"1y\"",
    "\"gateway\"",
    "[\"gateway\", \"gateway\"]",
    "[\"10.0.0.300\"]",
    "[\"\"]",
    "\"\"\"multi\nline\nvalue\"\"\"",
    "'''raw\nmulti\nline'''",
    "\"tab\\there\"",
    "\"new\\nline\"",
    "\"bell\\u0007\"",
    "\"nul\\u0000byte\"",
    "\"/\"",
    "\"/tmp\"",
    "\"/etc/\"",
    "\"relative/path\"",
    "\"/proc/1/nonexistent/x\"",
    "\"/dev/null/x\"",
    "\"all\"",
    "\"majority\"",
    "\"most\"",
    "\"debug\"",
    "\"loud\"",
    "\"localhost\"",
    "\"[::1]:3493\"",
    "\"host:99999\"",
    "[\"q n a p\"]",
    "\"\\uD800\"",
    "\"unterminated",
    "",
];

/// One generated file: a seed and one to four mutations.
fn generate(rng: &mut Rng, seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut text = rng.pick(seeds).clone();
    for _ in 0..1 + rng.below(4) {
        mutate(rng, &mut text);
    }
    text
}

/// A line starts at `at` or at the start of the line that holds it.
fn line_start(text: &[u8], at: usize) -> usize {
    text[..at.min(text.len())]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1)
}

fn insert_line(rng: &mut Rng, text: &mut Vec<u8>, line: &[u8]) {
    let at = line_start(text, rng.below(text.len() + 1));
    let mut line = line.to_vec();
    line.push(b'\n');
    text.splice(at..at, line);
}

fn key_value(rng: &mut Rng, value: &str) -> Vec<u8> {
    let key = rng.pick(KEYS);
    let line = match key.split_once('.') {
        // Half the time a dotted key at the top, half the time a table.
        Some((table, key)) if rng.below(2) == 0 => format!("[{table}]\n{key} = {value}"),
        _ => format!("{key} = {value}"),
    };
    line.into_bytes()
}

fn nested(rng: &mut Rng) -> Vec<u8> {
    let depth = 50 + rng.below(200);
    let key = rng.pick(&["a", "sentinels", "nut", "\"q\"", "'l'", "x-y"]);
    match rng.below(6) {
        0 => format!("{key} = {}1{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{key} = {}1{}", "{ a = ".repeat(depth), " }".repeat(depth)),
        2 => format!("{} = 1", vec![*key; depth].join(".")),
        3 => format!("[{}]", vec![*key; depth].join(".")),
        4 => format!("[[{}]]", vec![*key; depth].join(" . ")),
        _ => format!("x = {{ {} = 1 }}", vec![*key; depth].join(".")),
    }
    .into_bytes()
}

fn invalid_utf8(rng: &mut Rng) -> Vec<u8> {
    rng.pick(&[
        &[0xFF][..],
        &[0xFE, 0xFF],
        &[0xC3],
        &[0xC0, 0x80],
        &[0xED, 0xA0, 0x80],
        &[0xF4, 0x90, 0x80, 0x80],
        &[0xE2, 0x82],
        &[0x80],
    ])
    .to_vec()
}

fn huge(rng: &mut Rng) -> Vec<u8> {
    let n = 1000 + rng.below(200_000);
    let c = *rng.pick(&["a", "/", "é", "9", "x/"]);
    match rng.below(5) {
        0 => key_value(rng, &format!("\"{}\"", c.repeat(n))),
        1 => key_value(rng, &format!("\"/{}\"", "d/".repeat(n / 2))),
        2 => key_value(rng, &"9".repeat(n)),
        3 => {
            // a long list of sentinels, some of them twice
            let count = 1000 + rng.below(20_000);
            let entries: Vec<String> = (0..count)
                .map(|i| format!("\"10.{}.{}.{}\"", (i >> 16) & 255, (i >> 8) & 255, i & 255))
                .collect();
            let mut list = entries.join(", ");
            if rng.below(2) == 0 {
                list.push_str(", \"10.0.0.7\"");
            }
            format!("sentinels = [{list}]").into_bytes()
        }
        _ => format!("{} = 1", c.repeat(n)).into_bytes(),
    }
}

fn mutate(rng: &mut Rng, text: &mut Vec<u8>) {
    match rng.below(14) {
        // flip random bytes
        0 => {
            for _ in 0..1 + rng.below(8) {
                if !text.is_empty() {
                    let i = rng.below(text.len());
                    text[i] = (rng.next() & 0xFF) as u8;
                }
            }
        }
        // truncate
        1 => {
            let at = rng.below(text.len() + 1);
            text.truncate(at);
        }
        // delete a run of bytes
        2 => {
            if !text.is_empty() {
                let from = rng.below(text.len());
                let to = (from + 1 + rng.below(40)).min(text.len());
                text.drain(from..to);
            }
        }
        // nest deeply
        3 => {
            let line = nested(rng);
            insert_line(rng, text, &line);
        }
        // invalid UTF-8, anywhere
        4 => {
            let at = rng.below(text.len() + 1);
            let bytes = invalid_utf8(rng);
            text.splice(at..at, bytes);
        }
        // a huge value, key or list
        5 => {
            let line = huge(rng);
            insert_line(rng, text, &line);
        }
        // a line twice (duplicate key or table)
        6 => {
            let start = line_start(text, rng.below(text.len() + 1));
            let end = text[start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(text.len(), |i| start + i + 1);
            let mut line = text[start..end].to_vec();
            if !line.ends_with(b"\n") {
                line.insert(0, b'\n');
            }
            let at = line_start(text, rng.below(text.len() + 1));
            text.splice(at..at, line);
        }
        // a key with a value of any type
        7 | 8 => {
            let value = *rng.pick(VALUES);
            let line = key_value(rng, value);
            insert_line(rng, text, &line);
        }
        // a table header, known or not, maybe twice
        9 => {
            let header = *rng.pick(&[
                "[detection]",
                "[nut]",
                "[[nut]]",
                "[batery]",
                "[detection.deeper]",
                "[\"quoted\\nkey\"]",
                "[]",
                "[a",
            ]);
            insert_line(rng, text, header.as_bytes());
        }
        // control characters, carriage returns, a byte-order mark
        10 => {
            let at = rng.below(text.len() + 1);
            let bytes = *rng.pick(&[
                &b"\r"[..],
                b"\r\n",
                b"\t",
                b"\0",
                b"\x1b[31m",
                b"\x7f",
                "\u{feff}".as_bytes(),
                "\u{2028}".as_bytes(),
            ]);
            text.splice(at..at, bytes.iter().copied());
        }
        // keys that need quoting, with line breaks in them
        11 => {
            let line = *rng.pick(&[
                "\"new\\nline\" = 1",
                "\"a\\rb\" = 2",
                "[detection]\n\"inter\\nval\" = \"2s\"",
                "'''x''' = 1",
                "\"\" = 1",
                "sentinels.\"x\\ny\" = 1",
            ]);
            insert_line(rng, text, line.as_bytes());
        }
        // splice in a piece of another place of the same file
        12 => {
            if !text.is_empty() {
                let from = rng.below(text.len());
                let to = (from + 1 + rng.below(80)).min(text.len());
                let piece = text[from..to].to_vec();
                let at = rng.below(text.len() + 1);
                text.splice(at..at, piece);
            }
        }
        // random punctuation
        _ => {
            let at = rng.below(text.len() + 1);
            let c = *rng.pick(&[
                &b"["[..],
                b"]",
                b"{",
                b"}",
                b"=",
                b"\"",
                b"'",
                b"\"\"\"",
                b".",
                b",",
                b"#",
                b"\\",
                b"\n",
            ]);
            text.splice(at..at, c.iter().copied());
        }
    }
}

/// What became of the checks.
#[derive(Debug, Default)]
struct Figures {
    files: usize,
    valid: usize,
    rejected: usize,
    /// Killed by a signal or an exit status other than 0 and 78.
    crashed: Vec<(usize, String)>,
    hung: Vec<usize>,
    multi_line: Vec<(usize, String)>,
    no_place: Vec<(usize, String)>,
    /// A LINE beyond the end of the file.
    outside: Vec<(usize, String)>,
    slowest: Duration,
}

impl Figures {
    fn add(&mut self, other: Figures) {
        self.files += other.files;
        self.valid += other.valid;
        self.rejected += other.rejected;
        self.crashed.extend(other.crashed);
        self.hung.extend(other.hung);
        self.multi_line.extend(other.multi_line);
        self.no_place.extend(other.no_place);
        self.outside.extend(other.outside);
        self.slowest = self.slowest.max(other.slowest);
    }

    fn offenders(&self) -> BTreeSet<usize> {
        let mut all: BTreeSet<usize> = self.hung.iter().copied().collect();
        for list in [
            &self.crashed,
            &self.multi_line,
            &self.no_place,
            &self.outside,
        ] {
            all.extend(list.iter().map(|(i, _)| *i));
        }
        all
    }
}

/// How the check of file `i` at `path` (with `text`) went, into `figures`.
fn check_one(i: usize, path: &Path, text: &[u8], figures: &mut Figures) {
    let dir = path.parent().expect("a file in a directory");
    let out_path = dir.join(format!("{i}.out"));
    let err_path = dir.join(format!("{i}.err"));
    let started = Instant::now();
    let mut child = support::FAKEUPS
        .command()
        .arg("--check-config")
        .arg("--config")
        .arg(path)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).expect("stdout file"))
        .stderr(fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("run fakeups");
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if started.elapsed() > TIME_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(2));
    };
    figures.files += 1;
    figures.slowest = figures.slowest.max(started.elapsed());
    let stderr = String::from_utf8_lossy(&fs::read(&err_path).unwrap_or_default()).into_owned();
    let _ = fs::remove_file(&out_path);
    let _ = fs::remove_file(&err_path);
    let Some(status) = status else {
        figures.hung.push(i);
        return;
    };
    match status.code() {
        Some(0) => figures.valid += 1,
        Some(78) => {
            figures.rejected += 1;
            let message = stderr.trim_end();
            if message.lines().count() != 1 {
                figures.multi_line.push((i, short(message)));
            }
            let first = message.lines().next().unwrap_or("");
            match place(path, first) {
                Place::Position(line) => {
                    let lines = text.iter().filter(|&&b| b == b'\n').count() + 1;
                    if line == 0 || line > lines {
                        figures.outside.push((i, short(first)));
                    }
                }
                Place::Key => {}
                Place::None => figures.no_place.push((i, short(first))),
            }
        }
        _ => figures
            .crashed
            .push((i, format!("{status}: {}", short(&stderr)))),
    }
}

enum Place {
    /// `PATH:LINE:COL: ...`, with the line.
    Position(usize),
    /// `PATH: KEY: ...`
    Key,
    None,
}

fn place(path: &Path, line: &str) -> Place {
    let Some(rest) = line.strip_prefix(&format!("{}:", path.display())) else {
        return Place::None;
    };
    if let Some(key) = rest.strip_prefix(' ') {
        let key = key.split(": ").next().unwrap_or("");
        return if KEYS.contains(&key) {
            Place::Key
        } else {
            Place::None
        };
    }
    let mut parts = rest.splitn(3, ':');
    let line_no = parts.next().and_then(|l| l.parse::<usize>().ok());
    let col = parts.next().and_then(|c| c.parse::<usize>().ok());
    match (line_no, col, parts.next()) {
        (Some(line_no), Some(col), Some(tail)) if col > 0 && tail.starts_with(' ') => {
            Place::Position(line_no)
        }
        _ => Place::None,
    }
}

fn short(text: &str) -> String {
    const MAX: usize = 300;
    match text.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}... ({} bytes)", &text[..cut], text.len()),
        None => text.to_string(),
    }
}

/// Generates `files` files from `seed` and checks them on two threads.
fn run(files: usize, seed: u64) -> Figures {
    let scratch = support::workdir();
    let dir = match std::env::var_os("FAKEUPS_FUZZ_DIR") {
        Some(dir) => {
            fs::create_dir_all(&dir).expect("FAKEUPS_FUZZ_DIR");
            PathBuf::from(dir)
        }
        None => scratch.path().to_path_buf(),
    };
    let seeds = seeds();
    let mut rng = Rng(seed);
    let texts: Vec<Vec<u8>> = (0..files).map(|_| generate(&mut rng, &seeds)).collect();
    let paths: Vec<PathBuf> = texts
        .iter()
        .enumerate()
        .map(|(i, text)| {
            let path = dir.join(format!("fuzz-{i:05}.toml"));
            fs::write(&path, text).expect("write a fuzzed file");
            path
        })
        .collect();
    let mut figures = Figures::default();
    thread::scope(|s| {
        let workers: Vec<_> = (0..2)
            .map(|w| {
                let (texts, paths) = (&texts, &paths);
                s.spawn(move || {
                    let mut figures = Figures::default();
                    for i in (w..files).step_by(2) {
                        check_one(i, &paths[i], &texts[i], &mut figures);
                    }
                    figures
                })
            })
            .collect();
        for w in workers {
            figures.add(w.join().expect("a fuzz worker"));
        }
    });
    if let Some(keep) = std::env::var_os("FAKEUPS_FUZZ_KEEP") {
        let keep = PathBuf::from(keep);
        fs::create_dir_all(&keep).expect("FAKEUPS_FUZZ_KEEP");
        for i in figures.offenders() {
            fs::copy(&paths[i], keep.join(format!("fuzz-{i:05}.toml"))).expect("keep a file");
        }
    }
    figures
}

fn report(figures: &Figures) -> String {
    let mut text = format!(
        "{} files: {} valid, {} rejected; {} crashed, {} hung, {} rejections without a \
         place, {} on several lines, {} placed outside the file; slowest check {:.2?}",
        figures.files,
        figures.valid,
        figures.rejected,
        figures.crashed.len(),
        figures.hung.len(),
        figures.no_place.len(),
        figures.multi_line.len(),
        figures.outside.len(),
        figures.slowest,
    );
    for (what, list) in [
        ("crashed", &figures.crashed),
        ("no place", &figures.no_place),
        ("several lines", &figures.multi_line),
        ("outside the file", &figures.outside),
    ] {
        let mut seen = BTreeSet::new();
        for (i, message) in list {
            // One example per kind of message, the path and numbers aside.
            let kind: String = message
                .split_once(": ")
                .map_or(message.as_str(), |(_, m)| m)
                .chars()
                .filter(|c| !c.is_ascii_digit())
                .take(40)
                .collect();
            if seen.insert(kind) && seen.len() <= 8 {
                text.push_str(&format!("\n  {what}: file {i}: {message}"));
            }
        }
    }
    if !figures.hung.is_empty() {
        text.push_str(&format!("\n  hung: files {:?}", figures.hung));
    }
    text
}

#[test]
fn fuzzed_configs_are_accepted_or_rejected_on_one_line_with_a_place() {
    let files = std::env::var("FAKEUPS_FUZZ_FILES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(DEFAULT_FILES);
    let seed = std::env::var("FAKEUPS_FUZZ_SEED")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0x5EED_F00D_u64);
    let figures = run(files, seed);
    let summary = report(&figures);
    eprintln!("fuzz (seed {seed:#x}): {summary}");
    assert!(
        figures.offenders().is_empty(),
        "fuzz (seed {seed:#x}): {summary}"
    );
    // The mutations must reach both sides, or the test proves little.
    assert!(
        figures.valid * 20 >= files && figures.rejected * 2 >= files,
        "{summary}"
    );
}
