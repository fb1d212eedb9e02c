//! Places in the file: the line and column of an offset, and where a key's
//! value is written.

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

/// Where the value of a dotted key path is written in `text`, if it is.
pub fn locate_key(text: &str, key: &[String]) -> Option<(usize, usize)> {
    let doc = toml::de::DeTable::parse(text).ok()?;
    let mut table = doc.get_ref();
    let mut span = None;
    for (depth, part) in key.iter().enumerate() {
        let (_, value) = table.iter().find(|(k, _)| k.get_ref().as_ref() == part)?;
        span = Some(value.span());
        if depth + 1 < key.len() {
            table = value.get_ref().as_table()?;
        }
    }
    span.map(|s| line_col(text, s.start))
}
