//! HTTPS for real, on loopback, with certificates made at test time: what is trusted (the
//! system store, `SSL_CERT_FILE`, `--ca-cert`), what a refused certificate does to a run
//! (one clear line, not retried, the run stops with exit 3), and HTTPS through a CONNECT
//! proxy whose credentials never show.

use std::collections::HashMap;

use crate::support::*;

const FIX: &str = "behind a TLS-inspecting proxy? pass --ca-cert with its CA, or set SSL_CERT_FILE";

/// A key long enough for a server off loopback (the proxy tests' `drata.test`).
const REMOTE_KEY: &str = "drata-test-key-0123456789abcdef";

fn localhost(server: &TlsServer) -> String {
    format!("https://localhost:{}/public", server.port)
}

/// Asserts the run stopped on the certificate: exit 3, one connection, and the line on
/// stderr. The certificate is refused on the first request, the listing that apply reads
/// before any PUT: no row was sent, every row is `not_attempted` with `message`.
fn assert_stopped_by_certificate(
    run: &Run,
    rows: &[HashMap<String, String>],
    server: &TlsServer,
    message: &str,
) {
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(
        server.connections(),
        1,
        "one connection, then the run stops"
    );
    assert!(server.requests().is_empty(), "no request got through");
    let said = run
        .stderr
        .lines()
        .filter(|l| l.contains("ERROR") && l.ends_with(message))
        .count();
    assert_eq!(said, 1, "one clear line, as it happens: {}", run.stderr);
    for (n, outcome) in &outcomes(rows) {
        assert_eq!(outcome, "not_attempted", "line {n}");
        let row = line(rows, *n);
        assert_eq!(row["attempts"], "0");
        assert!(row["error"].contains(message), "{}", row["error"]);
    }
}

#[test]
fn an_untrusted_certificate_stops_the_run_after_one_connection() {
    let ca = TestCa::new("Untrusted Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    // A one-letter key: its redaction must not touch the words of the message.
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 5))
        .args(["--concurrency", "1", "--rate", "unlimited"])
        .key("e")
        .run();
    let message = format!(
        "the TLS certificate of localhost:{} was refused: unknown issuer (not signed by a CA \
         this machine trusts); {FIX}",
        server.port
    );
    assert_stopped_by_certificate(&run, &rows, &server, &message);
    assert_eq!(rows.len(), 5);
    assert!(run.stderr.contains("--resume-from"), "{}", run.stderr);
}

#[test]
fn with_many_workers_a_refused_certificate_costs_one_connection() {
    // Eight workers and no rate limit: the first request goes alone, so the others never
    // start once its certificate is refused; nor is it retried.
    let ca = TestCa::new("Untrusted Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    let Finished { run, rows, .. } = Apply::on(&server)
        .input(rows_csv(1, 20))
        .args(["--concurrency", "8", "--rate", "unlimited"])
        .args(["--max-attempts", "5"])
        .run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(server.connections(), 1, "{}", run.stderr);
    // Refused on the listing read before any PUT: no row was sent.
    assert_eq!(ids_with(&rows, "not_attempted").len(), 20);
}

#[test]
fn plan_stops_on_a_refused_certificate_at_the_first_listing_page() {
    let ca = TestCa::new("Untrusted Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    let run = Plan::on(&server).input(rows_csv(1, 3)).run();
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(server.connections(), 1, "the listing is not retried");
    let expected = format!(
        "ERROR run aborted: the TLS certificate of localhost:{} was refused: unknown issuer",
        server.port
    );
    assert!(run.stderr.contains(&expected), "{}", run.stderr);
}

#[test]
fn the_ca_of_ca_cert_is_trusted() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost", "127.0.0.1"], Validity::Current));
    for url in [
        localhost(&server),
        format!("https://127.0.0.1:{}/public", server.port),
    ] {
        let Finished { run, rows, .. } = Apply::on(url.as_str())
            .with_file("ca.pem", &ca.pem)
            .input(rows_csv(1, 3))
            // Sent again through the second name: the first run already marked them.
            .args(["--ca-cert", "ca.pem", "--resend"])
            .run();
        assert_eq!(run.code, 0, "{url}: {}", run.stderr);
        assert_eq!(ids_with(&rows, "updated").len(), 3, "{url}");
        assert_eq!(line(&rows, 2)["username"], "user1");
    }
    assert!(server
        .requests()
        .iter()
        .any(|r| r.starts_with("PUT /public/user-identities/infrastructure/")));
}

#[test]
fn ssl_cert_file_is_trusted() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    let work = Workdir::new();
    let Finished { run, rows, .. } = Apply::on(&server)
        .within(&work)
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 2))
        .env("SSL_CERT_FILE", "ca.pem")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "updated").len(), 2);
    // A directory of PEM files, as SSL_CERT_DIR names, is read as well.
    std::fs::create_dir(work.path("certs")).unwrap();
    work.write("certs/corporate.pem", &ca.pem);
    let run = Apply::on(&server)
        .within(&work)
        .file("input.csv")
        .report("again.csv")
        .env("SSL_CERT_DIR", "certs")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
}

