//! What Drata sends, read best-effort. The real API sends nulls, numbers as strings
//! (`connection.id` as `"1"`), fields we do not know, and sometimes bodies of another
//! shape altogether: a field of an unexpected type reads as unknown, never as an error,
//! and only a body that is not JSON at all is "unreadable".

use serde_json::Value;

use crate::field::ACCESS;
use crate::model::{IdentityView, Toggles};
use crate::secret::ApiKey;

/// The fields of an identity this tool reads.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Identity {
    pub id: Option<u64>,
    pub username: Option<String>,
    pub email: Option<String>,
    /// When the identity was marked as a service account; null when it is not one.
    pub service_account: Option<String>,
    pub service_account_reason: Option<String>,
    pub connection: Connection,
    /// The Drata user (a person) the identity is linked to; `None` when `user` is null,
    /// missing or not an object.
    pub user: Option<LinkedUser>,
    pub connected_at: Option<String>,
    pub disconnected_at: Option<String>,
    pub has_mfa: Option<bool>,
    /// The access toggles it shows (`adminAccess`…): a timestamp is on, null is off, a
    /// missing field unknown.
    pub access: Toggles,
}

/// The nested `user` object of an identity: the Drata user it belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct LinkedUser {
    pub id: Option<u64>,
    pub email: Option<String>,
}

/// The connection an identity was discovered through.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Connection {
    pub id: Option<u64>,
    pub client_type: Option<String>,
    pub client_alias: Option<String>,
}

