//! Places in the file: the line and column of an offset, where a key's
//! value (or an entry of a list) is written, and where a dotted key is too
//! deep for the parser.

/// 1-based line and column (in characters) of a byte offset in `text`.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = text[line_start..offset].chars().count() + 1;
    (line, col)
}

/// Where the value of a dotted key path is written in `text`, if it is; with
/// `entry`, where that entry of the list is; with `field` too, where that
/// key of the entry (a table of an array of tables) is.
pub fn locate_key(
    text: &str,
    key: &[String],
    entry: Option<usize>,
    field: Option<&str>,
) -> Option<(usize, usize)> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    let mut value = None;
    for (depth, part) in key.iter().enumerate() {
        let (_, found) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        span = Some(found.span());
        value = Some(found);
        if depth + 1 < key.len() {
            table = found.get_ref().as_table()?;
        }
    }
    if let (Some(i), Some(value)) = (entry, value) {
        let item = value.get_ref().as_array()?.get(i)?;
        span = Some(item.span());
        if let Some(field) = field {
            let table = item.get_ref().as_table()?;
            match table.iter().find(|(k, _)| k.get_ref().as_ref() == field) {
                Some((_, v)) => span = Some(v.span()),
                None => span = Some(item.span()),
            }
        }
    }
    span.map(|s| line_col(text, s.start))
}

/// The most parts a dotted key may have: the parser (toml's `LIMIT`, 80
/// tables deep) refuses more with a bare "recursion limit" that has no
/// place. A test keeps this in step with the parser.
pub const MAX_KEY_PARTS: usize = 80;

/// A dotted key with more than `MAX_KEY_PARTS` parts.
#[derive(Debug, PartialEq, Eq)]
pub struct DeepKey {
    /// Byte offset of the key's first part.
    pub start: usize,
    pub parts: usize,
}

/// The first dotted key in `text` (in a table header, before `=`, in an
/// inline table) with more than `MAX_KEY_PARTS` parts. Used only once the
/// parser has refused the file without a place: its tokens are then valid,
/// so this scan needs to know only strings, comments and bare keys. One
/// pass, no allocation.
pub fn deep_key(text: &str) -> Option<DeepKey> {
    let b = text.as_bytes();
    let mut i = 0;
    // The key being read: its start and parts so far; and whether a dot
    // follows the last part.
    let mut key: Option<DeepKey> = None;
    let mut after_part = false;
    let mut after_dot = false;
    while i < b.len() {
        let c = b[i];
        let part_end = match c {
            b' ' | b'\t' => {
                i += 1;
                continue;
            }
            b'.' if after_part => {
                after_part = false;
                after_dot = true;
                i += 1;
                continue;
            }
            b'"' | b'\'' => Some(string_end(b, i)),
            c if c.is_ascii_alphanumeric() || c == b'-' || c == b'_' => Some(
                b[i..]
                    .iter()
                    .position(|&c| !(c.is_ascii_alphanumeric() || c == b'-' || c == b'_'))
                    .map_or(b.len(), |n| i + n),
            ),
            _ => None,
        };
        match part_end {
            Some(end) => {
                match &mut key {
                    Some(k) if after_dot => k.parts += 1,
                    _ => {
                        if let Some(k) = key.take().filter(|k| k.parts > MAX_KEY_PARTS) {
                            return Some(k);
                        }
                        key = Some(DeepKey { start: i, parts: 1 });
                    }
                }
                after_part = true;
                after_dot = false;
                i = end;
            }
            None => {
                if let Some(k) = key.take().filter(|k| k.parts > MAX_KEY_PARTS) {
                    return Some(k);
                }
                after_part = false;
                after_dot = false;
                i = if c == b'#' {
                    b[i..]
                        .iter()
                        .position(|&c| c == b'\n')
                        .map_or(b.len(), |n| i + n)
                } else {
                    i + 1
                };
            }
        }
    }
    key.filter(|k| k.parts > MAX_KEY_PARTS)
}

/// The offset just after the string that starts at `start` (a `"` or `'`,
/// single or triple); the end of the text if it is not closed.
fn string_end(b: &[u8], start: usize) -> usize {
    let quote = b[start];
    let escapes = quote == b'"';
    let triple = b[start..].starts_with(&[quote; 3]);
    let mut i = start + if triple { 3 } else { 1 };
    while i < b.len() {
        let c = b[i];
        if escapes && c == b'\\' {
            i += 2;
        } else if c == quote && (!triple || b[i..].starts_with(&[quote; 3])) {
            if !triple {
                return i + 1;
            }
            // Up to two quotes may end the content of a triple-quoted string.
            let run = b[i..].iter().take_while(|&&c| c == quote).count().min(5);
            return i + run;
        } else if c == b'\n' && !triple {
            return i;
        } else {
            i += 1;
        }
    }
    b.len()
}
