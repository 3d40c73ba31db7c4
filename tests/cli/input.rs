//! Reading the input: the CSV dialect, header matching, ids, flags and reasons, duplicates,
//! invalid rows, standard input, and the `validate` command.

use std::sync::atomic::Ordering;

use crate::support::*;

/// `apply` against `sim` sending every valid row: these tests are about reading rows, so
/// every row is sent, as it was before apply compared rows with the state.
fn apply_every_row<'w>(sim: &RunningSimulator) -> Invocation<'w> {
    Apply::on(sim).args(["--resend"])
}

#[test]
fn bom_crlf_and_quoted_fields_with_delimiters_quotes_and_newlines() {
    let csv = "\u{feff}id,serviceAccount,serviceAccountReason\r\n\
               1,true,\"Deploy role, prod\"\r\n\
               2,true,\"said \"\"bot\"\"\"\r\n\
               3,true,\"two\r\nlines\"\r\n\
               4,false,plain\r\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim).input(csv).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "updated".into()),
            (3, "updated".into()),
            (4, "updated".into()),
            (6, "updated".into()),
        ],
        "a record's line is where it starts; the quoted newline moves line 5 to 6"
    );
    assert_eq!(line(&rows, 2)["reason"], "Deploy role, prod");
    assert_eq!(line(&rows, 3)["reason"], "said \"bot\"");
    // Control characters but tab and line feed are written escaped in every file.
    assert_eq!(line(&rows, 4)["reason"], "two\\u{d}\nlines");
}

#[test]
fn blank_lines_are_ignored_but_still_counted() {
    let csv = "id,flag,reason\n\n1,true,a\n   \n\n2,false,b\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim).input(csv).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![(3, "updated".into()), (6, "updated".into())]
    );
}

#[test]
fn rows_whose_cells_are_all_empty_are_ignored_like_blank_lines() {
    // As Excel and Google Sheets end their exports.
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input("id,flag,reason\n1,true,a\n,,\n , ,\n\"\",,\n2,true,b\n,,\n")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![(2, "updated".into()), (6, "updated".into())]
    );
}

#[test]
fn headers_match_ignoring_case_spaces_underscores_and_dashes_in_any_order() {
    let csv = "Reviewer,Service Account Reason,SERVICE_ACCOUNT,I-D,Notes\n\
               dana,CI runner,yes,5,x@example.com\n";
    // "I-D" normalizes to "id"; extra columns are ignored.
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim).input(csv).run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = line(&rows, 2);
    assert_eq!(
        (
            row["id"].as_str(),
            row["service_account"].as_str(),
            row["reason"].as_str()
        ),
        ("5", "true", "CI runner")
    );
    assert_eq!(row["outcome"], "updated");
}

