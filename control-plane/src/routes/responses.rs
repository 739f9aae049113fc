//! The error responses many routes document alike, named once for their `utoipa::path`
//! `responses(...)` lists (`responses(NotSignedIn, (status = 200, ...))`). A route whose
//! answer says something of its own keeps its own line.

use utoipa::IntoResponses;

use crate::error::ErrorBody;

/// 401: no session and no valid bearer token.
#[derive(IntoResponses)]
#[response(status = 401, description = "Not signed in")]
pub struct NotSignedIn(pub ErrorBody);

/// 400: a path id that is not a UUID.
#[derive(IntoResponses)]
#[response(status = 400, description = "Malformed id")]
pub struct MalformedId(pub ErrorBody);

/// 400: a body that is not valid JSON.
#[derive(IntoResponses)]
#[response(status = 400, description = "Malformed JSON")]
pub struct MalformedJson(pub ErrorBody);

/// 400: a body that is not valid JSON, or a path id that is not a UUID.
#[derive(IntoResponses)]
#[response(status = 400, description = "Malformed JSON or id")]
pub struct MalformedJsonOrId(pub ErrorBody);

/// 415: a body without a JSON content type.
#[derive(IntoResponses)]
#[response(status = 415, description = "Body is not JSON")]
pub struct NotJson(pub ErrorBody);

/// 403 on a write to an object of an organization: the same-origin check for cookie requests,
/// or a caller who is only a member there.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "Cookie request from a foreign origin, or the caller is only a member (`role_required`)"
)]
pub struct ForeignOriginOrMember(pub ErrorBody);

/// 404: an organization id the caller is not in.
#[derive(IntoResponses)]
#[response(status = 404, description = "No such organization of the caller's")]
pub struct NoSuchOrganization(pub ErrorBody);
