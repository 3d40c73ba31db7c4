//! The journal of a run: every request's intent written before it is sent, and its answer
//! when it comes, one JSON line each, beside the report; a run killed at any point has lost
//! at most what was in flight.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::support::*;

/// The journal's events, parsed.
fn events(path: &std::path::Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect()
}

#[test]
fn every_request_has_its_intent_before_it_and_its_answer_after() {
    let sim = simulator(|c| c.identities = 20);
    let run = Apply::on(&sim)
        .input(
            "id,serviceAccount,serviceAccountReason,adminAccess\n\
             1,true,ci bot,true\n2,false,,\n3,true,deploy bot,\n",
        )
        .report("r.csv")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let journal = events(&run.path("r.journal.jsonl"));
    // Id 1: the flag, then its admin access; id 3: the flag. Id 2 sent nothing.
    let intents: Vec<(u64, &str)> = { journal.iter() }
        .filter(|e| e["event"] == "intent")
        .map(|e| (e["id"].as_u64().unwrap(), e["field"].as_str().unwrap()))
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(intents.len(), 3, "{journal:?}");
    for (id, field) in [
        (1, "serviceAccount"),
        (1, "adminAccess"),
        (3, "serviceAccount"),
    ] {
        assert!(intents.contains(&(id, field)), "{journal:?}");
        let at = |event: &str| {
            journal
                .iter()
                .position(|e| e["event"] == event && e["id"] == id && e["field"] == field)
                .unwrap()
        };
        assert!(at("intent") < at("answer"), "{journal:?}");
    }
    let first = journal
        .iter()
        .find(|e| e["event"] == "intent" && e["id"] == 1 && e["field"] == "serviceAccount")
        .unwrap();
    assert_eq!(first["from"]["serviceAccount"], false, "{first}");
    assert_eq!(first["to"]["serviceAccountReason"], "ci bot", "{first}");
    let answers: HashMap<(u64, String), String> = { journal.iter() }
        .filter(|e| e["event"] == "answer")
        .map(|e| {
            let key = (
                e["id"].as_u64().unwrap(),
                e["field"].as_str().unwrap().to_owned(),
            );
            (key, e["answer"].as_str().unwrap().to_owned())
        })
        .collect();
    assert!(answers.values().all(|a| a == "applied"), "{answers:?}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(run.path("r.journal.jsonl"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}

#[cfg(unix)]
#[test]
fn a_killed_run_has_journaled_every_request_drata_received() {
    let sim = simulator(|c| c.latency = Duration::from_millis(40));
    let work = Workdir::new();
    let started = Apply::on(&sim)
        .within(&work)
        .input(rows_csv(1, 60))
        .args(["--rate", "40/s"])
        .report("r.csv")
        .spawn();
    wait_until(Duration::from_secs(30), "some rows sent", || {
        sim.stats.applied.load(Ordering::Relaxed) >= 10
    });
    signal(&started.child, libc::SIGKILL);
    let killed = started.finish();
    assert_ne!(killed.code, 0);
    let journal = events(&work.path("r.journal.jsonl"));
    let intended: HashSet<u64> = { journal.iter() }
        .filter(|e| e["event"] == "intent")
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let applied = sim.applied();
    assert!(!applied.is_empty());
    for id in applied.keys() {
        assert!(
            intended.contains(id),
            "id {id} reached Drata with no intent journaled"
        );
    }
    // Every answer journaled follows its intent.
    for answer in journal.iter().filter(|e| e["event"] == "answer") {
        assert!(
            intended.contains(&answer["id"].as_u64().unwrap()),
            "{answer}"
        );
    }
}
