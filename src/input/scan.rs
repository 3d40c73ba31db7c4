//! The scan, the first read of the input: every row validated, ids indexed to tell
//! duplicates from conflicts.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::Arc;

use super::{
    InputError, InputFile, InputOptions, Problem, Record, MAX_PRESIZED_IDS, PROBLEMS_SHOWN,
};
use crate::model::{Access, Lookup, Row, RowId};

/// What the reads after the scan do with a valid row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RowStatus<'a> {
    /// The first row of its id: send it.
    Send,
    /// Same id, flag and reason as an earlier row.
    Duplicate { first_line: u64 },
    /// Same id as other rows with a different flag, reason or link: every such row is invalid.
    Conflict { lines: &'a [u64] },
}

#[derive(Debug, Clone, Copy)]
struct IdEntry {
    first_line: u64,
    /// A 63-bit digest of (flag, reason, link, access toggles) in the high bits; bit 0 set on a conflict.
    /// Packed so an entry is 24 bytes with its key: memory is per distinct id.
    digest_and_conflict: u64,
}

impl IdEntry {
    fn conflict(&self) -> bool {
        self.digest_and_conflict & 1 == 1
    }
}

/// What the scan learned: counts, the first problems, and enough about every id to
/// tell duplicates from conflicts.
#[derive(Debug, Default)]
pub(crate) struct InputScan {
    pub(crate) rows: u64,
    pub(crate) invalid_rows: u64,
    /// Valid rows named by username or email, not resolved (offline).
    pub(crate) unresolved_rows: u64,
    /// The largest id of a valid row.
    pub(crate) max_id: u64,
    pub(crate) problem_count: u64,
    /// The first [`PROBLEMS_SHOWN`] problems in line order, conflicts included.
    pub(crate) first_problems: Vec<Problem>,
    /// The id column's name as written in the header, for conflict problems.
    pub(crate) id_column: String,
    ids: HashMap<u64, IdEntry>,
    /// Lines of every id seen more than once; after the scan, only conflicting ids.
    repeated_lines: HashMap<u64, Vec<u64>>,
    /// Identities that invalid rows name: a person's decision, if unreadable, still keeps
    /// a rule off them.
    named_by_invalid: std::collections::HashSet<u64>,
    hasher: RandomState,
}

impl InputScan {
    pub(crate) fn valid_rows(&self) -> u64 {
        self.rows - self.invalid_rows
    }

    fn digest(&self, row: &Row) -> u64 {
        // Two rows that link one identity to different people, or set one of its access
        // toggles differently, conflict too.
        let link = row.link.as_ref().map(|link| &link.link);
        let access: Vec<(Access, bool)> = { row.access.iter() }
            .map(|asked| (asked.access, asked.on))
            .collect();
        self.hasher
            .hash_one((row.flag, row.reason.as_str(), link, access))
    }

    fn add_valid(&mut self, row: &Row) {
        let RowId::Id(id) = row.id else {
            self.unresolved_rows += 1;
            return;
        };
        self.max_id = self.max_id.max(id);
        let digest = self.digest(row) & !1;
        match self.ids.get_mut(&id) {
            None => {
                self.ids.insert(
                    id,
                    IdEntry {
                        first_line: row.line,
                        digest_and_conflict: digest,
                    },
                );
            }
            Some(entry) => {
                if entry.digest_and_conflict & !1 != digest {
                    entry.digest_and_conflict |= 1;
                }
                let first_line = entry.first_line;
                self.repeated_lines
                    .entry(id)
                    .or_insert_with(|| vec![first_line])
                    .push(row.line);
            }
        }
    }

    fn finish(&mut self, mut row_problems: Vec<Problem>) {
        let ids = &self.ids;
        self.repeated_lines
            .retain(|id, _| ids.get(id).is_some_and(IdEntry::conflict));
        let mut conflict_problems = Vec::new();
        for (id, lines) in &self.repeated_lines {
            self.invalid_rows += lines.len() as u64;
            self.problem_count += lines.len() as u64;
            for &line in lines.iter().take(PROBLEMS_SHOWN) {
                conflict_problems.push(Problem {
                    line,
                    column: self.id_column.clone(),
                    message: conflict_message(*id, lines),
                });
            }
        }
        row_problems.append(&mut conflict_problems);
        row_problems.sort_by_key(|p| p.line);
        row_problems.truncate(PROBLEMS_SHOWN);
        self.first_problems = row_problems;
    }

