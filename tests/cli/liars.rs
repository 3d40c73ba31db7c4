//! Hostile servers and inputs against links and rules: each test tries to make an outcome
//! the tool writes (the report's `outcome` and `verified`, the undo file, the evidence) say
//! something Drata does not hold.

use std::collections::HashMap;

use crate::support::*;

const DANA: &str = "dana@example.com";
const EVE: &str = "eve@example.com";

/// A server whose listing holds id 6, a person linked to nobody, and the users Dana (9) and
/// Eve (10); `answer` answers the PUTs.
fn server_of_people(answer: impl Fn(&Seen) -> Reply + Send + Sync + 'static) -> TestServer {
    TestServer::start(move |seen, _| answer(seen)).seed_with(
        [serde_json::json!({"id": 6, "username": "dana", "serviceAccount": null, "user": null})],
        &[(9, DANA), (10, EVE)],
    )
}

fn row_of(path: &std::path::Path, id: &str) -> HashMap<String, String> {
    read_report(path)
        .into_iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("no row of id {id}"))
}

#[test]
fn a_link_answered_200_but_stored_to_another_user_is_not_verified() {
    // Drata answers 200 to "link to Dana" and links Eve.
    let server =
        server_of_people(|seen| Reply::identity(seen.id().unwrap()).storing(r#"{"userId": 10}"#));
    let work = Workdir::new();
    work.write(
        "link.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n6,false,,{DANA}\n"),
    );
    let args = [
        "apply",
        "link.csv",
        "--report",
        "r.csv",
        "--evidence",
        "ev.md",
    ];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(server.puts_by_endpoint(), (1, 0), "{}", run.stderr);
    assert_eq!(server.identity(6).unwrap()["user"]["id"], 10);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let row = row_of(&work.path("r.csv"), "6");
    assert_eq!(row["verified"], "no", "{row:?}");
    let evidence = std::fs::read_to_string(work.path("ev.md")).unwrap();
    let line = evidence.lines().find(|l| l.starts_with("| 6 |")).unwrap();
    assert!(line.ends_with("| no |"), "{line}");
}

/// Drata writes the linked user's email with capitals and a trailing space.
fn server_with_a_sloppy_email() -> TestServer {
    let sloppy = "Dana@Example.COM ";
    TestServer::start(|seen, _| Reply::identity(seen.id().unwrap())).seed_with(
        [
            serde_json::json!({"id": 6, "username": "dana", "serviceAccount": null,
            "user": {"id": 9, "email": sloppy}}),
        ],
        &[(9, sloppy), (10, EVE)],
    )
}

#[test]
fn a_link_drata_writes_with_capitals_and_a_space_is_the_same_link() {
    let server = server_with_a_sloppy_email();
    let work = Workdir::new();
    // Two-way: the sheet says what Drata holds.
    work.write(
        "same.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n6,false,,{DANA}\n"),
    );
    let run = Apply::on(&server)
        .within(&work)
        .file("same.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 0), "nothing to send");
    assert_eq!(row_of(&work.path("r.csv"), "6")["outcome"], "unchanged");

    // Three-way: the export, unedited, is not drift.
    let exported = Export::on(&server)
        .within(&work)
        .args(["-o", "export.csv"])
        .run();
    assert_eq!(exported.code, 0, "{}", exported.stderr);
    let run = Apply::on(&server)
        .within(&work)
        .file("export.csv")
        .args(["--report", "e.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 0), "nothing to send");
    assert_eq!(row_of(&work.path("e.csv"), "6")["outcome"], "unchanged");
}

#[test]
fn a_link_to_a_user_drata_writes_sloppily_is_verified() {
    let server = server_with_a_sloppy_email();
    let work = Workdir::new();
    // Move the link to Eve and back to Dana.
    for (name, email) in [("eve.csv", EVE), ("dana.csv", DANA)] {
        work.write(
            name,
            &format!("id,serviceAccount,serviceAccountReason,linkedUser\n6,false,,{email}\n"),
        );
        let report = format!("{name}.report.csv");
        let run = Apply::on(&server)
            .within(&work)
            .file(name)
            .args(["--report", &report])
            .run();
        assert_eq!(run.code, 0, "{name}: {}", run.stderr);
        let row = row_of(&work.path(&report), "6");
        assert_eq!(row["outcome"], "updated", "{row:?}");
        assert_eq!(row["verified"], "yes", "{row:?}");
    }
    assert_eq!(server.puts_by_endpoint(), (2, 0));
}

#[test]
fn a_listing_that_shows_an_identity_twice_with_different_links_keeps_the_later_copy() {
    // Drata re-syncs while the listing is read: id 6 is shown first linked to nobody, then,
    // fresher, linked to Dana. A row that says "nobody" must not be `unchanged`.
    let server = TestServer::scripted(|seen, _| {
        if seen.method == "PUT" {
            return Reply::identity(seen.id().unwrap());
        }
        let page = |data: serde_json::Value| {
            let total = data.as_array().map_or(0, Vec::len);
            let body = serde_json::json!({"data": data, "page": 1, "limit": 50, "total": total});
            Reply::json(200, &body.to_string())
        };
        if seen.path.contains("/users?") {
            return page(serde_json::json!([{"id": 9, "email": DANA}]));
        }
        page(serde_json::json!([
            {"id": 6, "username": "dana", "serviceAccount": null, "user": null},
            {"id": 6, "username": "dana", "serviceAccount": null,
                "user": {"id": 9, "email": DANA}},
        ]))
    });
    let work = Workdir::new();
    work.write(
        "unlink.csv",
        "id,serviceAccount,serviceAccountReason,linkedUser\n6,false,,\n",
    );
    let args = ["apply", "unlink.csv", "--report", "r.csv", "--no-verify"];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = row_of(&work.path("r.csv"), "6");
    assert_eq!(row["outcome"], "updated", "{row:?}");
    assert_eq!(server.puts_by_endpoint(), (1, 0), "the unlink is sent");
}

const AUTOMATION: &str = r#"
[[rule]]
name = "automation"
service_account = true
reason = "Automation account {username}; rule {rule}"
[rule.match]
username = "-(bot|runner|ci)-\\d+$|^github-actions-"
email_absent = true
marked = false
"#;

#[test]
fn an_invalid_input_row_still_keeps_a_rule_off_its_identity() {
    // The reviewer's row for id 44 (which the rule matches) cannot be read: the person's
    // decision is not the rule's to make.
    let sim = simulator(|c| c.identities = 100);
    let work = Workdir::new();
    work.write("rules.toml", AUTOMATION);
    work.write(
        "review.csv",
        "id,serviceAccount,reason\n44,nope,A person's test account after all\n",
    );
    let args = [
        "apply",
        "review.csv",
        "--rules",
        "rules.toml",
        "--report",
        "r.csv",
        "--max-changes",
        "10",
        "--skip-invalid",
    ];
    let run = Invocation::new(args, Some(Endpoint::from(&sim)))
        .within(&work)
        .run();
    assert_eq!(run.code, 1, "the invalid row: {}", run.stderr);
    let applied: Vec<u64> = sim.applied().into_keys().collect();
    assert_eq!(applied, [94], "{}", run.stderr);
    let rows: Vec<(String, String, String)> = read_report(&work.path("r.csv"))
        .into_iter()
        .map(|r| (r["id"].clone(), r["source"].clone(), r["outcome"].clone()))
        .collect();
    let of_44: Vec<_> = rows.iter().filter(|r| r.0 == "44").collect();
    assert_eq!(
        of_44,
        [&("44".to_owned(), "input".to_owned(), "invalid".to_owned())],
        "{rows:?}"
    );
}

/// A server whose listing holds id 5, a service account, and Dana (user 9); it refuses the
/// first `connect` (400) and accepts every later one.
fn server_refusing_the_first_link() -> TestServer {
    let refused = std::sync::atomic::AtomicBool::new(false);
    TestServer::start(move |seen, _| {
        let connect = seen.path.ends_with("/connect");
        if connect && !refused.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Reply::json(400, r#"{"message":"refused"}"#)
        } else {
            Reply::identity(seen.id().unwrap())
        }
    })
    .seed_with(
        [
            serde_json::json!({"id": 5, "username": "ci-runner", "user": null,
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "CI runner"}),
        ],
        &[(9, DANA)],
    )
}

#[test]
fn resuming_after_a_partly_applied_row_sends_only_the_half_left() {
    let server = server_refusing_the_first_link();
    let work = Workdir::new();
    work.write(
        "flip.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person after all,{DANA}\n"),
    );
    let first = Apply::on(&server)
        .within(&work)
        .file("flip.csv")
        .args(["--report", "r1.csv"])
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    assert!(row_of(&work.path("r1.csv"), "5")["error"].contains("partly applied"));
    assert_eq!(server.puts_by_endpoint(), (1, 1));
    let args = [
        "apply",
        "flip.csv",
        "--report",
        "r2.csv",
        "--resume-from",
        "r1.csv",
        "--undo",
        "undo.csv",
        "--evidence",
        "ev.md",
    ];
    let resumed = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(
        server.puts_by_endpoint(),
        (2, 1),
        "the link alone is sent again"
    );
    let row = row_of(&work.path("r2.csv"), "5");
    assert_eq!(row["outcome"], "updated", "{row:?}");
    assert_eq!(row["verified"], "yes", "{row:?}");
    let now = server.identity(5).unwrap();
    assert!(now["serviceAccount"].is_null(), "{now}");
    assert_eq!(now["user"]["id"], 9, "{now}");
    // This run's undo puts back what this run found: unmarked, linked to nobody.
    let undo = records(&work.path("undo.csv"));
    let cells = (&undo[1][0], &undo[1][1], &undo[1][5]);
    assert_eq!(
        cells,
        (&"5".into(), &"false".into(), &String::new()),
        "{undo:?}"
    );
    let evidence = std::fs::read_to_string(work.path("ev.md")).unwrap();
    let line = evidence.lines().find(|l| l.starts_with("| 5 |")).unwrap();
    assert!(
        line.contains(&format!(
            "| not a service account; linked to nobody | not a service account; linked to {DANA} |"
        )),
        "{line}"
    );
}

/// Service accounts 5 and 6 and the people Dana (9) and Eve (10, whose email Drata also
/// holds for user 11 in other case); every PUT is accepted.
fn server_of_two_service_accounts() -> TestServer {
    let account = |id: u64| {
        serde_json::json!({"id": id, "username": format!("svc-{id}"), "user": null,
            "serviceAccount": "2026-01-05T00:00:00.000Z", "serviceAccountReason": "shared"})
    };
    TestServer::start(|seen, _| Reply::identity(seen.id().unwrap())).seed_with(
        [account(5), account(6)],
        &[(9, DANA), (10, EVE), (11, "EVE@example.com ")],
    )
}

#[test]
fn max_changes_counts_a_row_of_two_requests_as_one_identity() {
    let work = Workdir::new();
    work.write(
        "people.csv",
        &format!(
            "id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person,{DANA}\n6,false,a person,{DANA}\n"
        ),
    );
    let server = server_of_two_service_accounts();
    let args = [
        "apply",
        "people.csv",
        "--report",
        "r1.csv",
        "--max-changes",
        "1",
    ];
    let refused = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(
        refused.code, 3,
        "two identities are more than 1: {}",
        refused.stderr
    );
    assert_eq!(server.puts_by_endpoint(), (0, 0));
    let args = [
        "apply",
        "people.csv",
        "--report",
        "r2.csv",
        "--max-changes",
        "2",
    ];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(run.code, 0, "two identities, four requests: {}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (2, 2));
}

#[test]
fn an_email_two_users_hold_in_different_case_links_nobody() {
    let work = Workdir::new();
    work.write(
        "eve.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person,{EVE}\n6,false,a person,{DANA}\n"),
    );
    let server = server_of_two_service_accounts();
    let args = ["apply", "eve.csv", "--report", "r.csv", "--skip-invalid"];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let five = row_of(&work.path("r.csv"), "5");
    assert_eq!(five["outcome"], "invalid", "{five:?}");
    assert_eq!(
        server.puts_by_endpoint(),
        (1, 1),
        "only id 6: {}",
        run.stderr
    );
    assert!(server.identity(5).unwrap()["serviceAccount"].is_string());
}

#[test]
fn an_undo_file_applied_after_a_colleague_changed_drata_does_not_undo_the_colleague() {
    let server = server_of_two_service_accounts();
    let work = Workdir::new();
    work.write(
        "review.csv",
        "id,serviceAccount,serviceAccountReason\n5,true,Build runner (ticket OPS-5)\n6,true,Backup agent (ticket OPS-6)\n",
    );
    let args = [
        "apply",
        "review.csv",
        "--report",
        "r.csv",
        "--undo",
        "undo.csv",
    ];
    let run = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 2));
    // A colleague then rewrites id 6's reason in Drata.
    work.write(
        "colleague.csv",
        "id,serviceAccount,serviceAccountReason\n6,true,Backup agent; owner Ana (OPS-7)\n",
    );
    let colleague = Apply::on(&server)
        .within(&work)
        .file("colleague.csv")
        .args(["--report", "c.csv"])
        .run();
    assert_eq!(colleague.code, 0, "{}", colleague.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 3));

    let undo = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .args(["--report", "u.csv"])
        .run();
    assert_eq!(undo.code, 1, "the conflict: {}", undo.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 4), "only id 5 is put back");
    assert_eq!(
        server.identity(5).unwrap()["serviceAccountReason"],
        "shared"
    );
    assert_eq!(
        server.identity(6).unwrap()["serviceAccountReason"],
        "Backup agent; owner Ana (OPS-7)",
        "the colleague's change is kept"
    );
    let six = row_of(&work.path("u.csv"), "6");
    assert_eq!(six["outcome"], "conflict", "{six:?}");
    let five = row_of(&work.path("u.csv"), "5");
    assert_eq!(five["outcome"], "updated", "{five:?}");
    assert_eq!(five["verified"], "yes", "{five:?}");
}

