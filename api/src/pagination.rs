//! `limit` / `offset` query parameters and the page envelope lists are returned in.

use crate::error::{ApiError, ApiResult};
use audiolab_store::Page;

/// Checks the optional `limit` (1–500, default 50) and `offset` (≥ 0, default 0).
pub fn page(limit: Option<i64>, offset: Option<i64>) -> ApiResult<Page> {
    let limit = limit.unwrap_or(Page::DEFAULT_LIMIT);
    let offset = offset.unwrap_or(0);
    if !(1..=Page::MAX_LIMIT).contains(&limit) {
        return Err(ApiError::unprocessable(format!("limit: must be between 1 and {}, got {limit}", Page::MAX_LIMIT)));
    }
    if offset < 0 {
        return Err(ApiError::unprocessable(format!("offset: must not be negative, got {offset}")));
    }
    Ok(Page { limit, offset })
}

/// Declares a page type for a list of `$item`, with the envelope every list shares.
macro_rules! paged_list {
    ($(#[$doc:meta])* $name:ident of $item:ty) => {
        $(#[$doc])*
        #[derive(Debug, poem_openapi::Object)]
        pub struct $name {
            /// The items on this page, in the list's order.
            pub items: Vec<$item>,
            /// How many items the whole list holds.
            pub total: i64,
            /// The page size that was applied.
            pub limit: i64,
            /// How many items were skipped before this page.
            pub offset: i64,
        }

        impl $name {
            pub fn new<U>(paged: audiolab_store::Paged<U>, page: audiolab_store::Page, view: impl Fn(U) -> $item) -> Self {
                Self { items: paged.items.into_iter().map(view).collect(), total: paged.total, limit: page.limit, offset: page.offset }
            }
        }
    };
}
pub(crate) use paged_list;
