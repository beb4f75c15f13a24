//! Any request body under any of the accepted content types: parsing gives
//! fields or a DRF error, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tessera::http::body::parse_fields;

const CONTENT_TYPES: [&str; 6] = [
    "application/json",
    "application/json; charset=utf-8",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=XyZ",
    "multipart/form-data",
    "text/plain",
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let content_type = CONTENT_TYPES[usize::from(selector) % CONTENT_TYPES.len()];
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let req = poem::Request::builder().content_type(content_type).finish();
        let _ = parse_fields(&req, Some(content_type), body.to_vec()).await;
    });
});
