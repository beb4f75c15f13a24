//! Request bodies the way DRF reads them: JSON, URL-encoded forms and
//! multipart forms are parsed into the same map of fields, and each field is
//! then read with DRF's rules and error messages.

use std::marker::PhantomData;

use poem::web::Multipart;
use poem::{Body, FromRequest, Request, RequestBody};
use poem_openapi::registry::{MetaMediaType, MetaRequest, Registry};
use poem_openapi::types::Type;
use poem_openapi::{ApiExtractor, ApiExtractorType, ExtractParamOptions};
use serde_json::{Map, Value};

use super::error::{ApiError, FieldErrors};

/// Largest accepted request body.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

const REQUIRED: &str = "This field is required.";
const NOT_NULL: &str = "This field may not be null.";
const NOT_BLANK: &str = "This field may not be blank.";
const NOT_STRING: &str = "Not a valid string.";
/// DRF's `ProhibitNullCharactersValidator`, on every `CharField`. PostgreSQL
/// text cannot hold NUL, so such a value must never reach a query.
const NO_NUL: &str = "Null characters are not allowed.";

/// The fields of a request body, whatever its format. `T` only documents the
/// expected fields in the OpenAPI spec.
pub struct FormBody<T> {
    fields: Map<String, Value>,
    _schema: PhantomData<T>,
}

impl<T> FormBody<T> {
    pub fn new(fields: Map<String, Value>) -> Self {
        Self {
            fields,
            _schema: PhantomData,
        }
    }

    /// A DRF `CharField`: required, not null, not blank; surrounding
    /// whitespace trimmed; numbers accepted as their text. Errors go to `errors`.
    pub fn required(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        match self.fields.get(name) {
            None => {
                errors.add(name, REQUIRED);
                None
            }
            Some(v) => self.char_field(name, v, false, errors),
        }
    }

    /// A required field that only some settings ask for (Djoser's retype
    /// fields): `None` unless `wanted`.
    pub fn required_if(
        &self,
        wanted: bool,
        name: &str,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        if wanted {
            self.required(name, errors)
        } else {
            None
        }
    }

    /// A DRF `CharField(required=False, allow_blank=True)`: `None` when absent.
    pub fn optional(&self, name: &str, errors: &mut FieldErrors) -> Option<String> {
        let v = self.fields.get(name)?;
        self.char_field(name, v, true, errors)
    }

    fn char_field(
        &self,
        name: &str,
        value: &Value,
        allow_blank: bool,
        errors: &mut FieldErrors,
    ) -> Option<String> {
        let text = match value {
            Value::Null => {
                errors.add(name, NOT_NULL);
                return None;
            }
            Value::String(s) => s.trim().to_owned(),
            Value::Number(n) => n.to_string(),
            Value::Bool(_) | Value::Array(_) | Value::Object(_) => {
                errors.add(name, NOT_STRING);
                return None;
            }
        };
        if text.is_empty() && !allow_blank {
            errors.add(name, NOT_BLANK);
            return None;
        }
        if text.contains('\0') {
            errors.add(name, NO_NUL);
            return None;
        }
        Some(text)
    }
}

fn python_type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_f64() => "float",
        Value::Number(_) => "int",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

/// `map` with each top-level integer too large for 64 bits as its digits.
/// Without serde_json's `arbitrary_precision` (a crate-wide switch that
/// changes every `Number`) such an integer arrives as a float and would be
/// read as `1.2345678901234568e29`, where Python keeps every digit. So the
/// body is read again, raw, in the rare case that any value is a float.
fn exact_integers(mut map: Map<String, Value>, bytes: &[u8]) -> Map<String, Value> {
    if !map
        .values()
        .any(|v| matches!(v, Value::Number(n) if n.is_f64()))
    {
        return map;
    }
    let Ok(raw) = serde_json::from_slice::<
        std::collections::HashMap<String, &serde_json::value::RawValue>,
    >(bytes) else {
        return map;
    };
    for (name, value) in map.iter_mut() {
        let Some(text) = raw.get(name).map(|r| r.get()) else {
            continue;
        };
        let digits = text.strip_prefix('-').unwrap_or(text);
        if matches!(value, Value::Number(_))
            && !digits.is_empty()
            && digits.bytes().all(|b| b.is_ascii_digit())
        {
            // JSON allows no leading zeros, so the text is Python's
            // `str(int)`, but for `-0`, which Python prints as `0`.
            let python = if digits.bytes().all(|b| b == b'0') {
                "0"
            } else {
                text
            };
            *value = Value::String(python.to_owned());
        }
    }
    map
}

