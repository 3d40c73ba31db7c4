//! Table tests of each field: how it compares, where its request goes, what it sends,
//! and the three-way table every field shares.

use super::*;
use crate::model::{Access, AccessRequest, Baseline, Link, LinkRequest, Toggles};

fn marked(reason: &str) -> Baseline {
    Baseline::new(true, reason)
}

fn unmarked() -> Baseline {
    Baseline::new(false, "")
}

/// Every line of the contract's table, and the two-way review without a baseline.
#[test]
fn the_three_way_table() {
    let (a, b, c) = (marked("ci bot"), marked("deploy bot"), unmarked());
    #[rustfmt::skip]
    let cases: [(Option<&Baseline>, &Baseline, &Baseline, Review, &str); 9] = [
        (Some(&a), &a, &a, Review::Unchanged, "not edited, Drata the same"),
        (Some(&a), &a, &c, Review::Drifted, "not edited, Drata changed"),
        (Some(&c), &c, &b, Review::Drifted, "not edited, Drata marked it"),
        (Some(&a), &c, &a, Review::Send, "edited, Drata the same"),
        (Some(&a), &b, &a, Review::Send, "reason edited, Drata the same"),
        (Some(&a), &c, &c, Review::Unchanged, "edited, Drata changed to the row"),
        (Some(&c), &a, &b, Review::Conflict, "edited, Drata changed to another"),
        (None, &a, &c, Review::Send, "no baseline: two-way, differs"),
        (None, &a, &a, Review::Unchanged, "no baseline: two-way, same"),
    ];
    for (baseline, row, current, expected, case) in cases {
        assert_eq!(three_way(baseline, row, current), expected, "{case}");
    }
}

fn state(marked: bool, reason: Option<&str>) -> Previous {
    Previous {
        marked,
        reason: reason.map(str::to_owned),
        ..Previous::default()
    }
}

fn wanted<'a>(
    flag: bool,
    reason: &'a str,
    link: Option<&'a LinkRequest>,
    access: &'a [AccessRequest],
) -> Wanted<'a> {
    Wanted {
        flag: Some(flag),
        reason,
        baseline: None,
        link,
        access,
    }
}

#[test]
fn the_service_account_compares_flags_as_booleans_and_reasons_trimmed() {
    let field = of(FieldName::ServiceAccount);
    #[rustfmt::skip]
    let cases = [
        (true, "ci bot", state(true, Some(" ci bot\t")), true),
        (true, "ci bot", state(true, Some("deploy bot")), false),
        (true, "ci bot", state(false, None), false),
        // Drata keeps no reason on an identity that is not a service account.
        (false, "human, checked", state(false, Some("old")), true),
        (false, "", state(true, Some("ci")), false),
    ];
    for (flag, reason, now, holds) in cases {
        let asked = wanted(flag, reason, None, &[]);
        assert_eq!(
            field.holds(&asked, &now),
            holds,
            "{flag} {reason:?} {now:?}"
        );
        let review = field.review(&asked, &now);
        assert_eq!(
            review == Some(Review::Unchanged),
            holds,
            "{flag} {reason:?}"
        );
    }
    assert!(field.kept(&state(true, Some("ci ")), &state(true, Some("ci"))));
    assert!(!field.kept(&state(true, Some("ci")), &state(false, None)));
    // A false baseline carries no reason: a reason typed on a false row is no edit.
    let baseline = Baseline::new(false, "");
    let mut asked = wanted(false, "human, checked", None, &[]);
    asked.baseline = Some(&baseline);
    assert_eq!(
        field.review(&asked, &state(true, Some("x"))),
        Some(Review::Drifted)
    );
    // --resend sends an unchanged flag again only with a reason.
    assert!(field.sendable(&wanted(false, "r", None, &[]), Review::Unchanged));
    assert!(!field.sendable(&wanted(false, "", None, &[]), Review::Unchanged));
    assert!(field.sendable(&wanted(false, "", None, &[]), Review::Send));
}

