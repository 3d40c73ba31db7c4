//! Reading the current state first: the listing, `plan`, `--reconcile`, `--max-changes`,
//! the undo file, and naming identities by username or email.

use std::sync::atomic::Ordering;

use crate::support::*;

#[test]
fn the_listing_pages_while_pages_come_back_full() {
    // A full page asks for the next one, whatever `total` says: ceil((N + 1) / 50) GETs.
    for (identities, pages) in [(0u64, 1u64), (50, 2), (51, 2), (1000, 21)] {
        let sim = simulator(|c| c.identities = identities);
        let run = Plan::on(&sim)
            .input("id,flag,reason\n1,false,x\n")
            .args(["--report", "p.csv"])
            .run();
        let expected = if identities == 0 { 1 } else { 0 };
        assert_eq!(run.code, expected, "{identities}: {}", run.stderr);
        assert_eq!(
            sim.stats.lists.load(Ordering::Relaxed),
            pages,
            "{identities} identities"
        );
        let rows = run.rows.clone();
        let outcome = if identities == 0 {
            "not_found"
        } else {
            "unchanged"
        };
        assert_eq!(rows[0]["outcome"], outcome);
    }
    // The pages themselves: limit at most 50, page and total as the API sends them.
    let sim = simulator(|c| c.identities = 51);
    let url = format!(
        "http://{}/public/user-identities/infrastructure?page=2&limit=50",
        sim.addr
    );
    let body = runtime().block_on(async {
        reqwest::Client::new()
            .get(&url)
            .bearer_auth(SIM_TOKEN)
            .send()
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap()
    });
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        (
            body["page"].as_u64(),
            body["limit"].as_u64(),
            body["total"].as_u64()
        ),
        (Some(2), Some(50), Some(51))
    );
    assert_eq!(body["data"].as_array().unwrap().len(), 1);
    assert_eq!(body["data"][0]["id"], 51);
}

#[test]
fn plan_reports_what_would_change_and_sends_no_put() {
    let sim = simulator(|_| {});
    // 7 is seeded as a service account with "Seeded: automation account"; 1 and 2 are not.
    let run = Plan::on(&sim)
        .input("id,flag,reason\n7,true, Seeded: automation account \n1,false,human\n2,true,bot now\n5000,true,x\n2,true,bot now\nbad,true,x\n")
        .args(["--report", "p.csv", "--skip-invalid"])
        .run();
    assert_eq!(run.code, 1, "not_found and invalid rows: {}", run.stderr);
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);
    let rows = run.rows.clone();
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "unchanged".into()),
            (3, "unchanged".into()),
            (4, "would_update".into()),
            (5, "not_found".into()),
            (6, "duplicate".into()),
            (7, "invalid".into()),
        ]
    );
    assert_eq!(line(&rows, 4)["username"], "alice.nguyen");
    assert!(
        run.stdout.contains("Would update 1 of 6 rows"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("id 2  alice.nguyen [GCP gcp-main #2]: not a service account → service account (\"bot now\")"),
        "{}",
        run.stdout
    );
}

#[test]
fn plan_never_sends_updates() {
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap_or(1)));
    Plan::on(&server)
        .input("id,flag,reason\n1,true,a\n")
        .report("p.csv")
        .run();
    assert!(
        server.seen().iter().all(|s| s.method == "GET"),
        "plan sent a write"
    );
}

