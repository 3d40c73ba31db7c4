//! The end-of-run summary: text on standard error, and JSON for machines.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::{ConcurrencyFigures, LatencyFigures, Outcome, Tally};
use crate::text::plural;

/// The summary of one `apply` or `plan` run. Field names are the JSON schema.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    pub(crate) tool: &'static str,
    pub(crate) version: &'static str,
    pub(crate) run_id: String,
    pub(crate) command: &'static str,
    pub(crate) input: FileDigest,
    pub(crate) report: FileDigest,
    pub(crate) base_url: String,
    pub(crate) started_at: String,
    pub(crate) finished_at: String,
    pub(crate) elapsed_seconds: f64,
    pub(crate) rows: u64,
    pub(crate) counts: BTreeMap<&'static str, u64>,
    /// Rows the check after the run found applied, and rows answered 2xx it did not.
    pub(crate) verified: u64,
    pub(crate) not_verified: u64,
    pub(crate) requests: u64,
    pub(crate) retries: u64,
    pub(crate) rate_limited: u64,
    /// How many times 429 storms halved the request rate.
    pub(crate) rate_reductions: u64,
    pub(crate) effective_rate_per_minute: f64,
    /// The in-flight limit: its mode, its value at the end, the highest it reached.
    pub(crate) concurrency: ConcurrencyFigures,
    /// Latencies of the run's requests, in milliseconds.
    pub(crate) latency_ms: LatencyFigures,
    pub(crate) stopped: Option<String>,
    pub(crate) resume_command: Option<String>,
    /// Rows that are not in the report because it could not be written; each was logged.
    pub(crate) unrecorded_rows: u64,
    /// Outputs of the run that could not be written (`undo file PATH: why`); each makes
    /// the exit code non-zero.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) unwritten_outputs: Vec<String>,
    pub(crate) exit_code: u8,
}

/// `p50 812 ms, p95 1030 ms`, or `none yet`.
pub(super) fn describe_latency(latency: &LatencyFigures) -> String {
    match (latency.p50, latency.p95) {
        (Some(p50), Some(p95)) => format!("p50 {p50:.0} ms, p95 {p95:.0} ms"),
        _ => "none yet".to_owned(),
    }
}

#[derive(Debug, Clone, Serialize)]
pub(crate) struct FileDigest {
    pub(crate) path: String,
    pub(crate) sha256: Option<String>,
}

/// Every outcome with its count, zeros included, so the JSON schema is stable.
pub(crate) fn counts(tally: &Tally) -> BTreeMap<&'static str, u64> {
    Outcome::ALL
        .into_iter()
        .map(|o| (o.as_str(), tally.get(o)))
        .collect()
}

impl Summary {
    /// The summary as a log event: `{"level":"INFO","message":"summary",...fields}`.
    pub(crate) fn as_event(&self) -> serde_json::Value {
        let mut event = serde_json::json!({
            "timestamp": self.finished_at,
            "level": "INFO",
            "message": "summary",
        });
        if let (Some(event), Ok(serde_json::Value::Object(fields))) =
            (event.as_object_mut(), serde_json::to_value(self))
        {
            event.extend(fields);
        }
        event
    }

    /// The human summary, several lines.
    pub(crate) fn to_text(&self) -> String {
        let counts: Vec<String> = self
            .counts
            .iter()
            .filter(|(_, n)| **n > 0)
            .map(|(name, n)| format!("{name} {n}"))
            .collect();
        let mut text = format!(
            "{} finished: {} {} in {:.1} s\n  {}\n  requests {}, retries {}, 429s {}, effective rate {:.0}/min\n  report: {}\n",
            self.command,
            self.rows,
            plural(self.rows, "row", "rows"),
            self.elapsed_seconds,
            if counts.is_empty() { "no rows".to_owned() } else { counts.join(", ") },
            self.requests,
            self.retries,
            self.rate_limited,
            self.effective_rate_per_minute,
            self.report.path,
        );
        text.push_str(&format!(
            "  in flight: {} limit {} at the end, {} at most, lowered {} time(s); latency {}\n",
            self.concurrency.mode,
            self.concurrency.limit,
            self.concurrency.max,
            self.concurrency.reductions,
            describe_latency(&self.latency_ms),
        ));
        if self.verified + self.not_verified > 0 {
            text.push_str(&format!(
                "  checked after the run: {} verified in Drata, {} answered 2xx but not shown applied\n",
                self.verified, self.not_verified
            ));
        }
        if self.rate_reductions > 0 {
            text.push_str(&format!(
                "  the server's rate limit lowered the pace {} time(s): consider a lower --rate\n",
                self.rate_reductions
            ));
        }
        if self.unrecorded_rows > 0 {
            text.push_str(&format!(
                "  {} {} NOT in the report (it could not be written): each is logged above with its outcome; a resumed run sends them again\n",
                self.unrecorded_rows,
                plural(self.unrecorded_rows, "row is", "rows are")
            ));
        }
        for output in &self.unwritten_outputs {
            text.push_str(&format!("  NOT WRITTEN: the {output}\n"));
        }
        if let Some(why) = &self.stopped {
            text.push_str(&format!("  stopped: {why}\n"));
        }
        if let Some(command) = &self.resume_command {
            text.push_str(&format!(
                "  to finish the remaining rows, run:\n    {command}\n"
            ));
        }
        text
    }
}