#[test]
fn column_options_and_delimiter_override_the_defaults() {
    let csv = "identity;is_bot;why;serviceAccount\n7;n;left the company;true\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(csv)
        .args(["--id-column", "identity", "--flag-column", "Is Bot"])
        .args(["--reason-column", "why", "--delimiter", ";"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = line(&rows, 2);
    assert_eq!(row["id"], "7");
    assert_eq!(
        row["service_account"], "false",
        "--flag-column wins over serviceAccount"
    );
    assert_eq!(row["reason"], "left the company");
}

#[test]
fn ids_are_decimal_integers_from_1_to_2_pow_53_minus_1() {
    let csv = "id,flag,reason\n\
               \x20 8 ,true,spaces around\n\
               9007199254740991,true,largest\n\
               9007199254740992,true,too large\n\
               0,true,zero\n\
               -4,true,negative\n\
               1.5,true,not whole\n\
               ,true,empty\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(csv)
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let outcomes = outcomes(&rows);
    assert_eq!(outcomes[0], (2, "updated".into()));
    // The simulator has 1000 identities: a valid but unknown id is the API's 404.
    assert_eq!(outcomes[1], (3, "failed".into()));
    assert_eq!(line(&rows, 3)["http_status"], "404");
    for n in 4..=8 {
        let row = line(&rows, n);
        assert_eq!(row["outcome"], "invalid", "line {n}");
        assert!(
            row["error"].contains("column id"),
            "line {n}: {}",
            row["error"]
        );
        assert_eq!(row["attempts"], "0");
    }
}

#[test]
fn flags_accept_true_false_yes_no_y_n_1_0_in_any_case() {
    let mut csv = String::from("id,flag,reason\n");
    let words = [
        "true", "FALSE", "Yes", "no", "Y", "n", "1", " 0 ", "maybe", "t",
    ];
    for (i, word) in words.iter().enumerate() {
        csv.push_str(&format!("{},{word},r\n", i + 1));
    }
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(&csv)
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let expected = [
        "true", "false", "true", "false", "true", "false", "true", "false",
    ];
    for (i, flag) in expected.iter().enumerate() {
        let row = line(&rows, i as u64 + 2);
        assert_eq!(row["service_account"], *flag);
        assert_eq!(row["outcome"], "updated");
    }
    for n in [10, 11] {
        let row = line(&rows, n);
        assert_eq!(row["outcome"], "invalid");
        assert_eq!(row["service_account"], "", "true, false or empty");
        assert!(row["error"].contains("column flag"), "{}", row["error"]);
    }
}

#[test]
fn reasons_are_trimmed_required_and_at_most_30000_utf16_units() {
    let exactly = "😀".repeat(15_000); // 30000 UTF-16 code units
    let over = format!("{exactly}a");
    let csv = format!(
        "id,flag,reason\n1,true,  padded  \n2,true,{exactly}\n3,true,{over}\n4,true,\n5,false,   \n"
    );
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(&csv)
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["reason"], "padded");
    assert_eq!(
        line(&rows, 3)["outcome"],
        "updated",
        "30000 units is allowed"
    );
    let too_long = line(&rows, 4);
    assert_eq!(too_long["outcome"], "invalid");
    assert!(too_long["error"].contains("30001"), "{}", too_long["error"]);
    assert_eq!(line(&rows, 5)["outcome"], "invalid");
    // A blank `false` row is fine while its identity is unmarked: nothing to send.
    assert_eq!(line(&rows, 6)["outcome"], "unchanged");
    assert_eq!(sim.stats.applied.load(Ordering::Relaxed), 2);
}

#[test]
fn reason_option_fills_blank_cells_and_an_absent_column() {
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input("id,flag,reason\n1,true,own reason\n2,true,\n")
        .args(["--reason", "Q3 review"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["reason"], "own reason");
    assert_eq!(line(&rows, 3)["reason"], "Q3 review");

    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input("id,flag\n1,true\n")
        .args(["--reason", "Q3 review"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["reason"], "Q3 review");
}

#[test]
fn identical_duplicates_are_sent_once_and_conflicts_invalidate_every_row() {
    let csv = "id,flag,reason\n\
               1,true,same\n\
               1,yes,  same \n\
               2,true,one\n\
               2,true,other\n\
               2,true,one\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(csv)
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "updated".into()),
            (3, "duplicate".into()),
            (4, "invalid".into()),
            (5, "invalid".into()),
            (6, "invalid".into()),
        ]
    );
    assert!(
        line(&rows, 5)["error"].contains("lines 4, 5, 6"),
        "{}",
        line(&rows, 5)["error"]
    );
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 1);
}

#[test]
fn wrong_field_counts_name_the_line_and_the_column() {
    let csv = "id,flag,reason\n1,true,ok\n2,true\n3,true,a,b\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(csv)
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 1);
    assert_eq!(line(&rows, 2)["outcome"], "updated");
    assert!(line(&rows, 3)["error"].contains("column reason: missing"));
    assert!(line(&rows, 4)["error"].contains("column 4 (no header)"));
}

#[test]
fn invalid_rows_block_the_run_unless_skip_invalid() {
    let csv = "id,flag,reason\n1,true,ok\n2,perhaps,bad flag\n3,true,ok\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim).input(csv).run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("line 3, column flag"), "{}", run.stderr);
    // The state is read, to list the rows invalid against it too; nothing is sent.
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0, "nothing sent");
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "not_attempted".into()),
            (3, "invalid".into()),
            (4, "not_attempted".into()),
        ],
        "the report still has every row"
    );

    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim)
        .input(csv)
        .args(["--skip-invalid"])
        .run();
    assert_eq!(run.code, 1);
    assert_eq!(outcomes(&rows)[0], (2, "updated".into()));
    assert_eq!(sim.stats.applied.load(Ordering::Relaxed), 2);
}