    /// Where a valid row stands among the rows of its id.
    pub(crate) fn status(&self, row: &Row) -> RowStatus<'_> {
        let RowId::Id(id) = row.id else {
            return RowStatus::Send;
        };
        if let Some(lines) = self.repeated_lines.get(&id) {
            return RowStatus::Conflict { lines };
        }
        match self.ids.get(&id) {
            Some(entry) if entry.first_line != row.line => RowStatus::Duplicate {
                first_line: entry.first_line,
            },
            _ => RowStatus::Send,
        }
    }

    /// True when a row of the input names the identity: it wins over any rule.
    pub(crate) fn holds(&self, id: u64) -> bool {
        self.ids.contains_key(&id)
            || self.repeated_lines.contains_key(&id)
            || self.named_by_invalid.contains(&id)
    }

    /// Rows that will be sent: one per distinct, non-conflicting id.
    pub(crate) fn sendable_ids(&self) -> u64 {
        self.ids.values().filter(|e| !e.conflict()).count() as u64
    }
}

/// The message of a conflicting row: the id and every line that names it.
pub(crate) fn conflict_message(id: u64, lines: &[u64]) -> String {
    let shown: Vec<String> = lines.iter().take(10).map(u64::to_string).collect();
    let more = if lines.len() > 10 {
        format!(" and {} more", lines.len() - 10)
    } else {
        String::new()
    };
    format!(
        "id {id} appears on lines {}{more} with different service-account flags, reasons or links",
        shown.join(", ")
    )
}

/// The scan and the read after it over raw bytes, as `apply` makes them: every record's line and whether
/// it can be sent (a first occurrence of a valid, non-conflicting id). For property
/// tests and fuzzing; `Err` only when the input cannot be read as CSV with a header.
pub(crate) fn check_bytes(
    data: &[u8],
    options: &InputOptions,
) -> Result<(InputScan, Vec<(u64, bool)>), InputError> {
    let input =
        InputFile::from_reader(&mut &data[..], "fuzz").map_err(|source| InputError::Io {
            path: "fuzz".to_owned(),
            source,
        })?;
    let scan = scan(&input, options, None)?;
    let mut reader = input.reader(options, None)?;
    let mut outcomes = Vec::new();
    while let Some(record) = reader.next_record() {
        let sendable = match record? {
            Record::Valid(row) => scan.status(&row) == RowStatus::Send,
            Record::Invalid(_) => false,
        };
        outcomes.push((outcomes.len() as u64, sendable));
    }
    Ok((scan, outcomes))
}

/// The first read: validates every row and indexes ids.
pub(crate) fn scan(
    input: &InputFile,
    options: &InputOptions,
    lookup: Option<Arc<dyn Lookup>>,
) -> Result<InputScan, InputError> {
    let mut reader = input.reader(options, lookup)?;
    // Sized once from the line count (an upper bound on ids), so the table never
    // doubles while holding its old copy; untouched capacity costs no memory.
    let mut result = InputScan {
        id_column: reader.id_column().to_owned(),
        ids: HashMap::with_capacity(input.line_count().min(MAX_PRESIZED_IDS) as usize),
        ..InputScan::default()
    };
    let mut row_problems = Vec::new();
    while let Some(record) = reader.next_record() {
        result.rows += 1;
        match record? {
            Record::Valid(row) => result.add_valid(&row),
            Record::Invalid(invalid) => {
                result.invalid_rows += 1;
                result.named_by_invalid.extend(invalid.named);
                result.problem_count += invalid.problems.len() as u64;
                let room = PROBLEMS_SHOWN.saturating_sub(row_problems.len());
                row_problems.extend(invalid.problems.into_iter().take(room));
            }
        }
    }
    result.finish(row_problems);
    Ok(result)
}

