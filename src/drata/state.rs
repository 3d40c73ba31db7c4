//! Drata's current state: every identity of a kind, as the listing showed it (the fields a
//! review decides among it), for `plan` and `apply`, the check after the run, `export`
//! and username/email lookup.

use std::collections::HashMap;

use super::wire::{Identity, User};
use crate::model::{
    IdentityView, Link, Lookup, LookupError, LookupKey, Previous, Subject, Toggles,
};
use crate::text::printable;

/// What Drata says about one identity now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Current {
    /// When it was marked as a service account; `None` when it is not one.
    pub marked_at: Option<String>,
    pub reason: Option<String>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// `clientType alias (#id)` of its connection, for messages.
    pub connection: String,
    connection_names: Vec<String>,
    /// The access toggles the listing shows.
    pub access: Toggles,
    /// What a review needs besides: read for `export`, never compared.
    pub details: Details,
}

/// The rest of what the listing says about an identity, for `export`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Details {
    pub connection_id: Option<u64>,
    pub client_type: Option<String>,
    pub client_alias: Option<String>,
    /// True when the identity is linked to a Drata user.
    pub linked: bool,
    /// That user's email, when it says.
    pub linked_user_email: Option<String>,
    /// That user's id, when it says.
    pub linked_user_id: Option<u64>,
    pub connected_at: Option<String>,
    pub disconnected_at: Option<String>,
    pub has_mfa: Option<bool>,
}

impl Current {
    fn from_identity(identity: Identity) -> Self {
        let connection = identity.connection;
        let mut names = Vec::new();
        let mut shown = Vec::new();
        if let Some(client_type) = &connection.client_type {
            names.push(client_type.to_lowercase());
            shown.push(client_type.clone());
        }
        if let Some(alias) = &connection.client_alias {
            names.push(alias.to_lowercase());
            shown.push(alias.clone());
        }
        // The export's own connection cell, `AWS aws-prod`, names it too.
        if let (Some(client_type), Some(alias)) =
            (&connection.client_type, &connection.client_alias)
        {
            names.push(format!("{client_type} {alias}").to_lowercase());
        }
        if let Some(id) = connection.id {
            names.push(id.to_string());
            names.push(format!("#{id}"));
            shown.push(format!("#{id}"));
        }
        Self {
            // For messages on a terminal: nothing the server sent can forge a line.
            connection: printable(&shown.join(" ")),
            marked_at: identity.service_account,
            reason: identity.service_account_reason,
            username: identity.username,
            email: identity.email,
            connection_names: names,
            access: identity.access,
            details: Details {
                connection_id: connection.id,
                client_type: connection.client_type,
                client_alias: connection.client_alias,
                linked: identity.user.is_some(),
                linked_user_id: identity.user.as_ref().and_then(|user| user.id),
                linked_user_email: identity.user.and_then(|user| user.email),
                connected_at: identity.connected_at,
                disconnected_at: identity.disconnected_at,
                has_mfa: identity.has_mfa,
            },
        }
    }

    /// Who it is linked to, as the review compares it (the email trimmed and lower-cased,
    /// as a cell is read and a user resolved); a user the answer names without an email is
    /// named by the users listing, else by its id.
    pub(crate) fn link(&self, users: Option<&Users>) -> Link {
        let details = &self.details;
        if !details.linked {
            return Link::Nobody;
        }
        let named = |email: &str| Some(email.trim().to_ascii_lowercase()).filter(|e| !e.is_empty());
        let email = details
            .linked_user_email
            .as_deref()
            .and_then(named)
            .or_else(|| {
                let id = details.linked_user_id?;
                users?.email(id).and_then(named)
            });
        // An email the users listing gives to another user does not name this one.
        let taken = |email: &str, id: u64| {
            users.is_some_and(|users| users.resolve(email).is_ok_and(|other| other != id))
        };
        match (email, details.linked_user_id) {
            (Some(email), Some(id)) if taken(&email, id) => Link::User(format!("user #{id}")),
            (Some(email), _) => Link::User(email),
            (None, Some(id)) => Link::User(format!("user #{id}")),
            (None, None) => Link::User("a user".to_owned()),
        }
    }

