//! File names from clients are for display only: the server stores content under its hash and
//! never uses a client's name as a path. Still, a name is shown to every member and becomes a
//! file name on their machines, so it is cleaned here: the last path component only, no control,
//! invisible or reordering characters, no leading dots, at most [`MAX_NAME_BYTES`] bytes.

/// Longest stored name, in UTF-8 bytes (the common file-system limit).
pub const MAX_NAME_BYTES: usize = 255;

/// The name used when nothing usable is left.
pub const FALLBACK_NAME: &str = "file";

/// A safe display name for `raw`.
pub fn sanitize(raw: &str) -> String {
    // Only what follows the last separator of either convention.
    let base = raw.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = base
        .chars()
        .filter(|&c| !c.is_control() && !crate::auth::is_invisible_or_reordering(c))
        .collect();
    let trimmed = cleaned.trim().trim_start_matches('.').trim();
    let mut name = String::with_capacity(trimmed.len().min(MAX_NAME_BYTES));
    for c in trimmed.chars() {
        if name.len() + c.len_utf8() > MAX_NAME_BYTES {
            break;
        }
        name.push(c);
    }
    let name = name.trim_end().to_owned();
    if name.is_empty() {
        FALLBACK_NAME.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_ordinary_names() {
        assert_eq!(sanitize("report.pdf"), "report.pdf");
        assert_eq!(sanitize("截图 2026.png"), "截图 2026.png");
        assert_eq!(sanitize("build-1.2.3.tar.gz"), "build-1.2.3.tar.gz");
    }

    #[test]
    fn strips_directories_of_both_conventions() {
        assert_eq!(sanitize("../../etc/passwd"), "passwd");
        assert_eq!(sanitize("..\\..\\windows\\system32\\cmd.exe"), "cmd.exe");
        assert_eq!(sanitize("/abs/path/x.txt"), "x.txt");
        assert_eq!(sanitize("dir/"), FALLBACK_NAME);
    }

    #[test]
    fn removes_dots_controls_and_bidi_overrides() {
        assert_eq!(sanitize(".."), FALLBACK_NAME);
        assert_eq!(sanitize("."), FALLBACK_NAME);
        assert_eq!(sanitize(".bashrc"), "bashrc");
        assert_eq!(sanitize("a\nb\u{0}c\u{1b}[31m.txt"), "abc[31m.txt");
        assert_eq!(sanitize("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(sanitize("pay\u{200b}roll\u{feff}.xlsx"), "payroll.xlsx");
        assert_eq!(
            sanitize("👨\u{200d}👩.png"),
            "👨\u{200d}👩.png",
            "emoji keep their joiner"
        );
        assert_eq!(sanitize("   "), FALLBACK_NAME);
        assert_eq!(sanitize(""), FALLBACK_NAME);
    }

    #[test]
    fn bounds_length_on_a_char_boundary() {
        let long = "é".repeat(300);
        let name = sanitize(&long);
        assert!(name.len() <= MAX_NAME_BYTES);
        assert_eq!(name.chars().count(), MAX_NAME_BYTES / 2);
    }
}
