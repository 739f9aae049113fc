//! A team organization's settings, for its owners: rename it or change its slug, and delete it
//! (asked first: its servers, sources, keys and everyone's connections go with it).

use axum::{
    extract::Path,
    http::{Method, StatusCode},
    response::Response,
};
use serde_json::json;

use crate::console::{
    org_page::{org_of, page},
    pages::{Confirm, Fail, done, show, show_with},
    session::{Form, Session},
};

/// `POST /organizations/{id}/settings`: a new name and/or slug; the page again, with the
/// API's words beside the form when it refuses.
pub async fn rename(
    session: Session,
    Path(id): Path<String>,
    form: Form,
) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    let body = json!({"name": form.get("name"), "slug": form.get("slug")});
    let path = format!("/organizations/{}", org.id);
    let reply = session
        .api
        .call(&session.caller, Method::PUT, &path, Some(&body))
        .await;
    if reply.is_success() {
        return Ok(done(session.jar, &path));
    }
    if !matches!(
        reply.status,
        StatusCode::UNPROCESSABLE_ENTITY | StatusCode::CONFLICT
    ) {
        return Err(reply.into());
    }
    let errors = reply.field_errors();
    let mut shown = page(&session, org, None).await?;
    shown.settings_name = form.get("name").to_owned();
    shown.settings_slug = form.get("slug").to_owned();
    shown.settings_error = Some(
        errors
            .get("slug")
            .or_else(|| errors.get("name"))
            .map(|problem| format!("{problem}."))
            .unwrap_or_else(|| reply.message()),
    );
    Ok(show_with(session.jar, reply.status, &shown))
}

/// `GET /organizations/{id}/delete`: asks first.
pub async fn delete_page(session: Session, Path(id): Path<String>) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    if org.personal {
        return Err(Fail::not_found());
    }
    let confirm = Confirm::new(
        &session.nav,
        format!("Delete “{}”?", org.name),
        format!("/organizations/{}/delete", org.id),
        format!("/organizations/{}", org.id),
    )
    .message(
        "Its servers stop answering and free their endpoints, its sources and access keys are \
         deleted, and every member's connected agents are disconnected. This cannot be undone.",
    )
    .button("Delete organization");
    Ok(show(session.jar, &confirm))
}

/// `POST /organizations/{id}/delete`: back to the list, in the personal organization.
pub async fn delete(
    session: Session,
    Path(id): Path<String>,
    _form: Form,
) -> Result<Response, Fail> {
    let org = org_of(&session, &id)?;
    let path = format!("/organizations/{}", org.id);
    let then = match session.nav.orgs.iter().find(|o| o.personal) {
        Some(personal) => format!("/organizations?org={}", personal.id),
        None => "/organizations".to_owned(),
    };
    session.act(Method::DELETE, &path, &then).await
}
