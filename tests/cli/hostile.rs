//! Hostile servers and networks: a server echoing the key in any encoding, proxies that
//! refuse us, servers that admit few requests at once or queue them, long pauses, and
//! hostile text in the files a run writes.

use crate::support::*;

/// A key of Drata's length, with a recognisable prefix.
const KEY: &str = "holdout-0123456789abcdefghij";

/// Whether `text` holds 8 characters of `KEY` in a row.
fn holds_a_piece_of_the_key(text: &str) -> bool {
    KEY.as_bytes()
        .windows(8)
        .any(|w| text.contains(std::str::from_utf8(w).unwrap()))
}

#[test]
fn an_escaped_or_percent_encoded_echo_of_the_key_reaches_no_output() {
    let escaped = format!(r#"{{"message":"{}\u0068{}"}}"#, "X".repeat(176), &KEY[1..]);
    let encoded: String = KEY.bytes().map(|b| format!("%{b:02X}")).collect();
    let server = TestServer::start(move |seen, _| match seen.id() {
        Some(1) => Reply::json(400, &escaped),
        _ => Reply::json(307, "").with_header(
            "location",
            &format!("https://elsewhere.example/login?token={encoded}"),
        ),
    });
    for verbosity in ["-q", "-vv"] {
        let work = Workdir::new();
        work.write("in.csv", "id,flag,reason\n1,true,a\n2,true,b\n");
        let run = drata(
            work.dir.path(),
            &[
                "apply",
                "in.csv",
                "--base-url",
                &server.url,
                "--report",
                "r.csv",
                verbosity,
            ],
            &[("DRATA_API_KEY", KEY)],
        );
        assert_eq!(run.code, 1, "{}", run.stderr);
        let everything = format!("{}{}{}", run.stdout, run.stderr, work.all_file_text());
        assert!(!holds_a_piece_of_the_key(&everything), "{everything}");
        assert!(!everything.contains("%68%6F"), "{everything}");
        let rows = read_report(&work.path("r.csv"));
        assert!(line(&rows, 2)["error"].contains("X<redacted>"), "{rows:?}");
        assert!(
            line(&rows, 3)["error"].contains("token=<redacted>"),
            "{rows:?}"
        );
    }
}
