//! The access toggles as the simulator keeps them: seeded for some identities, shown in
//! the listing as Drata shows them (a timestamp when on, null when off, only the kind's
//! own), and changed by `PUT …/{id}/toggle` with the body validated as the API does.

use std::sync::atomic::Ordering;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::{error, Shared, StoredIdentity, SEEDED_AT};
use crate::field::AccessField;
use crate::model::{Access, IdentityKind};

/// Which toggles identity `id` is seeded with: a few of each, so that an export has
/// both values to show and a review something to change.
pub(super) fn seeded(id: u64) -> [Option<String>; 4] {
    let on = |every: u64| id.is_multiple_of(every).then(|| SEEDED_AT.to_owned());
    let mut access: [Option<String>; 4] = Default::default();
    access[Access::Admin.index()] = on(5);
    access[Access::Db.index()] = on(11);
    access[Access::Write.index()] = on(2);
    access[Access::PushProductionCode.index()] = on(6);
    access
}

/// Adds the kind's toggles to a rendered identity.
pub(super) fn render(kind: IdentityKind, stored: &StoredIdentity, identity: &mut Value) {
    let Some(object) = identity.as_object_mut() else {
        return;
    };
    for field in AccessField::of_kind(kind) {
        let at = stored.access[field.access.index()].clone();
        object.insert(
            field.column.to_owned(),
            at.map_or(Value::Null, Value::String),
        );
    }
}

/// Checks a `toggle` body as the real API does: `{"toggle": <bool>, "toggleField": <one of
/// the kind's fields>}`.
fn validate(kind: IdentityKind, body: &[u8]) -> Result<(&'static AccessField, bool), String> {
    let value: Value =
        serde_json::from_slice(body).map_err(|_| "the body must be a JSON object".to_owned())?;
    let Some(on) = value.get("toggle").and_then(Value::as_bool) else {
        return Err("toggle must be a boolean".to_owned());
    };
    let named = value.get("toggleField").and_then(Value::as_str);
    let field = AccessField::of_kind(kind)
        .find(|field| Some(field.toggle_field) == named)
        .ok_or_else(|| {
            let allowed: Vec<&str> = { AccessField::of_kind(kind) }
                .map(|f| f.toggle_field)
                .collect();
            format!("toggleField must be one of {}", allowed.join(", "))
        })?;
    Ok((field, on))
}

/// `PUT …/user-identities/{kind}/{id}/toggle`: turns one access toggle on or off.
pub(super) async fn toggle(
    State(sim): State<Shared>,
    Path((kind, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let kind = match sim.admit_put(&headers, &kind, &sim.stats.toggles).await {
        Ok(kind) => kind,
        Err(response) => return response,
    };
    let (Ok(id), Ok((field, on))) = (id.parse::<u64>(), validate(kind, &body)) else {
        sim.stats.bad_requests.fetch_add(1, Ordering::Relaxed);
        let problem = validate(kind, &body).err();
        return error(
            StatusCode::BAD_REQUEST,
            json!([problem.unwrap_or_else(|| "id must be a number".to_owned())]),
        );
    };
    let Ok(mut store) = sim.store(kind).lock() else {
        return error(StatusCode::INTERNAL_SERVER_ERROR, json!("lock"));
    };
    let Some(stored) = id
        .checked_sub(1)
        .and_then(|index| store.get_mut(index as usize))
    else {
        return sim.identity_not_found(id);
    };
    let slot = &mut stored.access[field.access.index()];
    *slot = match (on, slot.take()) {
        (false, _) => None,
        (true, Some(at)) => Some(at),
        (true, None) => {
            Some(humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string())
        }
    };
    stored.applied_puts += 1;
    sim.stats.toggles_applied.fetch_add(1, Ordering::Relaxed);
    let body = sim.render(kind, id, stored);
    (StatusCode::OK, Json(body)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::field::ACCESS;

    #[test]
    fn toggle_bodies_are_validated_like_the_api() {
        let infrastructure = IdentityKind::Infrastructure;
        let (field, on) = validate(
            infrastructure,
            br#"{"toggle":true,"toggleField":"INFRASTRUCTURE_DB_ACCESS"}"#,
        )
        .unwrap();
        assert_eq!((field.access, on), (Access::Db, true));
        for wrong in [
            &br#"{"toggle":"yes","toggleField":"INFRASTRUCTURE_DB_ACCESS"}"#[..],
            br#"{"toggle":true}"#,
            br#"{"toggle":true,"toggleField":"VERSION_CONTROL_WRITE_ACCESS"}"#,
            b"not json",
        ] {
            assert!(validate(infrastructure, wrong).is_err(), "{wrong:?}");
        }
        assert!(validate(
            IdentityKind::VersionControl,
            br#"{"toggle":false,"toggleField":"VERSION_CONTROL_WRITE_ACCESS"}"#
        )
        .is_ok());
        // Every toggle is one of the list, each of one kind.
        assert_eq!(ACCESS.len(), 4);
    }
}