    /// What a rule may look at of the identity.
    pub(crate) fn subject(&self, id: u64) -> Subject<'_> {
        Subject {
            id,
            username: self.username.as_deref(),
            email: self.email.as_deref(),
            client_type: self.details.client_type.as_deref(),
            connection_alias: self.details.client_alias.as_deref(),
            connection_id: self.details.connection_id,
            linked: self.details.linked,
            marked: self.marked_at.is_some(),
            access: self.access,
        }
    }

    /// What the report shows of the identity.
    pub(crate) fn view(&self) -> IdentityView {
        IdentityView {
            username: self.username.clone(),
            email: self.email.clone(),
            service_account_at: self.marked_at.clone(),
            connection: Some(self.connection.clone()).filter(|c| !c.is_empty()),
        }
    }

    /// What the undo file and the evidence need to know of the state before the run; the
    /// link is left out (`link` is `None`): only a run that decides links shows it.
    pub(crate) fn previous(&self) -> Previous {
        Previous {
            marked: self.marked_at.is_some(),
            reason: self.reason.clone(),
            link: None,
            linked_user_id: self.details.linked_user_id,
            access: self.access,
        }
    }

    /// Every field a review compares, the link included: what the fields read as Drata
    /// now (`crate::field`).
    pub(crate) fn state(&self, users: Option<&Users>) -> Previous {
        Previous {
            link: Some(self.link(users)),
            ..self.previous()
        }
    }
}

/// Every identity of one kind, by id, with indexes for lookup.
#[derive(Debug, Default)]
pub(crate) struct CurrentState {
    by_id: HashMap<u64, Current>,
    by_username: HashMap<String, Vec<u64>>,
    by_email: HashMap<String, Vec<u64>>,
}

impl CurrentState {
    pub(crate) fn get(&self, id: u64) -> Option<&Current> {
        self.by_id.get(&id)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// Every identity, sorted by id.
    pub(crate) fn sorted(&self) -> Vec<(u64, &Current)> {
        let mut all: Vec<(u64, &Current)> = self.by_id.iter().map(|(id, c)| (*id, c)).collect();
        all.sort_unstable_by_key(|(id, _)| *id);
        all
    }

    /// Builds the state from identities.
    #[cfg(test)]
    pub(crate) fn from_identities(identities: impl IntoIterator<Item = Identity>) -> Self {
        let mut state = Self::default();
        for identity in identities {
            state.add(identity);
        }
        state
    }

    /// Adds an identity the listing showed. An id seen before (a page repeated while
    /// Drata syncs) is replaced by the later copy, the fresher read; a copy that differs
    /// in what a run compares is [`Added::Conflicting`], for a warning.
    pub(crate) fn add(&mut self, identity: Identity) -> Added {
        let Some(id) = identity.id else {
            return Added::NoId;
        };
        let current = Current::from_identity(identity);
        let added = match self.by_id.get(&id) {
            None => Added::New,
            Some(earlier) if !conflicts(earlier, &current) => return Added::Repeated,
            Some(_) => {
                self.unindex(id);
                Added::Conflicting
            }
        };
        if let Some(username) = &current.username {
            self.by_username
                .entry(username.clone())
                .or_default()
                .push(id);
        }
        if let Some(email) = &current.email {
            self.by_email
                .entry(email.to_ascii_lowercase())
                .or_default()
                .push(id);
        }
        self.by_id.insert(id, current);
        added
    }

    /// Removes `id` from the username and email indexes, before a later copy replaces it.
    fn unindex(&mut self, id: u64) {
        let Some(earlier) = self.by_id.get(&id) else {
            return;
        };
        let keys = [
            (earlier.username.clone(), &mut self.by_username),
            (
                earlier.email.as_deref().map(str::to_ascii_lowercase),
                &mut self.by_email,
            ),
        ];
        for (key, index) in keys {
            if let Some(ids) = key.and_then(|key| index.get_mut(&key)) {
                ids.retain(|other| *other != id);
            }
        }
    }
}

/// What adding an identity of the listing did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// An id not seen before.
    New,
    /// An id seen before, in the same state: nothing changed.
    Repeated,
    /// An id seen before in another state (marked, reason, username or link differ): the
    /// later copy replaced the earlier one.
    Conflicting,
    /// No readable id: skipped.
    NoId,
}

/// True when two copies of one identity differ in what a run compares or shows: the
/// flag, the reason, the username, and who it is linked to.
fn conflicts(earlier: &Current, later: &Current) -> bool {
    let link = |c: &Current| {
        (
            c.details.linked,
            c.details.linked_user_id,
            c.details.linked_user_email.clone(),
        )
    };
    earlier.marked_at != later.marked_at
        || earlier.reason != later.reason
        || earlier.access != later.access
        || earlier.username != later.username
        || link(earlier) != link(later)
}

/// Drata's users, the people identities are linked to, as the users listing showed
/// them: read once per run, when the input decides links.
#[derive(Debug, Clone, Default)]
pub(crate) struct Users {
    by_id: HashMap<u64, String>,
    /// Trimmed, ASCII case folded: how Drata compares emails.
    by_email: HashMap<String, Vec<u64>>,
    /// Folded as Unicode folds them: only to name a look-alike in a message.
    by_unicode_email: HashMap<String, u64>,
}