/// The media type without parameters, lower-cased (`application/json`).
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Parses `bytes` as the given content type into a field map.
pub async fn parse_fields(
    req: &Request,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> Result<Map<String, Value>, ApiError> {
    let Some(content_type) = content_type.filter(|c| !c.trim().is_empty()) else {
        // DRF: no body means no data; a body it cannot name is refused.
        return if bytes.is_empty() {
            Ok(Map::new())
        } else {
            Err(ApiError::UnsupportedMediaType(String::new()))
        };
    };
    let mime = essence(content_type);
    if mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json")) {
        if bytes.is_empty() {
            return Ok(Map::new());
        }
        return match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(exact_integers(map, &bytes)),
            Ok(other) => Err(ApiError::Validation(FieldErrors::single(
                "non_field_errors",
                format!(
                    "Invalid data. Expected a dictionary, but got {}.",
                    python_type_name(&other)
                ),
            ))),
            Err(e) => Err(ApiError::Malformed(format!("JSON parse error - {e}"))),
        };
    }
    if mime == "application/x-www-form-urlencoded" {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::Malformed(format!("Form parse error - {e}")))?;
        // As Django's QueryDict.get: the last value of a repeated key wins.
        return Ok(pairs
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    if mime == "multipart/form-data" {
        let mut body = RequestBody::new(Body::from_vec(bytes));
        let mut multipart = <Multipart as FromRequest>::from_request(req, &mut body)
            .await
            .map_err(|e| ApiError::Malformed(format!("Multipart form parse error - {e}")))?;
        let mut map = Map::new();
        loop {
            let field = multipart
                .next_field()
                .await
                .map_err(|e| ApiError::Malformed(format!("Multipart form parse error - {e}")))?;
            let Some(field) = field else { break };
            let Some(name) = field.name().map(str::to_owned) else {
                continue;
            };
            // Files are not fields of these forms.
            if field.file_name().is_some() {
                continue;
            }
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::Malformed(format!("Multipart form parse error - {e}")))?;
            map.insert(name, Value::String(text));
        }
        return Ok(map);
    }
    Err(ApiError::UnsupportedMediaType(content_type.to_owned()))
}

/// Reads the whole body, refusing more than [`MAX_BODY_BYTES`].
pub async fn read_limited(req: &Request, body: &mut RequestBody) -> Result<Vec<u8>, ApiError> {
    let too_large = ApiError::PayloadTooLarge {
        limit: MAX_BODY_BYTES,
    };
    let declared = req
        .headers()
        .get(poem::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(too_large);
    }
    let Ok(body) = body.take() else {
        return Ok(Vec::new());
    };
    match body.into_bytes_limit(MAX_BODY_BYTES).await {
        Ok(bytes) => Ok(bytes.to_vec()),
        Err(poem::error::ReadBodyError::PayloadTooLarge) => Err(too_large),
        Err(e) => Err(ApiError::Malformed(format!(
            "cannot read the request body: {e}"
        ))),
    }
}

impl<'a, T: Type> ApiExtractor<'a> for FormBody<T> {
    const TYPES: &'static [ApiExtractorType] = &[ApiExtractorType::RequestObject];
    type ParamType = ();
    type ParamRawType = ();

    fn register(registry: &mut Registry) {
        T::register(registry);
    }

    fn request_meta() -> Option<MetaRequest> {
        let media = |content_type| MetaMediaType {
            content_type,
            schema: T::schema_ref(),
        };
        Some(MetaRequest {
            description: Some(
                "The same fields as JSON, as a URL-encoded form or as multipart/form-data.",
            ),
            content: vec![
                media("application/json"),
                media("application/x-www-form-urlencoded"),
                media("multipart/form-data"),
            ],
            required: true,
        })
    }

    async fn from_request(
        request: &'a Request,
        body: &mut RequestBody,
        _param_opts: ExtractParamOptions<Self::ParamType>,
    ) -> poem::Result<Self> {
        let bytes = read_limited(request, body).await?;
        let content_type = request
            .headers()
            .get(poem::http::header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        let fields = parse_fields(request, content_type.as_deref(), bytes).await?;
        Ok(Self::new(fields))
    }
}
