//! The dashboard's own stylesheet and script, built into the binary: no
//! third-party or CDN asset, so the dashboard works offline.

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};

use super::error::DashError;

const APP_CSS: &str = include_str!("static/app.css");
const APP_JS: &str = include_str!("static/app.js");

/// `GET /dashboard/static/{file}`.
pub async fn serve(Path(file): Path<String>) -> Response {
    let (body, content_type) = match file.as_str() {
        "app.css" => (APP_CSS, "text/css; charset=utf-8"),
        "app.js" => (APP_JS, "text/javascript; charset=utf-8"),
        _ => return DashError::NotFound("No such file.".into()).into_response(),
    };
    (
        [
            (CONTENT_TYPE, content_type),
            // Revalidated on use: an upgrade's new files are seen at once.
            (CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}