#[test]
fn missing_columns_and_unreadable_files_exit_2_before_anything_is_sent() {
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim).input("id,reason\n1,x\n").run();
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("no service-account flag column"),
        "{}",
        run.stderr
    );
    assert!(rows.is_empty());
    assert_eq!(sim.stats.requests.load(Ordering::Relaxed), 0);

    let run = Validate::offline().file("nope.csv").run();
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("nope.csv"), "{}", run.stderr);
}

#[test]
fn standard_input_is_read_and_its_report_gets_a_stdin_name() {
    let sim = simulator(|_| {});
    let run = apply_every_row(&sim)
        .stdin("id,flag,reason\n1,true,a\n2,false,b\n")
        .no_report()
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = std::fs::read_dir(run.work.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            name.starts_with("stdin.report.") && name.ends_with(".csv")
        })
        .expect("default report name for standard input");
    assert_eq!(read_report(&report).len(), 2);
}

#[test]
fn validate_needs_no_token_or_network_and_lists_every_problem() {
    let run = Validate::offline()
        .input("id,flag,reason\n1,true,a\nx,true,b\n3,maybe,c\n1,false,d\n")
        .run();
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{}", run.stdout);
    assert!(lines[0].starts_with("line 2, column id: id 1 appears on lines 2, 5"));
    assert!(lines[1].starts_with("line 3, column id:"));
    assert!(lines[2].starts_with("line 4, column flag:"));
    assert!(lines[3].starts_with("line 5, column id:"));

    let run = Validate::offline()
        .input("id,flag,reason\n1,true,a\n")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn validate_lists_every_problem_of_a_large_input() {
    let mut csv = String::from("id,flag,reason\n");
    for id in 1..=3000u64 {
        let flag = if id % 500 == 0 { "maybe" } else { "true" };
        csv.push_str(&format!(
            "{id},{flag},a reason long enough to fill the buffers {id}\n"
        ));
    }
    let run = Validate::offline().input(csv).run();
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 6, "{}", run.stdout);
    assert!(
        lines[5].starts_with("line 3001, column flag"),
        "{}",
        lines[5]
    );
}

#[test]
fn an_endless_input_is_cut_at_the_copy_limit_and_named() {
    let zero = Validate::offline()
        .file("/dev/zero")
        .args(["--max-input-mib", "1"])
        .run();
    assert_eq!(zero.code, 2, "{}", zero.stderr);
    assert!(zero.stderr.contains("larger than 1 MiB"), "{}", zero.stderr);
    assert!(zero.stderr.contains("private copy in"), "{}", zero.stderr);

    let endless = "id,flag,reason\n".to_owned() + &"1,true,x\n".repeat(300_000);
    let piped = Validate::offline()
        .stdin(endless.clone())
        .args(["--max-input-mib", "1"])
        .run();
    assert_eq!(piped.code, 2, "{}", piped.stderr);
    assert!(piped.stderr.contains("standard input"), "{}", piped.stderr);

    // A regular file is read in place, whatever its size: no copy, no limit.
    let in_place = Validate::offline()
        .input(endless)
        .args(["--max-input-mib", "1"])
        .run();
    assert_eq!(in_place.code, 0, "{}", in_place.stderr);
    assert!(
        in_place.stderr.contains("300000 rows"),
        "{}",
        in_place.stderr
    );
}

#[test]
fn a_quote_never_closed_is_an_invalid_row_and_nothing_is_sent() {
    // Without the check, 152 and 153 would vanish inside 151's reason.
    let csv =
        "id,serviceAccount,reason\n151,true,\"build bot\n152,true,deploy bot\n153,false,human\n";
    let sim = simulator(|_| {});
    let Finished { run, rows, .. } = apply_every_row(&sim).input(csv).run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("never closed"), "{}", run.stderr);
    assert_eq!(outcomes(&rows), vec![(2, "invalid".into())]);
    assert_eq!(sim.stats.puts.load(std::sync::atomic::Ordering::Relaxed), 0);
}
