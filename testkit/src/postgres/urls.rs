//! Deriving the URLs of per-test schemas and databases from a server's URL.

use url::Url;

/// `base` with `application_name=<name>` and, if given, a `search_path` startup option added to
/// its query. `name` must be a plain identifier (as [`random_name`](super::random_name) makes).
pub(crate) fn with_session(base: &str, name: &str, search_path: bool) -> Result<String, String> {
    let mut url = parse(base)?;
    let mut query = url.query().unwrap_or_default().to_owned();
    let mut push = |pair: String| {
        if !query.is_empty() {
            query.push('&');
        }
        query.push_str(&pair);
    };
    if search_path {
        // Percent-encoded by hand (space %20, `=` %3D) so libpq and sqlx read it the same way.
        push(format!("options=-c%20search_path%3D{name}"));
    }
    push(format!("application_name={name}"));
    url.set_query(Some(&query));
    Ok(url.into())
}

/// `base` pointing at the database `database` instead.
pub(crate) fn with_database(base: &str, database: &str) -> Result<String, String> {
    let mut url = parse(base)?;
    url.set_path(&format!("/{database}"));
    Ok(url.into())
}

fn parse(base: &str) -> Result<Url, String> {
    Url::parse(base).map_err(|e| format!("not a valid PostgreSQL URL ({e}): {base}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adds_session_parameters_to_an_existing_query() {
        let url = with_session("postgres://u@h:1/db?sslmode=disable", "tm_t_1", true).unwrap();
        assert_eq!(
            url,
            "postgres://u@h:1/db?sslmode=disable&options=-c%20search_path%3Dtm_t_1\
             &application_name=tm_t_1"
        );
    }

    #[test]
    fn replaces_the_database() {
        let url = with_database("postgres://u@h:1/test?sslmode=disable", "tm_t_2").unwrap();
        assert_eq!(url, "postgres://u@h:1/tm_t_2?sslmode=disable");
    }
}