#[test]
fn a_link_stored_to_another_user_with_the_same_email_is_not_verified() {
    // Drata links user 11, whom the users listing did not show, with Dana's email: the
    // email matches, the person does not.
    let server = server_of_people(|seen| {
        Reply::identity(seen.id().unwrap())
            .storing(r#"{"userId": 11, "email": "dana@example.com"}"#)
    });
    let work = Workdir::new();
    work.write(
        "link.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n6,false,a person,{DANA}\n"),
    );
    let run = Apply::on(&server)
        .within(&work)
        .file("link.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(server.puts_by_endpoint(), (1, 0), "{}", run.stderr);
    assert_eq!(server.identity(6).unwrap()["user"]["id"], 11);
    let row = row_of(&work.path("r.csv"), "6");
    assert_eq!(row["verified"], "no", "{row:?}");
    assert_eq!(run.code, 1, "{}", run.stderr);
}

#[test]
fn one_undo_file_across_a_partly_applied_run_and_its_resume_puts_everything_back() {
    let server = server_refusing_the_first_link();
    let work = Workdir::new();
    work.write(
        "flip.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n5,false,a person after all,{DANA}\n"),
    );
    let args = [
        "apply", "flip.csv", "--report", "r1.csv", "--undo", "undo.csv",
    ];
    let first = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(first.code, 1, "{}", first.stderr);
    let args = [
        "apply",
        "flip.csv",
        "--report",
        "r2.csv",
        "--resume-from",
        "r1.csv",
        "--undo",
        "undo.csv",
    ];
    let resumed = Invocation::new(args, Some(Endpoint::from(&server)))
        .within(&work)
        .run();
    assert_eq!(resumed.code, 0, "{}", resumed.stderr);
    assert_eq!(server.puts_by_endpoint(), (2, 1));
    // One row, the state before everything; its baseline the state the resume left.
    let undo = undo_records(&work.path("undo.csv"));
    assert_eq!(
        undo[1..],
        [vec!["5", "true", "CI runner", "false", "", "", DANA]],
        "{undo:?}"
    );
    let back = Apply::on(&server)
        .within(&work)
        .file("undo.csv")
        .args(["--report", "u.csv"])
        .run();
    assert_eq!(back.code, 0, "{}", back.stderr);
    assert_eq!(server.puts_by_endpoint(), (3, 2), "both put back");
    let now = server.identity(5).unwrap();
    assert_eq!(now["serviceAccountReason"], "CI runner", "{now}");
    assert!(now["user"].is_null(), "{now}");
}

