//! Files as spreadsheets export them: other encodings, other delimiters.

use std::sync::atomic::Ordering;

use crate::support::*;

fn utf16le_with_bom(text: &str) -> Vec<u8> {
    [0xff, 0xfe]
        .into_iter()
        .chain(text.encode_utf16().flat_map(u16::to_le_bytes))
        .collect()
}

#[test]
fn utf16_with_a_byte_order_mark_is_decoded() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // Excel's "Unicode text": UTF-16 LE with a BOM, tab-separated.
    work.write_bytes(
        "in.txt",
        &utf16le_with_bom("id\tserviceAccount\treason\r\n5\tyes\tCI runner, café\r\n"),
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.txt")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(rows[0]["reason"], "CI runner, café");
    let validate = Validate::offline().within(&work).file("in.txt").run();
    assert_eq!(validate.code, 0, "{}", validate.stderr);
}

#[test]
fn windows_1252_is_never_sent_unless_named() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // Excel's default "CSV": Windows-1252, where é is the byte 0xE9.
    work.write_bytes(
        "in.csv",
        b"id,flag,reason\r\n1,true,ok\r\n2,true,caf\xe9\r\n",
    );
    for args in [
        &["validate", "in.csv"][..],
        &["plan", "in.csv", "--report", "p.csv"],
        &["apply", "in.csv", "--report", "r.csv"],
    ] {
        let command = args[0];
        let run = if command == "validate" {
            Invocation::new(args, None).within(&work).run()
        } else {
            Invocation::new(args, Some((&sim).into()))
                .within(&work)
                .run()
        };
        assert_eq!(run.code, 2, "{command}: {}", run.stderr);
        assert!(
            run.stderr.contains("line 3 is not UTF-8")
                && run.stderr.contains("CSV UTF-8")
                && run.stderr.contains("--encoding windows-1252"),
            "{command}: {}",
            run.stderr
        );
    }
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        0,
        "nothing was sent"
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--encoding", "windows-1252", "--report", "r2.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        line(&read_report(&work.path("r2.csv")), 3)["reason"],
        "café"
    );
}

#[test]
fn the_delimiter_is_read_from_the_header() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // European Excel: semicolons, decimal commas in the text.
    work.write("in.csv", "id;serviceAccount;reason\n5;yes;CI, nightly\n");
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("(delimiter: ';')"), "{}", run.stderr);
    assert_eq!(read_report(&work.path("r.csv"))[0]["reason"], "CI, nightly");

    work.write("tie.csv", "id;flag,reason\n5;yes,x\n");
    let tie = Validate::offline().within(&work).file("tie.csv").run();
    assert_eq!(tie.code, 2, "{}", tie.stderr);
    assert!(tie.stderr.contains("pass --delimiter"), "{}", tie.stderr);
    let named = Validate::offline()
        .within(&work)
        .file("tie.csv")
        .args(["--delimiter", ";"])
        .run();
    assert!(
        !named.stderr.contains("pass --delimiter"),
        "the option decides: {}",
        named.stderr
    );
}

#[test]
fn reasons_default_per_flag_and_false_rows_need_none_while_nothing_changes() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // 7 is already a service account, 1 and 2 are not.
    work.write("in.csv", "id,flag,reason\n1,false,\n2,true,\n7,false,\n");
    let plain = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "a.csv"])
        .run();
    assert_eq!(
        plain.code, 2,
        "without --reconcile every row needs a reason: {}",
        plain.stderr
    );
    let reconcile = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--reason-if-true", "CI", "--report", "b.csv"])
        .run();
    assert_eq!(
        reconcile.code, 2,
        "id 7 would be unmarked with no reason: {}",
        reconcile.stderr
    );
    assert!(
        reconcile
            .stderr
            .contains("mark id 7 as not a service account"),
        "{}",
        reconcile.stderr
    );
    assert_eq!(
        sim.stats.puts.load(std::sync::atomic::Ordering::Relaxed),
        0,
        "nothing was sent"
    );
    let both = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--reason-if-true", "CI"])
        .args([
            "--reason-if-false",
            "Human after review",
            "--report",
            "c.csv",
        ])
        .run();
    assert_eq!(both.code, 0, "{}", both.stderr);
    let rows = read_report(&work.path("c.csv"));
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "unchanged".into()),
            (3, "updated".into()),
            (4, "updated".into()),
        ]
    );
    assert_eq!(line(&rows, 3)["reason"], "CI");
    assert_eq!(line(&rows, 4)["reason"], "Human after review");
}

