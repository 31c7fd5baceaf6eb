//! HTTP handlers for the `/users` routes: parse the request into domain values, run the
//! operation, answer JSON or a problem document.

use crate::domain::{CountryCode, Email, UserChanges, UserName};
use crate::{NewUser, UserStore};
use http::StatusCode;
use lambda_http::{Body, Request, RequestExt, Response};
use serde::{Deserialize, Deserializer};
use shared::http::{empty, json, json_at, parse_json, path_param};
use shared::identity::Caller;
use shared::{ApiError, FieldError};

/// Body of `POST /users`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateUserRequest {
    email: String,
    name: String,
    country: String,
}

/// Body of `PATCH /users/{user_id}`: any subset of the fields; `null` is refused
/// because every field of a profile is required.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchUserRequest {
    #[serde(default, deserialize_with = "present")]
    email: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    country: Option<Option<String>>,
}

/// Tells an explicit `null` (`Some(None)`) from an absent field (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// Converts one raw field, recording its error under `field`.
fn convert<T: TryFrom<String, Error = E>, E: std::fmt::Display>(
    field: &str,
    raw: String,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    T::try_from(raw)
        .map_err(|e| errors.push(FieldError::new(field, e.to_string())))
        .ok()
}

/// Converts an optional patch field; `null` is an error.
fn convert_patch<T: TryFrom<String, Error = E>, E: std::fmt::Display>(
    field: &str,
    raw: Option<Option<String>>,
    errors: &mut Vec<FieldError>,
) -> Option<T> {
    match raw? {
        Some(v) => convert(field, v, errors),
        None => {
            errors.push(FieldError::new(field, "must not be null"));
            None
        }
    }
}

impl CreateUserRequest {
    fn validate(self) -> Result<NewUser, ApiError> {
        let mut errors = Vec::new();
        let email = convert::<Email, _>("email", self.email, &mut errors);
        let name = convert::<UserName, _>("name", self.name, &mut errors);
        let country = convert::<CountryCode, _>("country", self.country, &mut errors);
        match (email, name, country) {
            (Some(email), Some(name), Some(country)) if errors.is_empty() => Ok(NewUser {
                email,
                name,
                country,
            }),
            _ => Err(ApiError::Validation(errors)),
        }
    }
}

impl PatchUserRequest {
    fn validate(self) -> Result<UserChanges, ApiError> {
        let mut errors = Vec::new();
        let changes = UserChanges {
            email: convert_patch("email", self.email, &mut errors),
            name: convert_patch("name", self.name, &mut errors),
            country: convert_patch("country", self.country, &mut errors),
        };
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        if changes == UserChanges::default() {
            return Err(ApiError::field(
                "",
                "give at least one of email, name, country",
            ));
        }
        Ok(changes)
    }
}

/// `POST /users`: the caller registers its own profile. 201, or 409 if it has one.
pub async fn create(store: &impl UserStore, req: Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let new = parse_json::<CreateUserRequest>(&req)?.validate()?;
    let (user, registered) = crate::register(store, &caller, new, shared::time::now()).await?;
    // Publishing goes through the transactional outbox (the events work); until then
    // the event is recorded in the log so the domain's output is visible.
    tracing::info!(event = "UserRegistered", user_id = %registered.user_id, "user registered");
    json_at(
        StatusCode::CREATED,
        &format!("/users/{}", user.user_id),
        &user,
    )
}

/// `GET /users/{user_id}`: the user or an admin.
pub async fn get(store: &impl UserStore, req: Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let target = path_param(&req, "user_id")?;
    let user = crate::get(store, &caller, &target).await?;
    json(StatusCode::OK, &user)
}

/// `PATCH /users/{user_id}`: the user or an admin changes email, name or country.
pub async fn update(store: &impl UserStore, req: Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let target = path_param(&req, "user_id")?;
    if !caller.may_act_for(&target) {
        // Refuse before reading the body, so a stranger learns nothing from validation.
        return Err(ApiError::Forbidden(
            "You may only access your own profile".into(),
        ));
    }
    let changes = parse_json::<PatchUserRequest>(&req)?.validate()?;
    let user = crate::update(store, &caller, &target, &changes, shared::time::now()).await?;
    json(StatusCode::OK, &user)
}

/// `DELETE /users/{user_id}`: the user or an admin erases the profile. 204.
pub async fn delete(store: &impl UserStore, req: Request) -> Result<Response<Body>, ApiError> {
    let caller = Caller::from_context(req.request_context_ref())?;
    let target = path_param(&req, "user_id")?;
    let deleted = crate::delete(store, &caller, &target, shared::time::now()).await?;
    tracing::info!(event = "UserDeleted", user_id = %deleted.user_id, "user erased");
    Ok(empty(StatusCode::NO_CONTENT))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::http::parse_json_bytes;

    fn fields(err: ApiError) -> Vec<String> {
        match err {
            ApiError::Validation(errors) => errors.into_iter().map(|e| e.field).collect(),
            other => panic!("expected validation error, got {other:?}"),
        }
    }

    #[test]
    fn every_invalid_field_of_a_registration_is_reported() {
        let req: CreateUserRequest =
            parse_json_bytes(br#"{"email":"nope","name":"","country":"XX"}"#).unwrap();
        assert_eq!(
            fields(req.validate().unwrap_err()),
            vec!["email", "name", "country"]
        );
    }

    #[test]
    fn patch_refuses_null_empty_and_unknown_fields() {
        let req: PatchUserRequest = parse_json_bytes(br#"{"name":null}"#).unwrap();
        assert_eq!(fields(req.validate().unwrap_err()), vec!["name"]);
        let req: PatchUserRequest = parse_json_bytes(b"{}").unwrap();
        assert_eq!(fields(req.validate().unwrap_err()), vec![""]);
        let err = parse_json_bytes::<PatchUserRequest>(br#"{"nickname":"x"}"#).unwrap_err();
        assert_eq!(fields(err), vec!["nickname"]);
    }

    #[test]
    fn patch_keeps_only_given_fields() {
        let req: PatchUserRequest = parse_json_bytes(br#"{"country":"FR"}"#).unwrap();
        let changes = req.validate().unwrap();
        assert!(changes.email.is_none() && changes.name.is_none());
        assert_eq!(changes.country.map(String::from).as_deref(), Some("FR"));
    }

    /// The sample events in `events/users/` are real: each parses as an API Gateway
    /// request and drives its handler to the status the route promises.
    #[tokio::test]
    async fn sample_events_drive_their_handlers() {
        let store = crate::memory::MemoryStore::default();
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/users/");
        let load = |name: &str| {
            let text = std::fs::read_to_string(format!("{dir}{name}")).unwrap();
            lambda_http::request::from_str(&text).unwrap()
        };
        let status = |r: Result<Response<Body>, ApiError>| match r {
            Ok(resp) => resp.status().as_u16(),
            Err(e) => e.status().as_u16(),
        };
        assert_eq!(status(get(&store, load("get.json")).await), 404);
        assert_eq!(status(create(&store, load("create.json")).await), 201);
        assert_eq!(status(create(&store, load("create.json")).await), 409);
        assert_eq!(status(get(&store, load("get.json")).await), 200);
        assert_eq!(status(get(&store, load("get-as-admin.json")).await), 200);
        assert_eq!(status(update(&store, load("update.json")).await), 200);
        assert_eq!(status(delete(&store, load("delete.json")).await), 204);
        assert_eq!(status(delete(&store, load("delete.json")).await), 404);
    }
}