impl Connection {
    /// `AWS aws-prod #1`: what is known of it, in that order; `None` when nothing is.
    pub(crate) fn describe(&self) -> Option<String> {
        let parts: Vec<String> = [
            self.client_type.clone(),
            self.client_alias.clone(),
            self.id.map(|id| format!("#{id}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

/// A string field; anything else (null, a number, an object) is unknown.
fn text(object: &Value, field: &str) -> Option<String> {
    match object.get(field)? {
        Value::String(text) => Some(text.clone()),
        _ => None,
    }
}

/// A non-negative integer sent as a number or as a decimal string.
fn integer(object: &Value, field: &str) -> Option<u64> {
    match object.get(field)? {
        Value::Number(number) => number.as_u64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// A boolean sent as `true`/`false` or as the strings `"true"`/`"false"`.
fn boolean(object: &Value, field: &str) -> Option<bool> {
    match object.get(field)? {
        Value::Bool(flag) => Some(*flag),
        Value::String(text) => match text.trim() {
            t if t.eq_ignore_ascii_case("true") => Some(true),
            t if t.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// `serviceAccount` is a timestamp when marked and null when not; an answer of another
/// type (a number, `true`) still says "marked", with no readable time.
fn marked_at(object: &Value) -> Option<String> {
    match object.get("serviceAccount")? {
        Value::Null | Value::Bool(false) => None,
        Value::String(text) => Some(text.clone()),
        other => Some(other.to_string()),
    }
}

/// An access toggle: a timestamp (or any value but `null` and `false`) is on, `null` and
/// `false` are off, a missing field is unknown.
fn toggles(object: &Value) -> Toggles {
    let mut toggles = Toggles::default();
    for field in &ACCESS {
        let on = object
            .get(field.column)
            .map(|value| !matches!(value, Value::Null | Value::Bool(false)));
        toggles.set(field.access, on);
    }
    toggles
}

impl Identity {
    /// Reads an identity from any JSON value; fields that are missing or of another
    /// type are `None`.
    pub(crate) fn from_value(value: &Value) -> Self {
        let connection = value.get("connection").unwrap_or(&Value::Null);
        Self {
            id: integer(value, "id"),
            username: text(value, "username"),
            email: text(value, "email"),
            service_account: marked_at(value),
            service_account_reason: text(value, "serviceAccountReason"),
            connection: Connection {
                id: integer(connection, "id"),
                client_type: text(connection, "clientType"),
                client_alias: text(connection, "clientAlias"),
            },
            user: value
                .get("user")
                .filter(|user| user.is_object())
                .map(|user| LinkedUser {
                    id: integer(user, "id"),
                    email: text(user, "email"),
                }),
            connected_at: text(value, "connectedAt"),
            disconnected_at: text(value, "disconnectedAt"),
            has_mfa: boolean(value, "hasMfa"),
            access: toggles(value),
        }
    }

    /// Reads whatever a 2xx answer holds: an identity, something else, or nothing.
    pub(crate) fn from_answer(body: &[u8]) -> Self {
        serde_json::from_slice::<Value>(body)
            .map(|value| Self::from_value(&value))
            .unwrap_or_default()
    }

    /// Removes the key from every text the server sent, before any of it is shown or
    /// written (a server that echoes headers into a field).
    pub(crate) fn scrub(&mut self, key: &ApiKey) {
        let fields = [
            &mut self.username,
            &mut self.email,
            &mut self.service_account,
            &mut self.service_account_reason,
            &mut self.connection.client_type,
            &mut self.connection.client_alias,
            &mut self.connected_at,
            &mut self.disconnected_at,
        ];
        for text in fields.into_iter().flatten() {
            *text = key.redact(text);
        }
        if let Some(email) = self.user.as_mut().and_then(|user| user.email.as_mut()) {
            *email = key.redact(email);
        }
    }

    pub(crate) fn view(&self) -> IdentityView {
        IdentityView {
            username: self.username.clone(),
            email: self.email.clone(),
            service_account_at: self.service_account.clone(),
            connection: self.connection.describe(),
        }
    }
}

/// One page of `GET /user-identities/{kind}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Page {
    /// The items that are identities with an id.
    pub identities: Vec<Identity>,
    /// Items of the page in all, readable or not: a full page means "ask for more".
    pub items: u64,
    /// Items that were skipped because they had no readable id.
    pub malformed: u64,
    /// What the server says the listing holds, when it says so readably.
    pub total: Option<u64>,
}

impl Page {
    /// Reads a page; `None` when the body is not JSON with a `data` array.
    pub(crate) fn from_body(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let data = value.get("data")?.as_array()?;
        let mut page = Page {
            items: data.len() as u64,
            total: integer(&value, "total"),
            ..Page::default()
        };
        for item in data {
            let identity = Identity::from_value(item);
            if identity.id.is_some() {
                page.identities.push(identity);
            } else {
                page.malformed += 1;
            }
        }
        Some(page)
    }
}

/// A Drata user of `GET /users`: a person an identity can be linked to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct User {
    pub id: u64,
    /// Empty when the answer holds none.
    pub email: String,
}

impl User {
    /// A user with a readable id; `None` otherwise.
    pub(crate) fn from_value(value: &Value) -> Option<Self> {
        Some(Self {
            id: integer(value, "id")?,
            email: text(value, "email").unwrap_or_default(),
        })
    }
}

/// One page of `GET /users`, read like a page of identities.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct UserPage {
    pub users: Vec<User>,
    /// Items of the page in all, readable or not.
    pub items: u64,
    /// Items skipped because they had no readable id.
    pub malformed: u64,
    pub total: Option<u64>,
}

impl UserPage {
    /// Reads a page; `None` when the body is not JSON with a `data` array.
    pub(crate) fn from_body(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let data = value.get("data")?.as_array()?;
        let users: Vec<User> = data.iter().filter_map(User::from_value).collect();
        Some(UserPage {
            items: data.len() as u64,
            malformed: (data.len() - users.len()) as u64,
            total: integer(&value, "total"),
            users,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_tolerate_nulls_unknown_fields_and_strings_for_numbers() {
        let identity = Identity::from_answer(
            br#"{"id":"3","username":null,"email":"a@b.c","serviceAccount":null,
                "connection":{"id":"1","clientType":"AWS"},"user":{"x":1},"extra":[1]}"#,
        );
        assert_eq!(identity.id, Some(3));
        assert_eq!(identity.email.as_deref(), Some("a@b.c"));
        assert_eq!(identity.username, None);
        assert_eq!(identity.service_account, None);
        assert_eq!(identity.connection.id, Some(1));
        assert_eq!(identity.connection.client_type.as_deref(), Some("AWS"));
        assert_eq!(
            identity.user,
            Some(LinkedUser {
                id: None,
                email: None
            })
        );
        assert_eq!(identity.has_mfa, None);
    }

    #[test]
    fn the_review_fields_are_read_best_effort() {
        let identity = Identity::from_answer(
            br#"{"id":4,"user":{"id":9,"email":"dana@example.com"},"hasMfa":"TRUE",
                "connectedAt":"2025-06-01T12:00:00.000Z","disconnectedAt":null}"#,
        );
        assert_eq!(
            identity.user.and_then(|u| u.email).as_deref(),
            Some("dana@example.com")
        );
        assert_eq!(identity.has_mfa, Some(true));
        assert_eq!(
            identity.connected_at.as_deref(),
            Some("2025-06-01T12:00:00.000Z")
        );
        assert_eq!(identity.disconnected_at, None);
        for odd in [
            &br#"{"user":null,"hasMfa":1}"#[..],
            br#"{"user":"dana","hasMfa":"maybe","connectedAt":7}"#,
        ] {
            let identity = Identity::from_answer(odd);
            assert_eq!(identity.user, None, "{odd:?}");
            assert_eq!(identity.has_mfa, None, "{odd:?}");
            assert_eq!(identity.connected_at, None, "{odd:?}");
        }
        assert_eq!(
            Identity::from_answer(br#"{"hasMfa":false}"#).has_mfa,
            Some(false)
        );
    }

    #[test]
    fn answers_of_other_shapes_read_as_unknown() {
        for body in [
            &b""[..],
            b"null",
            b"\"ok\"",
            b"<html>ok</html>",
            b"{\"id\":",
            b"[1,2]",
            b"{\"connection\":\"x\",\"username\":7}",
        ] {
            let identity = Identity::from_answer(body);
            assert_eq!(identity.username, None, "{body:?}");
            assert_eq!(identity.connection, Connection::default(), "{body:?}");
        }
        let odd = Identity::from_answer(br#"{"serviceAccount":1717171717}"#);
        assert_eq!(odd.service_account.as_deref(), Some("1717171717"));
    }

    #[test]
    fn user_pages_read_ids_and_emails_best_effort() {
        let page = UserPage::from_body(
            br#"{"data":[{"id":"2","email":"Bob@Example.com"},{"id":3},{"email":"x@y"},null],"total":4}"#,
        )
        .unwrap();
        assert_eq!(page.items, 4);
        assert_eq!(page.malformed, 2);
        assert_eq!(
            page.users,
            [
                User {
                    id: 2,
                    email: "Bob@Example.com".to_owned()
                },
                User {
                    id: 3,
                    email: String::new()
                }
            ]
        );
        assert_eq!(page.total, Some(4));
        assert_eq!(UserPage::from_body(b"[]"), None);
    }

    #[test]
    fn pages_count_items_and_skip_the_unreadable_ones() {
        let page = Page::from_body(
            br#"{"data":[{"id":1},{"id":"2"},{"username":"x"},null,{"id":-4}],"total":"9","page":1}"#,
        )
        .unwrap();
        assert_eq!(page.items, 5);
        assert_eq!(page.malformed, 3);
        assert_eq!(
            page.identities.iter().map(|i| i.id).collect::<Vec<_>>(),
            [Some(1), Some(2)]
        );
        assert_eq!(page.total, Some(9));
        assert_eq!(Page::from_body(b"{}"), None);
        assert_eq!(Page::from_body(b"<html>"), None);
        assert_eq!(
            Page::from_body(br#"{"data":[],"total":null}"#)
                .unwrap()
                .total,
            None
        );
    }
}
