//! Plain-text tables for people: aligned columns with a header, and field/value lists for
//! one resource. JSON values are shown compactly; `null` and absent values as `-`.

use serde_json::Value;

/// Spaces between two columns.
const COLUMN_GAP: usize = 2;

/// Rows under a header, each column as wide as its widest cell.
pub struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Vec<String>) {
        self.rows.push(row);
    }

    /// The table as lines of text, the last column unpadded so no line ends in spaces.
    pub fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|name| (*name).to_owned()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let mut widths = vec![0; self.header.len()];
        for line in &lines {
            for (width, cell) in widths.iter_mut().zip(line.iter()) {
                *width = (*width).max(cell.chars().count());
            }
        }

        let mut text = String::new();
        for line in lines {
            let last = line.len().saturating_sub(1);
            for (column, cell) in line.iter().enumerate() {
                text.push_str(cell);
                if column < last {
                    let padding = widths[column] - cell.chars().count() + COLUMN_GAP;
                    text.extend(std::iter::repeat_n(' ', padding));
                }
            }
            text.push('\n');
        }
        text
    }
}

/// One resource as `field  value` lines, fields aligned.
pub fn fields(pairs: &[(&str, String)]) -> String {
    let width = pairs.iter().map(|(name, _)| name.len()).max().unwrap_or(0);
    pairs
        .iter()
        .map(|(name, value)| format!("{name:width$}{:COLUMN_GAP$}{value}\n", ""))
        .collect()
}

/// A JSON value as a table cell: strings as they are, `null` as `-`, anything else as
/// compact JSON.
pub fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn columns_align_on_their_widest_cell_and_lines_end_without_spaces() {
        let mut table = Table::new(&["ID", "STATE"]);
        table.push(vec!["a-long-id".into(), "scheduled".into()]);
        table.push(vec!["b".into(), "-".into()]);
        assert_eq!(
            table.render(),
            "ID         STATE\na-long-id  scheduled\nb          -\n"
        );
    }

    #[test]
    fn fields_align_their_values() {
        let text = fields(&[("id", "t-1".into()), ("state", "paused".into())]);
        assert_eq!(text, "id     t-1\nstate  paused\n");
    }

    #[test]
    fn cells_show_json_compactly_and_null_as_a_dash() {
        assert_eq!(cell(&json!(null)), "-");
        assert_eq!(cell(&json!("x")), "x");
        assert_eq!(cell(&json!({"order": 42})), "{\"order\":42}");
    }
}