#[test]
fn reconcile_skips_rows_in_the_desired_state_and_sends_ids_missing_from_the_listing() {
    let sim = simulator(|_| {});
    let run = Apply::on(&sim)
        .input("id,flag,reason\n7,true,Seeded: automation account\n14,true,a new reason\n1,false,human\n3,true,bot\n5000,false,gone\n")
        .args(["--reconcile", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = run.rows.clone();
    assert_eq!(
        outcomes(&rows),
        vec![
            (2, "unchanged".into()),
            (3, "updated".into()),
            (4, "unchanged".into()),
            (5, "updated".into()),
            (6, "failed".into()),
        ]
    );
    assert_eq!(line(&rows, 2)["attempts"], "0");
    // The listing's silence is no proof: the PUT is sent, and Drata's 404 is.
    assert_eq!(line(&rows, 6)["http_status"], "404");
    assert_eq!(line(&rows, 6)["attempts"], "1");
    let mut applied: Vec<u64> = sim.applied().into_keys().collect();
    applied.sort();
    assert_eq!(applied, vec![3, 14], "only the rows that differ were sent");
}

#[test]
fn max_changes_refuses_before_the_first_put() {
    let sim = simulator(|_| {});
    let run = Apply::on(&sim)
        .input(rows_csv(1, 10))
        .args(["--reconcile", "--max-changes", "5", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("10 rows would be updated, more than --max-changes 5"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0);
    let rows = run.rows.clone();
    assert_eq!(rows.len(), 10);
    // Id 7 is already a service account, but with another reason: it would change too.
    assert!(rows.iter().all(|r| r["outcome"] == "not_attempted"));

    let run = Apply::on(&sim)
        .input(rows_csv(1, 10))
        .args(["--reconcile", "--max-changes", "10", "--report", "r2.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 10);
}

#[test]
fn undo_restores_the_previous_state() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write(
        "in.csv",
        "id,flag,reason\n7,false,not a bot after all\n1,true,=now a bot\n2,false,unchanged human\n",
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--reconcile", "--undo", "undo.csv", "--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut undo = csv::Reader::from_path(work.path("undo.csv")).unwrap();
    assert_eq!(
        undo.headers().unwrap(),
        vec![
            "id",
            "serviceAccount",
            "serviceAccountReason",
            "drataServiceAccount",
            "drataReason",
            "undoOf"
        ]
    );
    let mut undo_rows: Vec<Vec<String>> = undo
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    undo_rows.sort();
    assert_eq!(undo_rows.len(), 2, "only updated rows: {undo_rows:?}");
    assert_eq!(undo_rows[0][0..2], ["1".to_owned(), "false".to_owned()]);
    assert!(undo_rows[0][2].contains("not a service account before"));
    // Before the run, and the state the run left (the baseline of a three-way review).
    assert_eq!(
        undo_rows[1][..5],
        ["7", "true", "Seeded: automation account", "false", ""]
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(work.path("undo.csv"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let rollback = Apply::on(&sim)
        .within(&work)
        .file("undo.csv")
        .args(["--reconcile", "--report", "u.csv"])
        .run();
    assert_eq!(rollback.code, 0, "{}", rollback.stderr);
    // Id 7 is a service account with its old reason again, id 1 is not one any more.
    let check = work.write(
        "check.csv",
        "id,flag,reason\n7,true,Seeded: automation account\n1,false,x\n",
    );
    let _ = check;
    let plan = Plan::on(&sim)
        .within(&work)
        .file("check.csv")
        .args(["--report", "c.csv"])
        .run();
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    assert!(read_report(&work.path("c.csv"))
        .iter()
        .all(|r| r["outcome"] == "unchanged"));
}

#[test]
fn undo_works_without_reconcile() {
    // apply always reads the state first, so the undo file needs no --reconcile: it holds
    // the previous state of the row sent.
    let sim = simulator(|_| {});
    let work = Workdir::new();
    let run = Apply::on(&sim)
        .within(&work)
        .input("id,flag,reason\n1,true,a\n")
        .args(["--undo", "u.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let undo: Vec<Vec<String>> = csv::Reader::from_path(work.path("u.csv"))
        .unwrap()
        .records()
        .map(|r| r.unwrap().iter().map(str::to_owned).collect())
        .collect();
    assert_eq!(undo.len(), 1, "{undo:?}");
    assert_eq!(undo[0][0..2], ["1".to_owned(), "false".to_owned()]);
}

#[test]
fn rows_can_name_identities_by_username_or_email() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    // Person 0 (alice.nguyen) has ids 1, 2, 3 on AWS, GCP and Azure; person 1 is bruno.nguyen.
    work.write(
        "in.csv",
        "username,email,connection,serviceAccount,reason\n\
         alice.nguyen,,GCP,true,gcp bot\n\
         ,BRUNO.NGUYEN@example.com,aws-prod,false,human\n\
         alice.nguyen,,,true,ambiguous\n\
         nobody,,,true,unknown\n",
    );
    let run = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "r.csv", "--skip-invalid"])
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let rows = read_report(&work.path("r.csv"));
    assert_eq!(
        line(&rows, 2)["id"],
        "2",
        "the report shows the resolved id"
    );
    assert_eq!(line(&rows, 2)["outcome"], "updated");
    assert_eq!(line(&rows, 3)["id"], "4");
    // bruno.nguyen's id 4 is already not a service account: nothing to send.
    assert_eq!(line(&rows, 3)["outcome"], "unchanged");
    let ambiguous = line(&rows, 4);
    assert_eq!(ambiguous["outcome"], "invalid");
    assert!(
        ambiguous["error"]
            .contains("1 (AWS aws-prod #1), 2 (GCP gcp-main #2), 3 (AZURE azure-corp #3)"),
        "{}",
        ambiguous["error"]
    );
    let unknown = line(&rows, 5);
    assert_eq!(unknown["outcome"], "invalid");
    assert!(
        unknown["error"].contains("username \"nobody\""),
        "{}",
        unknown["error"]
    );
    let mut applied: Vec<u64> = sim.applied().into_keys().collect();
    applied.sort();
    assert_eq!(applied, vec![2]);

    // validate needs no network: such rows are checked for shape only.
    let run = Validate::offline().within(&work).file("in.csv").run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn an_id_that_belongs_to_someone_else_is_invalid_and_never_sent() {
    // In the simulator, id 80 is goran.smith and id 77 is svc-backup-77.
    let sim = simulator(|_| {});
    let plan = Plan::on(&sim)
        .input("id,username,serviceAccount,reason\n80,svc-deploy-80,true,deploy\n77,svc-backup-77,true,backup\n")
        .args(["--report", "p.csv"])
        .run();
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(
        plan.stderr
            .contains("id 80 is goran.smith in Drata; the row says svc-deploy-80"),
        "{}",
        plan.stderr
    );
    let apply = Apply::on(&sim)
        .input("id,username,serviceAccount,reason\n80,svc-deploy-80,true,deploy\n77,svc-backup-77,true,backup\n")
        .args(["--skip-invalid", "--report", "a.csv"])
        .run();
    assert_eq!(apply.code, 1, "{}", apply.stderr);
    assert_eq!(
        outcomes(&apply.rows),
        vec![(2, "invalid".into()), (3, "updated".into())]
    );
    let applied: Vec<u64> = sim.applied().into_keys().collect();
    assert_eq!(applied, vec![77], "goran.smith was never marked");
}

#[test]
fn an_id_like_header_stops_the_run_and_asks_for_id_column() {
    let sim = simulator(|_| {});
    let work = Workdir::new();
    work.write(
        "in.csv",
        "Identity ID,Username,serviceAccount,reason\nAWS-000000633520,goran.smith,true,x\n",
    );
    let validate = Validate::offline().within(&work).file("in.csv").run();
    assert_eq!(validate.code, 2, "{}", validate.stderr);
    assert!(
        validate.stderr.contains("--id-column \"Identity ID\""),
        "{}",
        validate.stderr
    );
    let apply = Apply::on(&sim)
        .within(&work)
        .file("in.csv")
        .args(["--report", "a.csv"])
        .run();
    assert_eq!(apply.code, 2, "{}", apply.stderr);
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        0,
        "nothing was sent"
    );

    work.write(
        "ids.csv",
        "Identity ID,serviceAccount,reason\n80,false,human\n",
    );
    let named = Plan::on(&sim)
        .within(&work)
        .file("ids.csv")
        .args(["--id-column", "Identity ID", "--report", "p.csv"])
        .run();
    assert_eq!(named.code, 0, "{}", named.stderr);
}

#[test]
fn headers_ignore_punctuation_and_the_column_mapping_is_printed() {
    let work = Workdir::new();
    work.write("in.csv", "ID,Service Account?,Reason:\n5,yes,CI\n");
    let run = Validate::offline().within(&work).file("in.csv").run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains(r#"columns: id ← "ID"; flag ← "Service Account?"; reason ← "Reason:""#),
        "{}",
        run.stderr
    );
}

#[test]
fn an_id_missing_from_the_listing_whose_name_is_someone_else_is_invalid() {
    // In the simulator of 100 identities, id 150 does not exist and svc-backup-77 is id 77.
    let sim = simulator(|c| c.identities = 100);
    let run = Apply::on(&sim)
        .input("id,username,serviceAccount,reason\n150,svc-backup-77,true,svc\n")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(
            "id 150 is not in Drata's listing, but the row's username \"svc-backup-77\" is id 77"
        ),
        "{}",
        run.stderr
    );
    assert_eq!(
        sim.stats.puts.load(Ordering::Relaxed),
        0,
        "nothing was sent"
    );
}

#[test]
fn every_invalid_row_is_listed_in_one_run_and_the_counts_agree() {
    // In the simulator, id 7 is a service account and id 80 is goran.smith. Line 2 is
    // invalid on its own; line 3 only against Drata (a blank reason, and id 7 must be
    // unmarked); line 4 too (id 80 is someone else's).
    let sim = simulator(|_| {});
    let input = "id,username,flag,reason\n1,,maybe,x\n7,,false,\n80,svc-deploy-80,true,deploy\n2,,true,fine\n";
    let without_names = "id,flag,reason\n1,maybe,x\n7,false,\n2,true,fine\n";
    for (csv, invalid) in [(input, 3_u8), (without_names, 2)] {
        for command in [Plan::on(&sim), Apply::on(&sim)] {
            let run = command.input(csv).summary().run();
            assert_eq!(run.code, 2, "{}", run.stderr);
            let rows = (invalid + 1).to_string();
            assert!(
                run.stderr.contains(&format!(
                    "{invalid} of {rows} rows are invalid; nothing will be sent"
                )),
                "one list: {}",
                run.stderr
            );
            for line in 2..=u64::from(invalid) + 1 {
                assert!(
                    run.stderr.contains(&format!("  line {line}, column ")),
                    "line {line} listed: {}",
                    run.stderr
                );
            }
            assert_eq!(ids_with(&run.rows, "invalid").len(), usize::from(invalid));
            assert_eq!(run.summary()["counts"]["invalid"], u64::from(invalid));
        }
    }
    assert_eq!(sim.stats.puts.load(Ordering::Relaxed), 0, "nothing sent");
}