impl Users {
    /// Adds a user; false when its id was already read.
    pub(crate) fn add(&mut self, user: User) -> bool {
        if self.by_id.contains_key(&user.id) {
            return false;
        }
        let email = user.email.trim().to_ascii_lowercase();
        if !email.is_empty() {
            self.by_email.entry(email).or_default().push(user.id);
            self.by_unicode_email
                .insert(user.email.trim().to_lowercase(), user.id);
        }
        self.by_id.insert(user.id, user.email);
        true
    }

    pub(crate) fn len(&self) -> usize {
        self.by_id.len()
    }

    /// The email of user `id`, as Drata wrote it.
    pub(crate) fn email(&self, id: u64) -> Option<&str> {
        self.by_id.get(&id).map(String::as_str)
    }

    /// The one user with this email, in any ASCII case. An email that differs from a
    /// user's only by Unicode case (`K` U+212A for `k`) is no match, and is named.
    pub(crate) fn resolve(&self, email: &str) -> Result<u64, LookupError> {
        match self
            .by_email
            .get(&email.trim().to_ascii_lowercase())
            .map(Vec::as_slice)
        {
            Some([only]) => Ok(*only),
            Some(several) if several.len() > 1 => Err(LookupError::SeveralUsers {
                email: email.to_owned(),
                count: several.len(),
            }),
            _ => Err(self.look_alike(email).map_or_else(
                || LookupError::NoUser(email.to_owned()),
                |user| LookupError::LookAlikeUser {
                    cell: email.to_owned(),
                    user: user.to_owned(),
                },
            )),
        }
    }

    /// The email of a user that matches `email` only once both are folded as Unicode
    /// folds case.
    fn look_alike(&self, email: &str) -> Option<&str> {
        let id = self.by_unicode_email.get(&email.trim().to_lowercase())?;
        self.email(*id)
    }
}

impl Lookup for CurrentState {
    /// The identities alone know no users.
    fn user(&self, email: &str) -> Result<u64, LookupError> {
        Err(LookupError::UsersUnread(email.to_owned()))
    }

    /// Usernames compare exactly (trimmed), emails ignoring case.
    fn check(&self, id: u64, key: &LookupKey) -> Result<(), LookupError> {
        let Some(current) = self.by_id.get(&id) else {
            // The id is not in the listing; if the row's name is someone's, the id is the
            // typo, and the row would mark a stranger.
            return match self.resolve(key) {
                Ok(other) if other != id => Err(LookupError::NotThisId {
                    id,
                    key: key.clone(),
                    other,
                }),
                _ => Ok(()),
            };
        };
        let mismatch = |in_drata: &Option<String>, in_row: &str| LookupError::Mismatch {
            id,
            in_drata: in_drata.clone().unwrap_or_else(|| "(no name)".to_owned()),
            in_row: in_row.to_owned(),
        };
        if let Some(username) = &key.username {
            if current.username.as_deref().map(str::trim) != Some(username.trim()) {
                return Err(mismatch(&current.username, username));
            }
        }
        if let Some(email) = &key.email {
            let same = current
                .email
                .as_deref()
                .is_some_and(|e| e.trim().eq_ignore_ascii_case(email.trim()));
            if !same {
                return Err(mismatch(&current.email, email));
            }
        }
        Ok(())
    }