fn link_to(email: &str, user: Option<u64>) -> LinkRequest {
    LinkRequest {
        link: Link::from_cell(email),
        user,
        baseline: None,
    }
}

fn linked(link: Link, user: Option<u64>) -> Previous {
    Previous {
        link: Some(link),
        linked_user_id: user,
        ..Previous::default()
    }
}

#[test]
fn the_link_compares_emails_and_the_user_id_drata_names() {
    let field = of(FieldName::Link);
    let ann = Link::User("ann@x".to_owned());
    let to_ann = link_to("Ann@x ", Some(7));
    let nobody = link_to("", None);
    #[rustfmt::skip]
    let cases = [
        (&to_ann, linked(ann.clone(), Some(7)), true),
        (&to_ann, linked(ann.clone(), None), true),
        // Another user of the same email is not the one sent.
        (&to_ann, linked(ann.clone(), Some(8)), false),
        (&to_ann, linked(Link::Nobody, None), false),
        (&nobody, linked(Link::Nobody, None), true),
        (&nobody, linked(ann.clone(), Some(7)), false),
    ];
    for (asked, now, holds) in cases {
        let asked = wanted(false, "", Some(asked), &[]);
        assert_eq!(field.holds(&asked, &now), holds, "{now:?}");
    }
    // The baseline's link is reviewed by the same table.
    let mut edited = link_to("bob@x", Some(9));
    edited.baseline = Some(Link::Nobody);
    let asked = wanted(false, "", Some(&edited), &[]);
    assert_eq!(
        field.review(&asked, &linked(ann.clone(), Some(7))),
        Some(Review::Conflict)
    );
    assert_eq!(
        field.review(&asked, &linked(Link::Nobody, None)),
        Some(Review::Send)
    );
    assert!(field.kept(&linked(ann.clone(), None), &linked(ann, Some(7))));
    assert!(field.kept(&Previous::default(), &linked(Link::Nobody, None)));
    assert_eq!(field.write(&asked), Some(Write::Connect(Some(9))));
    assert_eq!(
        field.write(&wanted(false, "", Some(&nobody), &[])),
        Some(Write::Connect(None))
    );
    // Offline, an email is not resolved: nothing to send.
    let unresolved = link_to("bob@x", None);
    assert_eq!(
        field.write(&wanted(false, "", Some(&unresolved), &[])),
        None
    );
}

fn toggles(admin: Option<bool>, db: Option<bool>) -> Previous {
    let mut access = Toggles::default();
    access.set(Access::Admin, admin);
    access.set(Access::Db, db);
    Previous {
        access,
        ..Previous::default()
    }
}

#[test]
fn an_access_toggle_compares_as_a_boolean_and_null_is_off() {
    let admin = of(FieldName::Access(Access::Admin));
    let on = [AccessRequest {
        access: Access::Admin,
        on: true,
        baseline: Some(false),
    }];
    let asked = wanted(false, "", None, &on);
    #[rustfmt::skip]
    let cases = [
        (toggles(Some(true), None), true, Some(Review::Unchanged)),
        (toggles(Some(false), Some(true)), false, Some(Review::Send)),
        (toggles(None, None), false, Some(Review::Send)),
    ];
    for (now, holds, review) in cases {
        assert_eq!(admin.holds(&asked, &now), holds, "{now:?}");
        assert_eq!(admin.review(&asked, &now), review, "{now:?}");
    }
    // Not decided by the row: it holds whatever Drata has, and is never sent.
    let db = of(FieldName::Access(Access::Db));
    assert!(!db.decided(&asked));
    assert_eq!(db.review(&asked, &toggles(None, Some(true))), None);
    assert!(db.holds(&asked, &toggles(None, Some(true))));
    assert_eq!(db.write(&asked), None);
    assert_eq!(
        admin.write(&asked),
        Some(Write::Toggle {
            toggle_field: "INFRASTRUCTURE_ADMIN_ACCESS",
            on: true
        })
    );
    assert!(admin.kept(&toggles(Some(false), None), &toggles(None, None)));
    assert!(!admin.kept(&toggles(Some(false), None), &toggles(Some(true), None)));
    // Edited, and changed in Drata to something else: a conflict.
    let mut drifted = on;
    drifted[0].baseline = Some(true);
    drifted[0].on = false;
    assert_eq!(
        admin.review(
            &wanted(false, "", None, &drifted),
            &toggles(Some(false), None)
        ),
        Some(Review::Unchanged)
    );
}

