//! The daemon's log file: monolog lines, `[TIME] LEVEL: message`.

/// Checks that `log` has monolog lines with these level and message, in
/// this order; returns the missing one.
pub fn monolog_in_order(log: &str, expected: &[(&str, &str)]) -> Result<(), String> {
    let mut lines = log.lines();
    for (level, message) in expected {
        let found = lines.by_ref().any(|l| is_monolog(l, level, message));
        if !found {
            return Err(format!("no line {level}: {message} (in order) in:\n{log}"));
        }
    }
    Ok(())
}

/// `[YYYY-MM-DDTHH:MM:SS] LEVEL: message`, exactly.
pub fn is_monolog(line: &str, level: &str, message: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 22 || b[0] != b'[' || b[20] != b']' || b[21] != b' ' {
        return false;
    }
    let stamp = &line[1..20];
    let shape_ok = stamp.char_indices().all(|(i, c)| match i {
        4 | 7 => c == '-',
        10 => c == 'T',
        13 | 16 => c == ':',
        _ => c.is_ascii_digit(),
    });
    shape_ok && line[22..] == format!("{level}: {message}")
}
