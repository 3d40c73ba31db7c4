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
    let run = on_sim(&sim, &work, &["apply", "in.txt", "--report", "r.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(rows[0]["reason"], "CI runner, café");
    let validate = drata(work.dir.path(), &["validate", "in.txt"], &[]);
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
            drata(work.dir.path(), args, &[])
        } else {
            on_sim(&sim, &work, args)
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
    let run = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--encoding",
            "windows-1252",
            "--report",
            "r2.csv",
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(read_report(&work.path("r2.csv"))[1]["reason"], "café");
}

#[test]
fn the_delimiter_is_read_from_the_header() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // European Excel: semicolons, decimal commas in the text.
    work.write("in.csv", "id;serviceAccount;reason\n5;yes;CI, nightly\n");
    let run = on_sim(&sim, &work, &["apply", "in.csv", "--report", "r.csv"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("(delimiter: ';')"), "{}", run.stderr);
    assert_eq!(read_report(&work.path("r.csv"))[0]["reason"], "CI, nightly");

    work.write("tie.csv", "id;flag,reason\n5;yes,x\n");
    let tie = drata(work.dir.path(), &["validate", "tie.csv"], &[]);
    assert_eq!(tie.code, 2, "{}", tie.stderr);
    assert!(tie.stderr.contains("pass --delimiter"), "{}", tie.stderr);
    let named = drata(
        work.dir.path(),
        &["validate", "tie.csv", "--delimiter", ";"],
        &[],
    );
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
    let plain = on_sim(&sim, &work, &["apply", "in.csv", "--report", "a.csv"]);
    assert_eq!(
        plain.code, 2,
        "without --reconcile every row needs a reason: {}",
        plain.stderr
    );
    let reconcile = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--reconcile",
            "--reason-if-true",
            "CI",
            "--report",
            "b.csv",
        ],
    );
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
    let both = on_sim(
        &sim,
        &work,
        &[
            "apply",
            "in.csv",
            "--reconcile",
            "--reason-if-true",
            "CI",
            "--reason-if-false",
            "Human after review",
            "--report",
            "c.csv",
        ],
    );
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
