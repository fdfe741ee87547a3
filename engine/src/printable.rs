//! Text quoted from a file, made safe to print (a leaf: errors everywhere use it).

/// `text` with control characters (C0, DEL, C1 — ESC among them) written as `\u{1b}`, so
/// names and values quoted from a file cannot drive the terminal an error is printed on.
pub fn printable(text: &str) -> String {
    if !text.chars().any(char::is_control) {
        return text.to_string();
    }
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}
