//! `export`: every identity of a kind, read through the same rate-limited, retrying,
//! defensive listing as `plan`, written in the input format with what a reviewer needs
//! beside it (and the state it read, as baseline columns), so that a review can start
//! from Drata and end with `apply`.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use super::blocking::rules_unless_stopped;
use super::session::Session;
use crate::config::{ExportConfig, ExportFilter, ExportFormat, Only};
use crate::drata::{Current, CurrentState};
use crate::engine::ConcurrencyMode;
use crate::engine::{self, watch_signals, RunControl, Signals};
use crate::error::Error;
use crate::exit;
use crate::field::AccessField;
use crate::input::rules::{decide, RuleSet};
use crate::model::{StopReason, MAX_ID};
use crate::output::{write_csv, xlsx_bytes, CreatedFile, ExportLayout, ExportRow};
use crate::suggest::{suggest, IdentityFacts, Peers};

/// Runs `export` and returns the exit code.
pub(super) async fn run(config: ExportConfig) -> Result<u8, Error> {
    let control = Arc::new(RunControl::default());
    let signals = watch_signals(Signals::install(), Arc::clone(&control));
    // The file first: a path that cannot be written fails before any request.
    let mut file = match &config.output {
        Some(path) => {
            Some(
                CreatedFile::staged(path, config.force).map_err(|source| Error::Output {
                    what: "export",
                    path: path.clone(),
                    source,
                })?,
            )
        }
        None => None,
    };
    // A rules file is checked before any request.
    let rules = rules_unless_stopped(&control, config.rules.as_deref()).await?;
    // The listing is read one page at a time; a simulator's default identities will do.
    let one_page_at_a_time = ConcurrencyMode::Fixed(std::num::NonZeroUsize::MIN);
    let session = Session::connect(&config.connect, one_page_at_a_time, 0, &control).await?;
    // The baseline is Drata as of the start of the read: a change made while it runs
    // counts as a change since the export.
    let exported_at = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    let fetched = engine::fetch(&session.engine).await;
    signals.abort();
    let listing = match fetched {
        Ok(listing) => listing,
        Err(e) => {
            if let Some(StopReason::Interrupted(signal)) = control.reason() {
                tracing::warn!("interrupted: nothing was written");
                return Ok(exit::for_signal(signal));
            }
            return Err(Error::Listing(e.to_string()));
        }
    };
    for (id, _) in listing
        .state
        .sorted()
        .into_iter()
        .filter(|(id, _)| !usable(*id))
    {
        tracing::warn!(
            id,
            "identity {id} is left out: its id is above {MAX_ID} (2^53 - 1), more than \
             a JSON number holds exactly, and an input with it would be refused"
        );
    }
    let mut rows = export_rows(&listing.state, &config.filter, &exported_at);
    if let Some(rules) = &rules {
        name_rules(&mut rows, &listing.state, rules);
    }
    let suggested = rows.iter().filter(|r| r.suggestion.is_some()).count();
    let written = match file.as_mut() {
        Some(created) => write_file(created, &rows, &config),
        None => write_csv(
            config.log.console().stdout(),
            &rows,
            config.excel,
            &layout(&config),
        )
        .map_err(Error::Stdout),
    };
    written?;
    let to = match file {
        Some(created) => {
            let shown = created.path().display().to_string();
            created.keep().map_err(|source| Error::Output {
                what: "export",
                path: shown.clone().into(),
                source,
            })?;
            shown
        }
        None => "standard output".to_owned(),
    };
    tracing::info!(
        identities = rows.len(),
        listed = listing.state.len(),
        suggestions = suggested,
        requests = listing.pages,
        "exported to {to}"
    );
    Ok(exit::SUCCESS)
}

/// The export's columns besides the fixed ones: the rule column with `--rules`, and the
/// access toggles of the kind listed.
fn layout(config: &ExportConfig) -> ExportLayout {
    ExportLayout {
        with_rule: config.rules.is_some(),
        access: AccessField::of_kind(config.connect.kind).collect(),
    }
}

