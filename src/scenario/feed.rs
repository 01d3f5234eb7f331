//! Feeder files: per-user data for `{{feed.COLUMN}}` placeholders, read from CSV (a header
//! row, then one row per user) or JSON lines (one object per line).
//!
//! Read when a scenario loads (so a malformed row is a scenario problem, named by the data
//! file's line) and again by a run whose plan came from a file (plans never store rows).

use crate::model::FeedFormat;

/// Most rows a feeder may hold: per-user data, not a data set.
pub const MAX_ROWS: usize = 1_000_000;

/// Why a feeder file cannot be used. `line` is 1-based, in the data file.
#[derive(Debug, thiserror::Error)]
pub enum FeedError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {reason}")]
    Row {
        path: String,
        line: u64,
        reason: String,
    },
    #[error("{path}: {reason}")]
    File { path: String, reason: String },
    /// The file is not UTF-8: where its first bad byte is.
    #[error("{path}:{at}; a feeder file must be UTF-8")]
    NotUtf8 {
        path: String,
        at: crate::model::NotUtf8,
    },
}

/// The columns and rows of a feeder file (each row one value per column).
pub type Table = (Vec<String>, Vec<Vec<String>>);

/// Reads the feeder at `path`.
pub fn read(path: &str, format: FeedFormat) -> Result<Table, FeedError> {
    let bytes = std::fs::read(path).map_err(|source| FeedError::Io {
        path: path.to_string(),
        source,
    })?;
    let text = crate::model::utf8_text(bytes).map_err(|at| FeedError::NotUtf8 {
        path: path.to_string(),
        at,
    })?;
    let (columns, rows) = match format {
        FeedFormat::Csv => csv_table(path, &text)?,
        FeedFormat::Jsonl => jsonl_table(path, &text)?,
    };
    let file_error = |reason: String| FeedError::File {
        path: path.to_string(),
        reason,
    };
    if rows.is_empty() {
        return Err(file_error("no rows: a feeder needs at least one".into()));
    }
    if rows.len() > MAX_ROWS {
        return Err(file_error(format!(
            "{} rows; a feeder holds at most {MAX_ROWS}",
            rows.len()
        )));
    }
    Ok((columns, rows))
}

/// The format a file name implies: `.csv`, or `.jsonl`/`.ndjson`.
pub fn format_of(path: &str) -> Option<FeedFormat> {
    let lower = path.to_ascii_lowercase();
    if lower.ends_with(".csv") {
        Some(FeedFormat::Csv)
    } else if lower.ends_with(".jsonl") || lower.ends_with(".ndjson") {
        Some(FeedFormat::Jsonl)
    } else {
        None
    }
}

fn csv_table(path: &str, text: &str) -> Result<Table, FeedError> {
    let row_error = |line: u64, reason: String| FeedError::Row {
        path: path.to_string(),
        line,
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(text.as_bytes());
    let columns: Vec<String> = reader
        .headers()
        .map_err(|e| row_error(1, csv_reason(&e)))?
        .iter()
        .map(|c| c.trim().to_string())
        .collect();
    check_columns(&columns).map_err(|reason| row_error(1, reason))?;
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, csv::Position::line);
            row_error(line, csv_reason(&e))
        })?;
        rows.push(record.iter().map(str::to_string).collect());
    }
    Ok((columns, rows))
}

fn csv_reason(e: &csv::Error) -> String {
    match e.kind() {
        csv::ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => format!("expected {expected_len} fields (as the header has), found {len}"),
        csv::ErrorKind::Utf8 { .. } => "not UTF-8".into(),
        _ => e.to_string(),
    }
}

fn check_columns(columns: &[String]) -> Result<(), String> {
    for (i, c) in columns.iter().enumerate() {
        if c.is_empty() || c.contains(['{', '}']) || c.chars().any(char::is_whitespace) {
            return Err(format!(
                "column {} is named {c:?}; a column name is non-empty, without spaces or braces",
                i + 1
            ));
        }
        if columns[..i].contains(c) {
            return Err(format!("column {c:?} appears twice"));
        }
    }
    if columns.is_empty() {
        return Err("no columns".into());
    }
    Ok(())
}

fn jsonl_table(path: &str, text: &str) -> Result<Table, FeedError> {
    let row_error = |line: usize, reason: String| FeedError::Row {
        path: path.to_string(),
        line: line as u64 + 1,
        reason,
    };
    let mut columns: Option<Vec<String>> = None;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let value: serde_json::Value =
            serde_json::from_str(line).map_err(|e| row_error(i, format!("not JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(row_error(
                i,
                "expected a JSON object like {\"name\": \"ada\"}".into(),
            ));
        };
        let columns = match &columns {
            Some(c) => c,
            None => {
                let names: Vec<String> = map.keys().cloned().collect();
                check_columns(&names).map_err(|reason| row_error(i, reason))?;
                columns.insert(names)
            }
        };
        let mut row = Vec::with_capacity(columns.len());
        for c in columns {
            match map.get(c) {
                Some(serde_json::Value::String(s)) => row.push(s.clone()),
                Some(other) => row.push(other.to_string()),
                None => {
                    let reason = format!("no {c:?} (the first line's keys are the columns)");
                    return Err(row_error(i, reason));
                }
            }
        }
        rows.push(row);
    }
    Ok((columns.unwrap_or_default(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str, name: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path.display().to_string())
    }

    #[test]
    fn csv_and_json_lines_read_into_columns_and_rows() {
        let (_d, path) = file("name,pw\nada,\"a,b\"\nbob,x\n", "u.csv");
        let (columns, rows) = read(&path, FeedFormat::Csv).unwrap();
        assert_eq!(columns, ["name", "pw"]);
        assert_eq!(rows, [vec!["ada", "a,b"], vec!["bob", "x"]]);
        let (_d, path) = file(
            "{\"name\": \"ada\", \"n\": 1}\n\n{\"n\": 2, \"name\": \"bob\"}\n",
            "u.jsonl",
        );
        let (columns, rows) = read(&path, FeedFormat::Jsonl).unwrap();
        assert_eq!(columns, ["name", "n"]);
        assert_eq!(rows, [vec!["ada", "1"], vec!["bob", "2"]]);
    }

    #[test]
    fn malformed_rows_name_their_line() {
        let (_d, path) = file("name,pw\nada,1\nbob\n", "u.csv");
        let e = read(&path, FeedFormat::Csv).unwrap_err().to_string();
        assert!(
            e.ends_with("u.csv:3: expected 2 fields (as the header has), found 1"),
            "{e}"
        );
        let (_d, path) = file("{\"name\": \"ada\"}\n{\"nme\": \"bob\"}\n", "u.jsonl");
        let e = read(&path, FeedFormat::Jsonl).unwrap_err().to_string();
        assert!(
            e.ends_with("u.jsonl:2: no \"name\" (the first line's keys are the columns)"),
            "{e}"
        );
        let (_d, path) = file("{\"name\": \"ada\"}\n[1]\n", "u.jsonl");
        assert!(read(&path, FeedFormat::Jsonl)
            .unwrap_err()
            .to_string()
            .contains("u.jsonl:2: expected a JSON object"));
        let (_d, path) = file("name,name\n1,2\n", "u.csv");
        assert!(read(&path, FeedFormat::Csv)
            .unwrap_err()
            .to_string()
            .contains("u.csv:1: column \"name\" appears twice"));
        let (_d, path) = file("name\n", "u.csv");
        assert!(read(&path, FeedFormat::Csv)
            .unwrap_err()
            .to_string()
            .contains("no rows"));
    }
}
