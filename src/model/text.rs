//! Text read from files (a scenario, a token file, a feeder): UTF-8, and when it is not,
//! the place of its first byte that is not, so that the message can name file:line:column.

use std::fmt;

/// Where bytes stop being UTF-8: the first byte that is not, with its line (1-based) and
/// its column (1-based, in characters of the valid text before it on that line, as
/// editors count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotUtf8 {
    /// 1-based.
    pub line: usize,
    /// 1-based, in characters.
    pub column: usize,
    /// The first byte that is not UTF-8 there.
    pub byte: u8,
}

impl fmt::Display for NotUtf8 {
    /// `line:column: not UTF-8 (byte 0xE9)`: a caller puts the file name in front and what
    /// the file must be after.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}: not UTF-8 (byte 0x{:02X})",
            self.line, self.column, self.byte
        )
    }
}

/// `bytes` as text, or where they stop being UTF-8.
pub fn utf8_text(bytes: Vec<u8>) -> Result<String, NotUtf8> {
    String::from_utf8(bytes).map_err(|error| {
        let valid_up_to = error.utf8_error().valid_up_to();
        not_utf8_at(error.as_bytes(), valid_up_to)
    })
}

/// The place of `bytes[at]`, the first byte std's decoder refused.
fn not_utf8_at(bytes: &[u8], at: usize) -> NotUtf8 {
    // Everything before `at` is valid UTF-8, so the lossy conversion changes nothing.
    let valid = String::from_utf8_lossy(&bytes[..at]);
    let line_start = valid.rfind('\n').map_or(0, |i| i + 1);
    NotUtf8 {
        line: valid.matches('\n').count() + 1,
        column: valid[line_start..].chars().count() + 1,
        byte: bytes[at],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_invalid_byte_is_placed_by_line_and_character_column() {
        let mut bytes = b"a = 1\nb = 2\n".to_vec();
        bytes.extend_from_slice("d = \"é".as_bytes());
        bytes.extend_from_slice(b"\xE9\"\n\xFF");
        let at = utf8_text(bytes).unwrap_err();
        // `d = "é` is six characters (seven bytes): the bad byte is the seventh character.
        assert_eq!(
            at,
            NotUtf8 {
                line: 3,
                column: 7,
                byte: 0xE9
            }
        );
        assert_eq!(at.to_string(), "3:7: not UTF-8 (byte 0xE9)");
    }

    #[test]
    fn a_bad_first_byte_is_at_one_one_and_utf8_passes() {
        let at = utf8_text(b"\x80rest".to_vec()).unwrap_err();
        assert_eq!((at.line, at.column, at.byte), (1, 1, 0x80));
        assert_eq!(utf8_text("ok é\n".as_bytes().to_vec()).unwrap(), "ok é\n");
    }

    #[test]
    fn a_truncated_sequence_at_the_end_is_placed_at_its_lead_byte() {
        // 0xC3 starts a two-byte sequence that never ends.
        let at = utf8_text(b"x\nab\xC3".to_vec()).unwrap_err();
        assert_eq!((at.line, at.column, at.byte), (2, 3, 0xC3));
    }
}