/// Writes the rows to the created file; on failure the file is removed when dropped.
fn write_file(
    created: &mut CreatedFile,
    rows: &[ExportRow],
    config: &ExportConfig,
) -> Result<(), Error> {
    let path = created.path().to_owned();
    let failed = |source| Error::Output {
        what: "export",
        path: path.clone(),
        source,
    };
    let file = created.file().map_err(failed)?;
    match config.format {
        ExportFormat::Csv => write_csv(
            std::io::BufWriter::new(&mut *file),
            rows,
            config.excel,
            &layout(config),
        ),
        ExportFormat::Xlsx => xlsx_bytes(rows, &layout(config)).and_then(|(bytes, cut)| {
            for id in cut {
                tracing::warn!(
                    id,
                    "identity {id}: a cell is longer than a workbook cell holds (32,767 \
                     characters) and was cut; its end is marked \"[cut: N characters]\""
                );
            }
            file.write_all(&bytes)
        }),
    }
    .and_then(|()| file.sync_all())
    .map_err(failed)
}

/// True when an id can be sent back: JSON numbers hold integers exactly only up to
/// 2^53 - 1, and the input refuses larger ids.
fn usable(id: u64) -> bool {
    id <= MAX_ID
}

/// Which connection an identity belongs to, for counting its neighbours.
fn connection_key(current: &Current) -> Option<String> {
    let details = &current.details;
    if let Some(id) = details.connection_id {
        return Some(format!("#{id}"));
    }
    let named = format!(
        "{} {}",
        details.client_type.as_deref().unwrap_or_default(),
        details.client_alias.as_deref().unwrap_or_default()
    );
    Some(named).filter(|n| !n.trim().is_empty())
}

/// True when the identity passes `--client-type`, `--connection` and `--only`.
fn kept(filter: &ExportFilter, current: &Current) -> bool {
    let details = &current.details;
    let same = |value: &Option<String>, wanted: &str| {
        value
            .as_deref()
            .is_some_and(|v| v.trim().eq_ignore_ascii_case(wanted))
    };
    if let Some(wanted) = &filter.client_type {
        if !same(&details.client_type, wanted) {
            return false;
        }
    }
    if let Some(wanted) = &filter.connection {
        let by_id = wanted
            .trim_start_matches('#')
            .parse::<u64>()
            .ok()
            .is_some_and(|id| details.connection_id == Some(id));
        if !by_id && !same(&details.client_alias, wanted) {
            return false;
        }
    }
    match filter.only {
        Some(Only::Unmarked) => current.marked_at.is_none(),
        Some(Only::Marked) => current.marked_at.is_some(),
        None => true,
    }
}

/// The rule column: the rule that would decide each identity, whatever it would change;
/// the count of identities no rule matches is logged.
fn name_rules(rows: &mut [ExportRow], state: &CurrentState, rules: &RuleSet) {
    let today = super::utc_date(std::time::SystemTime::now());
    let mut unmatched = 0u64;
    for row in rows.iter_mut() {
        row.rule = state
            .get(row.id)
            .and_then(|current| decide(rules, &current.subject(row.id), &today))
            .map(|decision| decision.rule.to_owned());
        unmatched += u64::from(row.rule.is_none());
    }
    tracing::info!(
        unmatched,
        "{unmatched} of {} identities exported match no rule",
        rows.len()
    );
}