#[cfg(test)]
mod hostile_input {
    use super::*;
    use crate::input::records::MAX_RECORD_BYTES;
    use crate::input::InputSource;
    use proptest::prelude::*;

    fn options(delimiter: u8) -> InputOptions {
        InputOptions::new(InputSource::Stdin, delimiter)
    }

    /// Every record of the second read has exactly one outcome, and the scan counted the same
    /// records; lines only go forward.
    fn check(data: &[u8], delimiter: u8) {
        let options = options(delimiter);
        let Ok((scan, outcomes)) = check_bytes(data, &options) else {
            return;
        };
        assert_eq!(scan.rows, outcomes.len() as u64);
        assert!(scan.invalid_rows <= scan.rows);
        let mut reader = InputFile::from_reader(&mut &data[..], "t")
            .unwrap()
            .reader(&options, None)
            .unwrap();
        let mut last = 1;
        while let Some(Ok(record)) = reader.next_record() {
            assert!(record.line() > last, "line {} after {last}", record.line());
            last = record.line();
        }
    }

    fn csv_like() -> impl Strategy<Value = Vec<u8>> {
        let cell = prop_oneof![
            Just(b"1".to_vec()),
            Just(b"true".to_vec()),
            Just(b"\"".to_vec()),
            Just(b"\"a,\"\"b\"\"\"".to_vec()),
            Just(b"\r\n".to_vec()),
            Just(b"\n".to_vec()),
            Just(b",".to_vec()),
            Just(vec![0xff, 0xfe]),
            Just("😀".as_bytes().to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
            "[0-9]{1,20}".prop_map(|s| s.into_bytes()),
        ];
        proptest::collection::vec(cell, 0..200).prop_map(|cells| {
            let mut data = b"id,serviceAccount,reason\n".to_vec();
            cells.into_iter().for_each(|c| data.extend(c));
            data
        })
    }

    /// Cases per property: few by default, so that `cargo test --lib` stays a fast loop;
    /// `PROPTEST_CASES` asks for more (CI runs 300, as these tests once always did).
    fn cases(default: u32) -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(default);
        ProptestConfig::with_cases(cases)
    }

    proptest! {
        #![proptest_config(cases(32))]

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..2000)) {
            check(&data, b',');
        }

        #[test]
        fn csv_shaped_noise_never_panics(data in csv_like(), semicolon in any::<bool>()) {
            check(&data, if semicolon { b';' } else { b',' });
        }
    }

    proptest! {
        // Each case is a few thousand columns read three times: a handful shows the width
        // is no problem, the rest is CI's (`PROPTEST_CASES`).
        #![proptest_config(cases(6))]

        #[test]
        fn thousands_of_columns(columns in 1usize..5000, rows in 0usize..5) {
            let mut data = b"id,flag,reason".to_vec();
            for i in 3..columns {
                data.extend(format!(",extra{i}").as_bytes());
            }
            data.push(b'\n');
            for row in 0..rows {
                data.extend(format!("{},true,r", row + 1).as_bytes());
                data.extend(std::iter::repeat_n(b',', columns.saturating_sub(3)));
                data.push(b'\n');
            }
            let (scan, outcomes) = check_bytes(&data, &options(b',')).unwrap();
            prop_assert_eq!(outcomes.len(), rows);
            prop_assert_eq!(scan.invalid_rows, 0);
        }
    }

    #[test]
    fn huge_fields_and_unbalanced_quotes_are_invalid_rows() {
        let mut data = b"id,flag,reason\n1,true,ok\n2,true,".to_vec();
        data.extend(std::iter::repeat_n(b'x', 3 * MAX_RECORD_BYTES));
        // An unclosed quote runs to the end: one record, too large here.
        data.extend(b"\n3,true,\"never closed\n");
        data.extend(std::iter::repeat_n(b'y', 2 * MAX_RECORD_BYTES));
        data.extend(b"\n4,true,ok\n");
        let (scan, outcomes) = check_bytes(&data, &options(b',')).unwrap();
        assert_eq!(outcomes, vec![(0, true), (1, false), (2, false)]);
        assert_eq!(scan.first_problems[0].line, 3);
        assert!(scan.first_problems[0].message.contains("larger than 1 MiB"));
    }
}