#[test]
fn requests_go_in_the_order_drata_accepts() {
    let order = |link: Option<&LinkRequest>, access: &[AccessRequest]| {
        let asked = wanted(true, "ci", link, access);
        let names: Vec<FieldName> = writes(&asked, decided(&asked))
            .into_iter()
            .map(|(name, _)| name)
            .collect();
        names
    };
    let toggle = [AccessRequest {
        access: Access::Db,
        on: false,
        baseline: None,
    }];
    use FieldName::{Link as L, ServiceAccount as S};
    assert_eq!(order(None, &[]), [S]);
    // Unmark before linking; unlink before marking; toggles last.
    assert_eq!(order(Some(&link_to("ann@x", Some(3))), &[]), [S, L]);
    assert_eq!(order(Some(&link_to("", None)), &[]), [L, S]);
    assert_eq!(
        order(Some(&link_to("", None)), &toggle),
        [L, S, FieldName::Access(Access::Db)]
    );
    // A field not in the set is not sent.
    let asked = wanted(true, "ci", None, &toggle);
    let only = Fields::default().with(FieldName::Access(Access::Db));
    assert_eq!(writes(&asked, only).len(), 1);
    assert_eq!(
        request_names(decided(&asked)),
        "the service-account request and the database-access request"
    );
}

#[test]
fn holds_and_kept_ask_only_the_fields_of_the_set() {
    let on = [AccessRequest {
        access: Access::Admin,
        on: true,
        baseline: None,
    }];
    let asked = wanted(true, "ci", None, &on);
    let now = Previous {
        marked: true,
        reason: Some("ci".to_owned()),
        ..toggles(Some(false), None)
    };
    let sa = Fields::default().with(FieldName::ServiceAccount);
    let admin = Fields::default().with(FieldName::Access(Access::Admin));
    assert!(holds(&asked, &now, sa));
    assert!(!holds(&asked, &now, admin));
    assert!(!holds(&asked, &now, decided(&asked)));
    let before = state(false, None);
    assert!(!kept(&before, &now, sa));
    assert!(kept(&before, &now, Fields::default().with(FieldName::Link)));
}

#[test]
fn a_field_changed_since_the_export_is_told_by_its_baseline() {
    let exported = Baseline::new(true, "ci");
    let mut asked = wanted(true, "ci", None, &[]);
    assert!(
        !changed_since_export(&asked, &state(false, None)),
        "no baseline"
    );
    asked.baseline = Some(&exported);
    assert!(!changed_since_export(&asked, &state(true, Some(" ci"))));
    assert!(changed_since_export(&asked, &state(false, None)));
    let mut to_ann = link_to("ann@x", Some(7));
    to_ann.baseline = Some(Link::Nobody);
    let linked_row = wanted(false, "", Some(&to_ann), &[]);
    assert!(!changed_since_export(
        &linked_row,
        &linked(Link::Nobody, None)
    ));
    assert!(changed_since_export(
        &linked_row,
        &linked(Link::User("bob@x".to_owned()), Some(8))
    ));
    let admin_was_on = [AccessRequest {
        access: Access::Admin,
        on: false,
        baseline: Some(true),
    }];
    let toggled = wanted(false, "", None, &admin_was_on);
    assert!(!changed_since_export(&toggled, &toggles(Some(true), None)));
    assert!(changed_since_export(&toggled, &toggles(Some(false), None)));
    assert!(
        changed_since_export(&toggled, &toggles(None, None)),
        "null is off"
    );
}