/// The bundle of a stock Debian machine, in small: an expired root first (Debian's held
/// Baltimore CyberTrust Root past its end), a block that does not decode, then the CA that
/// signed the server's certificate.
fn system_like_bundle(ca: &TestCa) -> String {
    let expired = TestCa::valid("Old Test Root", Validity::Expired);
    let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
    format!("{}{garbage}{}", expired.pem, ca.pem)
}

#[test]
fn a_bundle_with_expired_roots_is_trusted_for_the_rest_as_openssl_does() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    let work = Workdir::new();
    let Finished { run, rows, .. } = Apply::on(&server)
        .within(&work)
        .with_file("bundle.pem", system_like_bundle(&ca))
        .input(rows_csv(1, 2))
        .args(["-v"])
        .env("SSL_CERT_FILE", "bundle.pem")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "updated").len(), 2);
    let puts = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT "))
        .count();
    assert_eq!(puts, 2, "the server applied both rows");
    // Counted at the default level, each named at -v.
    assert!(
        run.stderr.contains(
            "SSL_CERT_FILE bundle.pem: 1 CA certificates trusted, 2 skipped (expired, not \
             valid yet or unparsable; -v names each)"
        ),
        "{}",
        run.stderr
    );
    for named in [
        "bundle.pem: certificate 1 (Old Test Root) skipped: it has expired",
        "bundle.pem: certificate 2 skipped: it cannot be parsed",
    ] {
        assert!(run.stderr.contains(named), "{named}: {}", run.stderr);
    }
    // The same bundle in a directory that SSL_CERT_DIR names.
    std::fs::create_dir(work.path("certs")).unwrap();
    work.write("certs/bundle.pem", &system_like_bundle(&ca));
    let run = Apply::on(&server)
        .within(&work)
        .file("input.csv")
        .report("again.csv")
        .args(["--resend"])
        .env("SSL_CERT_DIR", "certs")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    let puts = server
        .requests()
        .iter()
        .filter(|r| r.starts_with("PUT "))
        .count();
    assert_eq!(puts, 4, "the second run applied both rows again");
}

#[test]
fn an_empty_ssl_cert_dir_counts_as_unset() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    let Finished { run, rows, .. } = Apply::on(&server)
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 2))
        .env("SSL_CERT_FILE", "ca.pem")
        .env("SSL_CERT_DIR", "")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "updated").len(), 2);
    // An empty SSL_CERT_FILE too: the system store, plus --ca-cert.
    let Finished { run, rows, .. } = Apply::on(&server)
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 2))
        .args(["--ca-cert", "ca.pem", "--resend"])
        .env("SSL_CERT_FILE", "")
        .env("SSL_CERT_DIR", "")
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "updated").len(), 2);
}

#[test]
fn an_expired_certificate_is_named() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Expired));
    let Finished { run, rows, .. } = Apply::on(&server)
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 3))
        .args(["--ca-cert", "ca.pem", "--concurrency", "1"])
        .run();
    let message = format!(
        "the TLS certificate of localhost:{} was refused: expired; {FIX}",
        server.port
    );
    assert_stopped_by_certificate(&run, &rows, &server, &message);
}