    /// Username matches exactly, email ignoring case; a connection narrows by client
    /// type, alias or connection id, ignoring case.
    fn resolve(&self, key: &LookupKey) -> Result<u64, LookupError> {
        let by_username = key
            .username
            .as_ref()
            .map(|u| self.by_username.get(u).cloned().unwrap_or_default());
        let by_email = key.email.as_ref().map(|e| {
            self.by_email
                .get(&e.to_ascii_lowercase())
                .cloned()
                .unwrap_or_default()
        });
        let mut candidates = match (by_username, by_email) {
            (Some(a), Some(b)) => a.into_iter().filter(|id| b.contains(id)).collect(),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => Vec::new(),
        };
        if let Some(connection) = &key.connection {
            let wanted = connection.to_lowercase();
            candidates.retain(|id| {
                self.by_id
                    .get(id)
                    .is_some_and(|c| c.connection_names.contains(&wanted))
            });
        }
        candidates.sort_unstable();
        candidates.dedup();
        match candidates.as_slice() {
            [] => Err(LookupError::NoMatch(key.clone())),
            [only] => Ok(*only),
            several => Err(LookupError::Several {
                key: key.clone(),
                count: several.len(),
                candidates: several
                    .iter()
                    .take(10)
                    .map(|id| match self.by_id.get(id) {
                        Some(c) if !c.connection.is_empty() => format!("{id} ({})", c.connection),
                        _ => id.to_string(),
                    })
                    .collect(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drata::wire::Connection;

    #[test]
    fn users_resolve_by_email_in_any_case_and_refuse_unknown_or_shared_emails() {
        let mut users = Users::default();
        for (id, email) in [
            (1, "Bob@Example.com"),
            (2, "ann@example.com"),
            (3, "ANN@example.com"),
        ] {
            assert!(users.add(User {
                id,
                email: email.to_owned()
            }));
        }
        assert!(!users.add(User {
            id: 1,
            email: "other@example.com".to_owned()
        }));
        assert_eq!(users.len(), 3);
        assert_eq!(users.resolve(" bob@EXAMPLE.com"), Ok(1));
        assert_eq!(users.email(1), Some("Bob@Example.com"));
        assert_eq!(
            users.resolve("ann@example.com"),
            Err(LookupError::SeveralUsers {
                email: "ann@example.com".to_owned(),
                count: 2
            })
        );
        assert_eq!(
            users.resolve("nobody@example.com"),
            Err(LookupError::NoUser("nobody@example.com".to_owned()))
        );
    }

    fn identity(id: u64, username: &str, email: &str, client: &str) -> Identity {
        Identity {
            id: Some(id),
            username: Some(username.to_owned()),
            email: Some(email.to_owned()),
            connection: Connection {
                id: Some(id % 3),
                client_type: Some(client.to_owned()),
                client_alias: Some(format!("{}-prod", client.to_lowercase())),
            },
            ..Identity::default()
        }
    }

    fn key(username: Option<&str>, email: Option<&str>, connection: Option<&str>) -> LookupKey {
        LookupKey {
            username: username.map(str::to_owned),
            email: email.map(str::to_owned),
            connection: connection.map(str::to_owned),
        }
    }

    #[test]
    fn lookup_by_username_email_and_connection() {
        let state = CurrentState::from_identities([
            identity(1, "alice", "Alice@Example.com", "AWS"),
            identity(2, "alice", "Alice@Example.com", "GCP"),
            identity(3, "bob", "bob@example.com", "AWS"),
        ]);
        assert_eq!(state.resolve(&key(Some("bob"), None, None)), Ok(3));
        assert_eq!(
            state.resolve(&key(None, Some("BOB@example.com"), None)),
            Ok(3)
        );
        assert_eq!(state.resolve(&key(Some("alice"), None, Some("gcp"))), Ok(2));
        assert_eq!(
            state.resolve(&key(Some("alice"), None, Some("aws-prod"))),
            Ok(1)
        );
        let several = state
            .resolve(&key(Some("alice"), None, None))
            .unwrap_err()
            .to_string();
        assert!(
            several.contains("1 (AWS aws-prod #1)") && several.contains("2 (GCP"),
            "{several}"
        );
        let none = state
            .resolve(&key(Some("carol"), None, None))
            .unwrap_err()
            .to_string();
        assert!(none.contains("username \"carol\""), "{none}");
        assert!(state
            .resolve(&key(Some("bob"), Some("alice@example.com"), None))
            .is_err());
    }

    #[test]
    fn a_repeated_id_in_another_state_is_replaced_by_the_later_copy() {
        let mut state = CurrentState::default();
        assert_eq!(
            state.add(identity(5, "ci", "ci@example.com", "AWS")),
            Added::New
        );
        assert_eq!(
            state.add(identity(5, "ci", "ci@example.com", "AWS")),
            Added::Repeated,
            "the same state again is no conflict"
        );
        let mut marked = identity(5, "ci-bot", "ci@example.com", "AWS");
        marked.service_account = Some("2026-01-01T00:00:00.000Z".into());
        marked.service_account_reason = Some("CI".into());
        assert_eq!(state.add(marked), Added::Conflicting);
        let kept = state.get(5).unwrap();
        assert_eq!(kept.username.as_deref(), Some("ci-bot"));
        assert_eq!(kept.reason.as_deref(), Some("CI"));
        assert_eq!(state.len(), 1);
        // The indexes follow the copy kept: the old username names nobody now.
        assert_eq!(state.resolve(&key(Some("ci-bot"), None, None)), Ok(5));
        assert!(state.resolve(&key(Some("ci"), None, None)).is_err());
        assert_eq!(
            state.resolve(&key(None, Some("CI@example.com"), None)),
            Ok(5)
        );
        assert_eq!(state.add(identity_without_id()), Added::NoId);
    }

    fn identity_without_id() -> Identity {
        Identity {
            id: None,
            ..identity(1, "x", "x@example.com", "AWS")
        }
    }
}
