//! What tests read from the dashboard's HTML pages.

/// The `value` of the first input named `name`.
pub fn field_value(page: &str, name: &str) -> Option<String> {
    between(page, &format!("name=\"{name}\" value=\""), '"')
}

/// The text of the element with `id` (up to its first tag).
pub fn text_of(page: &str, id: &str) -> Option<String> {
    between(page, &format!("id=\"{id}\">"), '<')
}

/// What follows the first `marker`, up to `end`.
fn between(text: &str, marker: &str, end: char) -> Option<String> {
    let start = text.find(marker)? + marker.len();
    let stop = text[start..].find(end)? + start;
    Some(text[start..stop].to_owned())
}