#[test]
fn a_certificate_for_another_name_is_named() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["elsewhere.test"], Validity::Current));
    let Finished { run, rows, .. } = Apply::on(&server)
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 3))
        .args(["--ca-cert", "ca.pem", "--concurrency", "1"])
        .run();
    let message = format!(
        "the TLS certificate of localhost:{} was refused: wrong name (issued for another \
         host); {FIX}",
        server.port
    );
    assert_stopped_by_certificate(&run, &rows, &server, &message);
}

#[test]
fn a_ca_file_that_cannot_be_used_is_a_usage_error_before_anything_is_sent() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    // The options, the environment, and what stderr must say.
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &["--ca-cert", "missing.pem"],
            &[],
            "--ca-cert missing.pem: cannot read it",
        ),
        (
            &["--ca-cert", "input.csv"],
            &[],
            "--ca-cert input.csv: no PEM certificate",
        ),
        (
            &["--ca-cert", "bad.pem"],
            &[],
            "--ca-cert bad.pem: certificate 1 is not a usable CA certificate (BadEncoding)",
        ),
        (
            &[],
            &[("SSL_CERT_FILE", "input.csv")],
            "SSL_CERT_FILE input.csv: no PEM",
        ),
    ];
    for (extra, env, expected) in cases {
        let bad = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let apply = Apply::on(&server)
            .input(rows_csv(1, 2))
            .with_file("bad.pem", bad);
        let run = env
            .iter()
            .fold(apply.args(extra), |apply, (name, value)| {
                apply.env(name, value)
            })
            .run();
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
        assert!(!run.path("report.csv").exists(), "no report is left behind");
    }
    assert_eq!(server.connections(), 0, "nothing was sent");
}

#[test]
fn trust_settings_that_cannot_work_are_named_before_anything_is_sent() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["localhost"], Validity::Current));
    let expired = TestCa::valid("Old Test CA", Validity::Expired);
    let leaf = ca.leaf(&["localhost"], Validity::Current);
    type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], &'a str);
    let cases: [Case; 4] = [
        (
            &["--ca-cert", "expired.pem"],
            &[],
            "--ca-cert expired.pem: certificate 1 cannot be trusted: it has expired",
        ),
        (
            &["--ca-cert", "leaf.pem"],
            &[],
            "--ca-cert leaf.pem: certificate 1 cannot be trusted: it is not a CA certificate",
        ),
        (
            &[],
            &[("SSL_CERT_FILE", "expired.pem")],
            "SSL_CERT_FILE expired.pem: none of its 1 certificates can be used (expired, not \
             valid yet or unparsable; -v names each); point it at a current bundle of CA \
             certificates, or unset it",
        ),
        (
            &[],
            &[("SSL_CERT_DIR", "no-such-dir")],
            "SSL_CERT_DIR no-such-dir: no such directory",
        ),
    ];
    for (extra, env, expected) in cases {
        let apply = Apply::on(&server)
            .input(rows_csv(1, 2))
            .with_file("expired.pem", &expired.pem)
            .with_file("leaf.pem", &leaf.pem);
        let run = env
            .iter()
            .fold(apply.args(extra), |apply, (name, value)| {
                apply.env(name, value)
            })
            .run();
        assert_eq!(run.code, 2, "{extra:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{}", run.stderr);
    }
    assert_eq!(server.connections(), 0, "nothing was sent");
}

#[test]
fn https_goes_through_the_proxy_and_its_credentials_never_show() {
    let ca = TestCa::new("Corporate Test CA");
    let server = TlsServer::start(ca.leaf(&["drata.test"], Validity::Current));
    let proxy = ConnectProxy::start(server.port);
    // `drata.test` resolves nowhere: only the proxy, which ignores the name, reaches it.
    let url = format!("https://drata.test:{}/public", server.port);
    let proxy_url = format!("http://proxyuser:s3cret-proxy-pw@127.0.0.1:{}", proxy.port);
    let Finished {
        run, rows, work, ..
    } = Apply::on(url.as_str())
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 3))
        .args(["--ca-cert", "ca.pem", "-vv"])
        .key(REMOTE_KEY)
        .env("https_proxy", &proxy_url)
        .run();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(ids_with(&rows, "updated").len(), 3);
    let heads = proxy.heads();
    assert!(!heads.is_empty());
    let head = &heads[0];
    assert!(
        head.starts_with(&format!("CONNECT drata.test:{} ", server.port)),
        "{head}"
    );
    // base64("proxyuser:s3cret-proxy-pw"): the credentials were used, on the CONNECT only.
    assert!(
        head.to_ascii_lowercase()
            .contains("proxy-authorization: basic chjvehl1c2vyonmzy3jldc1wcm94es1wdw=="),
        "{head}"
    );
    let everything = format!("{}{}{}", run.stdout, run.stderr, work.all_file_text());
    assert!(!everything.contains("s3cret-proxy-pw"), "{everything}");
}