#[test]
fn an_identity_linked_to_another_user_with_the_same_email_is_not_unchanged() {
    // Drata shows id 6 linked to user 11 with Dana's email; the users listing names Dana as
    // user 9. Linking Dana is a change, not `unchanged`.
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap())).seed_with(
        [
            serde_json::json!({"id": 6, "username": "dana", "serviceAccount": null,
            "user": {"id": 11, "email": DANA}}),
        ],
        &[(9, DANA)],
    );
    let work = Workdir::new();
    work.write(
        "link.csv",
        &format!("id,serviceAccount,serviceAccountReason,linkedUser\n6,false,a person,{DANA}\n"),
    );
    let run = Apply::on(&server)
        .within(&work)
        .file("link.csv")
        .args(["--report", "r.csv"])
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (1, 0), "{}", run.stderr);
    let row = row_of(&work.path("r.csv"), "6");
    assert_eq!(row["outcome"], "updated", "{row:?}");
    assert_eq!(row["verified"], "yes", "{row:?}");
    assert_eq!(server.identity(6).unwrap()["user"]["id"], 9);
}

#[test]
fn a_write_refused_for_certain_on_a_row_drata_already_holds_is_unchanged_not_updated() {
    // Drata holds id 6 as the row asks; `--resend` sends it again, and Drata refuses (409).
    let server = TestServer::start(|_, _| {
        Reply::json(409, r#"{"message":"already a service account"}"#).applied(false)
    })
    .seed_with(
        [serde_json::json!({"id": 6, "username": "ci", "user": null,
            "serviceAccount": "2026-11-29T00:00:00.000Z", "serviceAccountReason": "ci"})],
        &[],
    );
    let run = Apply::on(&server)
        .input("id,serviceAccount,serviceAccountReason\n6,true,ci\n")
        .args(["--resend", "--undo", "undo.csv", "--evidence", "ev.md"])
        .run();
    assert_eq!(server.puts_by_endpoint(), (0, 1), "{}", run.stderr);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let row = &run.rows[0];
    assert_eq!(row["outcome"], "unchanged", "{row:?}");
    assert!(
        row["error"].contains("refused") && row["error"].contains("409"),
        "{row:?}"
    );
    let undo = std::fs::read_to_string(run.path("undo.csv")).unwrap();
    assert_eq!(undo.lines().count(), 1, "nothing to undo: {undo}");
    let evidence = std::fs::read_to_string(run.path("ev.md")).unwrap();
    assert!(!evidence.contains("| 6 |"), "not a change: {evidence}");
}

#[test]
fn an_email_that_matches_a_user_only_by_unicode_case_links_nobody_and_names_both() {
    // Drata's user writes "Karen" with the Kelvin sign (U+212A), which Unicode lowercases
    // to `k`: the cell `karen@example.com` is another email.
    let kelvin = "\u{212A}aren@example.com";
    let server = TestServer::start(|seen, _| Reply::identity(seen.id().unwrap())).seed_with(
        [serde_json::json!({"id": 6, "username": "karen", "serviceAccount": null, "user": null})],
        &[(9, kelvin)],
    );
    let run = Apply::on(&server)
        .input("id,serviceAccount,serviceAccountReason,linkedUser\n6,false,,karen@example.com\n")
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert_eq!(server.puts_by_endpoint(), (0, 0), "nothing sent");
    assert!(
        run.stderr.contains("karen@example.com") && run.stderr.contains(kelvin),
        "both emails named: {}",
        run.stderr
    );
    assert!(server.identity(6).unwrap()["user"].is_null());
}