/// Every identity the filter keeps, sorted by id, with its suggestion. A connection's
/// counts are over the whole listing, whatever the filter.
pub(super) fn export_rows(
    state: &CurrentState,
    filter: &ExportFilter,
    exported_at: &str,
) -> Vec<ExportRow> {
    let all = state.sorted();
    let mut connections: HashMap<String, Peers> = HashMap::new();
    for (_, current) in &all {
        if let Some(key) = connection_key(current) {
            let counts = connections.entry(key).or_default();
            counts.others += 1;
            counts.marked += u64::from(current.marked_at.is_some());
        }
    }
    all.into_iter()
        .filter(|(id, current)| usable(*id) && kept(filter, current))
        .map(|(id, current)| {
            let marked = current.marked_at.is_some();
            // The counts of the connection, less this identity.
            let peers = connection_key(current)
                .and_then(|key| connections.get(&key))
                .map_or_else(Peers::default, |all| Peers {
                    others: all.others.saturating_sub(1),
                    marked: all.marked.saturating_sub(u64::from(marked)),
                });
            let details = &current.details;
            let facts = IdentityFacts {
                marked,
                username: current.username.as_deref(),
                email: current.email.as_deref(),
                linked_user: details.linked,
                peers,
            };
            ExportRow {
                id,
                marked,
                reason: current.reason.clone(),
                username: current.username.clone(),
                email: current.email.clone(),
                connection_id: details.connection_id,
                client_type: details.client_type.clone(),
                client_alias: details.client_alias.clone(),
                linked_user: details.linked_user_email.clone(),
                connected_at: details.connected_at.clone(),
                disconnected_at: details.disconnected_at.clone(),
                has_mfa: details.has_mfa,
                suggestion: suggest(&facts),
                rule: None,
                access: current.access,
                exported_at: exported_at.to_owned(),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drata::Page;
    use crate::suggest::Clue;

    /// A state from a listing page: connection 1 holds three marked bots and a person,
    /// connection 2 a person and a bot nobody marked.
    fn state() -> CurrentState {
        let marked = r#""serviceAccount":"2026-01-01T00:00:00.000Z","serviceAccountReason":"bot""#;
        let aws = r#""connection":{"id":1,"clientType":"AWS","clientAlias":"aws-prod"}"#;
        let gcp = r#""connection":{"id":"2","clientType":"GCP","clientAlias":"gcp-main"}"#;
        let person = |id: u64, connection: &str| {
            format!(
                r#"{{"id":{id},"username":"p{id}","email":"p{id}@example.com","user":{{"email":"p{id}@example.com"}},{connection}}}"#
            )
        };
        let items = [
            format!(r#"{{"id":4,"username":"a","email":null,"user":null,{marked},{aws}}}"#),
            person(9, aws),
            format!(r#"{{"id":2,"username":"b","email":null,"user":null,{marked},{aws}}}"#),
            format!(r#"{{"id":3,"username":"c","email":null,"user":null,{marked},{aws}}}"#),
            person(7, gcp),
            format!(r#"{{"id":8,"username":"terraform","email":null,"user":null,{gcp}}}"#),
        ];
        let body = format!(r#"{{"data":[{}],"total":6}}"#, items.join(","));
        let page = Page::from_body(body.as_bytes()).unwrap();
        let mut state = CurrentState::default();
        for identity in page.identities {
            state.add(identity);
        }
        state
    }

    fn ids(rows: &[ExportRow]) -> Vec<u64> {
        rows.iter().map(|r| r.id).collect()
    }

    #[test]
    fn rows_are_sorted_and_a_connection_of_service_accounts_is_a_clue() {
        let rows = export_rows(&state(), &ExportFilter::default(), "");
        assert_eq!(ids(&rows), [2, 3, 4, 7, 8, 9]);
        let by_id = |id| rows.iter().find(|r| r.id == id).unwrap();
        assert_eq!(
            by_id(9).suggestion.as_ref().map(|s| s.clues.clone()),
            Some(vec![Clue::ConnectionAllMarked { others: 3 }])
        );
        assert_eq!(by_id(7).suggestion, None, "one neighbour, not marked");
        assert_eq!(
            by_id(8).suggestion.as_ref().map(|s| s.clues.clone()),
            Some(vec![
                Clue::NoLinkedUser,
                Clue::NoEmail,
                Clue::Name(vec!["terraform"])
            ])
        );
        assert_eq!(by_id(9).linked_user.as_deref(), Some("p9@example.com"));
        assert!(by_id(2).marked && by_id(2).suggestion.is_none());
    }

    #[test]
    fn filters_combine_and_connection_counts_ignore_them() {
        let state = state();
        let only = |filter: ExportFilter| ids(&export_rows(&state, &filter, ""));
        let connection = |c: &str| ExportFilter {
            connection: Some(c.to_owned()),
            ..ExportFilter::default()
        };
        assert_eq!(only(connection("2")), [7, 8]);
        assert_eq!(only(connection("#2")), [7, 8]);
        assert_eq!(only(connection("GCP-MAIN")), [7, 8]);
        assert_eq!(
            only(connection("gcp")),
            Vec::<u64>::new(),
            "an alias, not a type"
        );
        let unmarked_aws = ExportFilter {
            client_type: Some("aws".to_owned()),
            only: Some(Only::Unmarked),
            ..ExportFilter::default()
        };
        let rows = export_rows(&state, &unmarked_aws, "");
        assert_eq!(ids(&rows), [9]);
        assert!(
            rows[0].suggestion.is_some(),
            "counted over the whole listing"
        );
        let marked = ExportFilter {
            only: Some(Only::Marked),
            ..ExportFilter::default()
        };
        assert_eq!(only(marked), [2, 3, 4]);
    }
}
