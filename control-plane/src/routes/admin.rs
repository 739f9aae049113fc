//! Administrator routes: `GET /users`.

use axum::extract::State;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{
    auth::AdminUser,
    db::users,
    error::{ApiError, ErrorBody, FieldError},
    extract::Query,
    routes::me::UserView,
    state::AppState,
};

/// Largest page a list route returns.
pub const MAX_PAGE: i64 = 200;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list_users))
}

/// Paging of list routes.
#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Items per page, 1 to 200 (default 50).
    limit: Option<i64>,
    /// Items to skip (default 0).
    offset: Option<i64>,
}

impl PageParams {
    /// `(limit, offset)` after checking the bounds.
    pub fn bounds(&self) -> Result<(i64, i64), ApiError> {
        let limit = self.limit.unwrap_or(50);
        let offset = self.offset.unwrap_or(0);
        let mut fields = Vec::new();
        if !(1..=MAX_PAGE).contains(&limit) {
            fields.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_PAGE}"),
            ));
        }
        if offset < 0 {
            fields.push(FieldError::new("offset", "must not be negative"));
        }
        if fields.is_empty() {
            Ok((limit, offset))
        } else {
            Err(ApiError::validation(fields))
        }
    }
}

/// One page of users.
#[derive(Serialize, ToSchema)]
pub struct UserPage {
    pub items: Vec<UserView>,
    pub total: i64,
    pub limit: i64,
    pub offset: i64,
}

/// List every user (administrators only), oldest first.
#[utoipa::path(
    get, path = "/users", tag = "admin",
    security(("bearer" = []), ("cookie" = [])),
    params(PageParams),
    responses(
        (status = 200, description = "One page of users", body = UserPage),
        (status = 400, description = "Malformed query string", body = ErrorBody),
        (status = 401, description = "Not signed in", body = ErrorBody),
        (status = 403, description = "Caller is not an administrator (`admin_required`)", body = ErrorBody),
        (status = 422, description = "limit or offset out of range", body = ErrorBody),
    )
)]
async fn list_users(
    State(state): State<AppState>,
    _admin: AdminUser,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<UserPage>, ApiError> {
    let (limit, offset) = params.bounds()?;
    let (items, total) = users::page(&state.pool, limit, offset).await?;
    Ok(axum::Json(UserPage {
        items: items.into_iter().map(UserView::from).collect(),
        total,
        limit,
        offset,
    }))
}