/// A workbook as a reviewer leaves it: two empty rows above the header, ids as numbers,
/// flags as booleans, a second sheet.
fn review_workbook(path: &std::path::Path) {
    use rust_xlsxwriter::Workbook;
    let mut workbook = Workbook::new();
    let notes = workbook.add_worksheet();
    notes.set_name("Notes").unwrap();
    notes.write_string(0, 0, "read me").unwrap();
    let review = workbook.add_worksheet();
    review.set_name("Review").unwrap();
    for (column, header) in ["Id", "Service Account?", "Reason"].iter().enumerate() {
        review.write_string(2, column as u16, *header).unwrap();
    }
    review.write_number(3, 0, 106.0).unwrap();
    review.write_boolean(3, 1, true).unwrap();
    review.write_string(3, 2, "Terraform runner").unwrap();
    review.write_number(4, 0, 2.0).unwrap();
    review.write_string(4, 1, "maybe").unwrap();
    review.write_string(4, 2, "unsure").unwrap();
    review.write_number(5, 0, 3.0).unwrap();
    review.write_boolean(5, 1, false).unwrap();
    review.write_string(5, 2, "A person").unwrap();
    workbook.save(path).unwrap();
}

#[test]
fn a_workbook_is_read_with_its_own_row_numbers() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    review_workbook(&work.path("review.xlsx"));
    let first = Validate::offline().within(&work).file("review.xlsx").run();
    assert_eq!(
        first.code, 2,
        "the first sheet has no id column: {}",
        first.stderr
    );
    assert!(first.stderr.contains("no id column"), "{}", first.stderr);
    let sheet = ["--sheet", "Review"];
    let run = Validate::offline()
        .within(&work)
        .file("review.xlsx")
        .args(sheet)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("line 5, column Service Account?: \"maybe\" is not a flag"),
        "the sheet's row 5: {}",
        run.stdout
    );
    let Finished {
        run: applied, rows, ..
    } = Apply::on(&sim)
        .within(&work)
        .file("review.xlsx")
        .args(["--skip-invalid"])
        .args(sheet)
        .run();
    assert_eq!(applied.code, 1, "{}", applied.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (4, "updated".into()),
            (5, "invalid".into()),
            // A typed FALSE, read as false: the simulator's id 3 is already unmarked.
            (6, "unchanged".into())
        ]
    );
    assert_eq!(
        line(&rows, 4)["id"],
        "106",
        "the number 106.0 is the id 106"
    );
    assert_eq!(sim.applied().len(), 1);
    let header = Validate::offline()
        .within(&work)
        .file("review.xlsx")
        .args(["--sheet", "Review", "--id-column", "Nope"])
        .run();
    assert_eq!(header.code, 2);
    assert!(
        header.stderr.contains("review.xlsx: line 3 of sheet \"Review\" (the workbook has \"Notes\", \"Review\"): no id column"),
        "{}",
        header.stderr
    );
    let missing = Validate::offline()
        .within(&work)
        .file("review.xlsx")
        .args(["--sheet", "Nope"])
        .run();
    assert_eq!(missing.code, 2);
    assert!(
        missing.stderr.contains("\"Notes\", \"Review\""),
        "{}",
        missing.stderr
    );
}

#[test]
fn an_exported_workbook_round_trips_through_apply() {
    let sim = simulator(|c| c.identities = 60);
    let work = Workdir::new();
    let export = Export::on(&sim)
        .within(&work)
        .args(["-o", "review.xlsx"])
        .run();
    assert_eq!(export.code, 0, "{}", export.stderr);
    let apply = Apply::on(&sim)
        .within(&work)
        .file("review.xlsx")
        .args(["--reconcile", "--report", "r.csv"])
        .run();
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    assert_eq!(sim.stats.puts.load(std::sync::atomic::Ordering::Relaxed), 0);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(rows.len(), 60);
    assert!(rows.iter().all(|r| r["outcome"] == "unchanged"), "{rows:?}");
}

#[test]
fn three_rows_flipped_in_a_workbook_send_exactly_three_puts() {
    use rust_xlsxwriter::Workbook;
    let sim = simulator(|c| c.identities = 60);
    let work = Workdir::new();
    let export = Export::on(&sim)
        .within(&work)
        .args(["-o", "review.csv"])
        .run();
    assert_eq!(export.code, 0, "{}", export.stderr);
    let mut reader = csv::Reader::from_path(work.path("review.csv")).unwrap();
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    for (column, header) in ["id", "serviceAccount", "serviceAccountReason"]
        .iter()
        .enumerate()
    {
        sheet.write_string(0, column as u16, *header).unwrap();
    }
    let flips = [3u64, 7, 10];
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        let id: u64 = record[0].parse().unwrap();
        let row = i as u32 + 1;
        let flag = (&record[1] == "true") != flips.contains(&id);
        sheet.write_number(row, 0, id as f64).unwrap();
        sheet.write_boolean(row, 1, flag).unwrap();
        sheet.write_string(row, 2, &record[2]).unwrap();
    }
    workbook.save(work.path("reviewed.xlsx")).unwrap();
    let apply = Apply::on(&sim)
        .within(&work)
        .file("reviewed.xlsx")
        .args(["--reconcile", "--reason-if-true", "Q4 review"])
        .args(["--reason-if-false", "Q4 review: a person"])
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(apply.code, 0, "{}", apply.stderr);
    let mut applied: Vec<u64> = sim.applied().into_keys().collect();
    applied.sort_unstable();
    assert_eq!(applied, flips, "exactly the three flipped rows");
}
