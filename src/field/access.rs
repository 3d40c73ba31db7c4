//! The access toggles: admin and production-database access of an infrastructure
//! identity, write and production-push access of a version-control one. Drata shows each
//! as a timestamp when on and null when off; a review records them (`true`/`false`) for
//! connections that do not report them, and `PUT …/{id}/toggle` with `toggleField` sets
//! one. The four differ only by the names in [`ACCESS`].

use super::{three_way, Field};
use crate::model::{Access, FieldName, IdentityKind, Previous, Review, Wanted, Write};

/// One access toggle: its names everywhere it appears.
#[derive(Debug)]
pub(crate) struct AccessField {
    pub access: Access,
    /// The identities that have it.
    pub kind: IdentityKind,
    /// The input's and the export's column, and the listing item's field.
    pub column: &'static str,
    /// The export's baseline column: as Drata had it at export.
    pub baseline_column: &'static str,
    /// The report's columns: the row's decision, and Drata's before the run.
    pub report_column: &'static str,
    pub report_previous_column: &'static str,
    /// `toggleField` of the request.
    pub toggle_field: &'static str,
    /// For people: "admin access".
    pub words: &'static str,
}

/// Every access toggle, in [`Access`] order.
pub(crate) const ACCESS: [AccessField; 4] = [
    AccessField {
        access: Access::Admin,
        kind: IdentityKind::Infrastructure,
        column: "adminAccess",
        baseline_column: "drataAdminAccess",
        report_column: "admin_access",
        report_previous_column: "previous_admin_access",
        toggle_field: "INFRASTRUCTURE_ADMIN_ACCESS",
        words: "admin access",
    },
    AccessField {
        access: Access::Db,
        kind: IdentityKind::Infrastructure,
        column: "dbAccess",
        baseline_column: "drataDbAccess",
        report_column: "db_access",
        report_previous_column: "previous_db_access",
        toggle_field: "INFRASTRUCTURE_DB_ACCESS",
        words: "production database access",
    },
    AccessField {
        access: Access::Write,
        kind: IdentityKind::VersionControl,
        column: "writeAccess",
        baseline_column: "drataWriteAccess",
        report_column: "write_access",
        report_previous_column: "previous_write_access",
        toggle_field: "VERSION_CONTROL_WRITE_ACCESS",
        words: "write access",
    },
    AccessField {
        access: Access::PushProductionCode,
        kind: IdentityKind::VersionControl,
        column: "pushProductionCodeAccess",
        baseline_column: "drataPushProductionCodeAccess",
        report_column: "push_production_code_access",
        report_previous_column: "previous_push_production_code_access",
        toggle_field: "VERSION_CONTROL_PUSH_PROD_CODE_ACCESS",
        words: "production push access",
    },
];

impl AccessField {
    /// The toggles of one kind of identity.
    pub(crate) fn of_kind(kind: IdentityKind) -> impl Iterator<Item = &'static AccessField> {
        ACCESS.iter().filter(move |field| field.kind == kind)
    }

    /// The row's decision: on or off, and its baseline.
    fn asked(&self, wanted: &Wanted<'_>) -> Option<(bool, Option<bool>)> {
        { wanted.access.iter() }
            .find(|request| request.access == self.access)
            .map(|request| (request.on, request.baseline))
    }

    /// Drata's value now; off when the listing did not show it (null is off).
    fn now(&self, now: &Previous) -> bool {
        now.access.get(self.access).unwrap_or(false)
    }

    /// `on` or `off`, for people.
    pub(crate) fn describe(on: bool) -> &'static str {
        if on {
            "on"
        } else {
            "off"
        }
    }
}

impl Field for AccessField {
    fn name(&self) -> FieldName {
        FieldName::Access(self.access)
    }

    fn decided(&self, wanted: &Wanted<'_>) -> bool {
        self.asked(wanted).is_some()
    }

    fn review(&self, wanted: &Wanted<'_>, now: &Previous) -> Option<Review> {
        let (on, baseline) = self.asked(wanted)?;
        Some(three_way(baseline.as_ref(), &on, &self.now(now)))
    }

    fn holds(&self, wanted: &Wanted<'_>, now: &Previous) -> bool {
        self.asked(wanted).is_none_or(|(on, _)| on == self.now(now))
    }

    fn changed_since_export(&self, wanted: &Wanted<'_>, now: &Previous) -> bool {
        let baseline = self.asked(wanted).and_then(|(_, baseline)| baseline);
        baseline.is_some_and(|baseline| baseline != self.now(now))
    }

    fn write<'a>(&self, wanted: &Wanted<'a>) -> Option<Write<'a>> {
        let (on, _) = self.asked(wanted)?;
        Some(Write::Toggle {
            toggle_field: self.toggle_field,
            on,
        })
    }

    /// Last: after the service account and the link, whose order Drata constrains.
    fn rank(&self, _wanted: &Wanted<'_>) -> u8 {
        3
    }

    fn request_name(&self) -> &'static str {
        match self.access {
            Access::Admin => "the admin-access request",
            Access::Db => "the database-access request",
            Access::Write => "the write-access request",
            Access::PushProductionCode => "the production-push request",
        }
    }

    fn words(&self) -> &'static str {
        self.words
    }

    fn held_message(&self, review: Review, now: &Previous) -> String {
        let state = Self::describe(self.now(now));
        let words = self.words;
        match review {
            Review::Conflict => format!("{words} was edited, but Drata also changed it since the export (now {state}); not sent (compare, then edit the row or pass --overwrite-drift)"),
            _ => format!("{words} changed in Drata since the export (now {state}); the cell was not edited, so nothing is sent and Drata's value is kept"),
        }
    }
}