#[test]
fn a_proxy_that_cannot_be_reached_leaks_no_credentials() {
    let ca = TestCa::new("Corporate Test CA");
    // A port that was just free: nothing listens there.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let proxy_url = format!("http://proxyuser:s3cret-proxy-pw@127.0.0.1:{closed}");
    let Finished {
        run, rows, work, ..
    } = Apply::on("https://drata.test:9/public")
        .with_file("ca.pem", &ca.pem)
        .input(rows_csv(1, 1))
        .args(["--max-attempts", "2", "-vv"])
        .key(REMOTE_KEY)
        .env("HTTPS_PROXY", &proxy_url)
        .run();
    // The listing read before any PUT cannot get through: the run stops, nothing sent.
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert_eq!(line(&rows, 2)["outcome"], "not_attempted");
    assert!(run.stderr.contains("tunnel error"), "{}", run.stderr);
    let everything = format!("{}{}{}", run.stdout, run.stderr, work.all_file_text());
    assert!(!everything.contains("s3cret-proxy-pw"), "{everything}");
}

/// Asserts the run stopped at once on the proxy: exit 3, at the listing read before any
/// PUT, so every row is `not_attempted` with the reason, nothing retried.
fn assert_stopped_by_proxy(run: &Run, rows: &[HashMap<String, String>], message: &str) {
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains(message), "{}", run.stderr);
    let outcomes = outcomes(rows);
    assert_eq!(outcomes.len(), 4);
    for (n, outcome) in &outcomes {
        assert_eq!(outcome, "not_attempted", "line {n}");
        assert_eq!(line(rows, *n)["attempts"], "0");
        assert!(line(rows, *n)["error"].contains(message), "line {n}");
    }
}

#[test]
fn a_proxy_refusing_the_credentials_is_asked_once() {
    let proxy = ConnectProxy::refusing_credentials();
    let proxy_url = format!("http://proxyuser:wrong-proxy-pw@127.0.0.1:{}", proxy.port);
    let Finished {
        run, rows, work, ..
    } = Apply::on("https://drata.test:9/public")
        .input(rows_csv(1, 4))
        .args(["--concurrency", "1"])
        .key(REMOTE_KEY)
        .env("HTTPS_PROXY", &proxy_url)
        .run();
    assert_stopped_by_proxy(
        &run,
        &rows,
        "the proxy refused its credentials (HTTP 407 Proxy Authentication Required): \
         check the proxy user and password in HTTPS_PROXY",
    );
    assert_eq!(proxy.heads().len(), 1, "one CONNECT, never a second");
    let everything = format!("{}{}{}", run.stdout, run.stderr, work.all_file_text());
    assert!(!everything.contains("wrong-proxy-pw"), "{everything}");
}

#[test]
fn a_socks_proxy_stops_the_run_before_anything_is_sent() {
    let proxy = ConnectProxy::refusing_credentials();
    let proxy_url = format!("socks5://proxyuser:pw-socks@127.0.0.1:{}", proxy.port);
    let Finished { run, rows, .. } = Apply::on("https://drata.test:9/public")
        .input(rows_csv(1, 4))
        .key(REMOTE_KEY)
        .env("https_proxy", &proxy_url)
        .run();
    assert_stopped_by_proxy(
        &run,
        &rows,
        "the proxy in https_proxy is a socks5:// proxy, which this tool cannot use: \
         set https_proxy to an http:// or https:// proxy",
    );
    assert!(proxy.heads().is_empty(), "nothing reached the proxy");
}

#[test]
fn a_short_key_is_refused_off_loopback_only() {
    let run = Apply::on("https://drata.test:9/public")
        .input(rows_csv(1, 1))
        .key("abc123")
        .run();
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the API key has 6 characters, too few for a Drata API key"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("abc123"));
}
