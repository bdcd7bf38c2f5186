//! `405 Method Not Allowed` answers say which methods the resource has (`Allow`, as RFC 9110
//! requires), read from the OpenAPI document the routes are generated from.

use poem::http::{HeaderValue, StatusCode, header::ALLOW};
use poem::{Endpoint, IntoResponse, Request, Response};
use std::sync::{Arc, OnceLock};

/// Each documented path as its segments (`None` for a `{parameter}`) and its methods.
type Routes = Vec<(Vec<Option<String>>, String)>;

fn routes() -> &'static Routes {
    static ROUTES: OnceLock<Routes> = OnceLock::new();
    ROUTES.get_or_init(|| {
        let spec: serde_json::Value = serde_json::from_str(&crate::openapi_json()).unwrap_or_default();
        let paths = spec["paths"].as_object().cloned().unwrap_or_default();
        paths
            .into_iter()
            .map(|(path, operations)| {
                let segments = path
                    .split('/')
                    .map(|s| (!(s.starts_with('{') && s.ends_with('}'))).then(|| s.to_owned()))
                    .collect();
                let mut methods: Vec<String> =
                    operations.as_object().into_iter().flatten().map(|(m, _)| m.to_ascii_uppercase()).collect();
                methods.sort();
                (segments, methods.join(", "))
            })
            .collect()
    })
}

/// The methods the resource at `path` has, if it is a documented one.
pub fn allowed(path: &str) -> Option<&'static str> {
    let wanted: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    routes().iter().find_map(|(segments, methods)| {
        let matches = segments.len() == wanted.len()
            && segments.iter().zip(&wanted).all(|(s, w)| s.as_deref().is_none_or(|s| s == *w));
        matches.then_some(methods.as_str())
    })
}

/// Middleware body for `EndpointExt::around`: adds `Allow` to 405 answers.
pub async fn add_allow<E: Endpoint>(endpoint: Arc<E>, req: Request) -> poem::Result<Response> {
    let path = req.uri().path().to_owned();
    let mut response = endpoint.call(req).await.map(IntoResponse::into_response)?;
    if response.status() == StatusCode::METHOD_NOT_ALLOWED
        && let Some(methods) = allowed(&path).and_then(|m| HeaderValue::from_str(m).ok())
    {
        response.headers_mut().insert(ALLOW, methods);
    }
    Ok(response)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_documented_methods_of_a_path_are_found_through_its_parameters() {
        assert_eq!(super::allowed("/api/projects/0b7e6f9e-0000-0000-0000-000000000000"), Some("DELETE, GET, PATCH"));
        assert_eq!(super::allowed("/api/projects"), Some("GET, POST"));
        assert_eq!(super::allowed("/api/nothing/here"), None);
    }
}
