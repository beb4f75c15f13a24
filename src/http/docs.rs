//! The OpenAPI document as a reader of Swagger UI meets it. poem-openapi
//! derives it from the operations; this pass makes it read like Djoser's
//! own documentation: paths with their trailing slash, tags in the order of
//! a user's day, realistic examples, the error shapes each status really
//! has, bodies whose fields are all optional not marked required, and the
//! constraints the server enforces. Routing and metric labels keep using
//! the derived document.

use serde_json::{Map, Value, json};

/// Tags as poem-openapi names them, the name shown, and their order.
const TAGS: [(&[&str], &str, &str); 9] = [
    (
        &["Jwt"],
        "JWT",
        "Simple JWT's views and Djoser's `jwt/` paths: log in for an access/refresh pair, refresh, verify, log out.",
    ),
    (
        &["Sliding tokens"],
        "Sliding tokens",
        "Simple JWT's sliding tokens: one token that authenticates requests (with `jwt.auth_token_classes` = `[\"sliding\"]`) and is refreshed before it expires, until its `refresh_exp`.",
    ),
    (
        &["Users"],
        "Users",
        "Djoser's `users/` endpoints: register, read and change the current user.",
    ),
    (
        &["Token"],
        "Opaque token",
        "DRF's `Authorization: Token <key>` through Djoser's `token/login/` and `token/logout/`.",
    ),
    (
        &["Whoami"],
        "Who am I",
        "The caller, looked up in the database or read from the access token alone.",
    ),
    (
        &["Keys"],
        "Keys",
        "The public keys that verify tokens signed with an asymmetric algorithm.",
    ),
    (
        &["Groups"],
        "Groups",
        "Groups and users' memberships, for staff: what the `groups` claim and forward auth's `X-Auth-Groups` carry.",
    ),
    (
        &["Forward auth"],
        "Forward auth",
        "For reverse proxies (nginx `auth_request`, Traefik `ForwardAuth`, Caddy `forward_auth`).",
    ),
    (&["Operations"], "Operations", "Health checks and metrics."),
];

/// Djoser writes its paths with a trailing slash; both forms are served.
fn shown_path(path: &str) -> String {
    if (path.starts_with("/api/") || path.starts_with("/auth/")) && !path.ends_with('/') {
        format!("{path}/")
    } else {
        path.to_owned()
    }
}

/// Realistic values, so that "Try it out" starts from a working request.
fn example(schema: &str) -> Option<Value> {
    let access = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzk2MTU1MDAwLCJpYXQiOjE3OTYxNTQ3MDAsImp0aSI6IjBlMjNhODE2ZGQyOTQzOGU5NWNlYWRkMzY4MjQ1YTgxIiwidXNlcl9pZCI6IjEifQ.signature";
    let refresh = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoicmVmcmVzaCIsImV4cCI6MTc5NjI0MTEwMCwiaWF0IjoxNzk2MTU0NzAwLCJqdGkiOiI1ZjFkNGE4YjJjM2U0ZjVhOWIwYzFkMmUzZjRhNWI2YyIsInVzZXJfaWQiOiIxIn0.signature";
    let sliding = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJ0b2tlbl90eXBlIjoic2xpZGluZyIsImV4cCI6MTc5NjE1NTAwMCwiaWF0IjoxNzk2MTU0NzAwLCJqdGkiOiI4YzJkOTQxZjFhN2I0ZTZkOWYwYTNiNWM3ZDhlOWYxMCIsInJlZnJlc2hfZXhwIjoxNzk2MjQxMTAwLCJ1c2VyX2lkIjoiMSJ9.signature";
    Some(match schema {
        "Credentials" | "TokenCredentials" => {
            json!({"username": "alice", "password": "Tr0ub4dor_3xyz"})
        }
        "TokenPair" => json!({"refresh": refresh, "access": access}),
        "RefreshRequest" => json!({ "refresh": refresh }),
        "RefreshResponse" => json!({ "access": access }),
        "VerifyRequest" => json!({ "token": access }),
        "UserCreate" => json!({
            "username": "alice",
            "password": "Tr0ub4dor_3xyz",
            "email": "alice@example.com"
        }),
        "UserCreated" => json!({"email": "alice@example.com", "username": "alice", "id": 1}),
        "UserOut" => json!({"email": "alice@example.com", "id": 1, "username": "alice"}),
        "UserUpdate" => json!({"email": "alice@example.org"}),
        "GroupName" => json!({"name": "ops"}),
        "GroupOut" => json!({"id": 1, "name": "ops"}),
        "SlidingToken" => json!({ "token": sliding }),
        "SetPassword" => json!({
            "new_password": "An0ther-Passw0rd!",
            "current_password": "Tr0ub4dor_3xyz"
        }),
        "SetUsername" => json!({"new_username": "alice2", "current_password": "Tr0ub4dor_3xyz"}),
        "CurrentPassword" => json!({"current_password": "Tr0ub4dor_3xyz"}),
        "AuthToken" => json!({"auth_token": "a055b5d7f6493e0b2b3899a8333308187f97c2f0"}),
        "WhoAmI" => json!({"id": 1, "username": "alice"}),
        "WhoAmIStateless" => json!({"user_id": "1"}),
        "Status" => json!({"status": "ok"}),
        "Empty" => json!({}),
        "Detail" => json!({"detail": "Not found."}),
        "TokenError" => json!({"detail": "Token is invalid", "code": "token_not_valid"}),
        "Error" => json!({
            "detail": "Given token not valid for any token type",
            "code": "token_not_valid",
            "messages": [{
                "token_class": "AccessToken",
                "token_type": "access",
                "message": "Token is expired"
            }]
        }),
        _ => return None,
    })
}

/// Constraints the server enforces on request fields (DRF's and Django's
/// validators), so a client generated from the document refuses what the
/// server would.
fn constrain(schema: &str, field: &str, property: &mut Map<String, Value>, required: bool) {
    let request = matches!(
        schema,
        "Credentials"
            | "UserCreate"
            | "UserUpdate"
            | "SetPassword"
            | "SetUsername"
            | "CurrentPassword"
            | "RefreshRequest"
            | "VerifyRequest"
    );
    if !request {
        return;
    }
    // A required CharField refuses a blank value.
    if required {
        property.insert("minLength".into(), json!(1));
    }
    match field {
        "username" | "new_username" if schema != "Credentials" => {
            // Django's `\w` is Unicode's, not JSON Schema's ASCII one: no
            // pattern, which would call valid names invalid.
            property.insert("maxLength".into(), json!(150));
        }
        // Django's `EmailField(blank=True)`: an address, or nothing.
        "email" => {
            property.insert("maxLength".into(), json!(254));
            property.insert("anyOf".into(), json!([{"format": "email"}, {"enum": [""]}]));
        }
        "password" | "new_password" if schema != "Credentials" => {
            property.insert("minLength".into(), json!(8));
        }
        _ => {}
    }
}

/// The document served at `/openapi.json` and shown at `/docs`.
pub fn polish(spec: &str) -> String {
    let Ok(mut doc) = serde_json::from_str::<Value>(spec) else {
        return spec.to_owned();
    };
    add_error_schemas(&mut doc);
    polish_schemas(&mut doc);
    polish_paths(&mut doc);
    add_aliases(&mut doc);
    add_cookie_scheme(&mut doc);
    polish_tags(&mut doc);
    serde_json::to_string(&doc).unwrap_or_else(|_| spec.to_owned())
}

fn add_error_schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    schemas.insert(
        "Detail".into(),
        json!({
            "type": "object",
            "title": "Detail",
            "description": "DRF's `{\"detail\": ...}`.",
            "required": ["detail"],
            "properties": {"detail": {"type": "string"}}
        }),
    );
    schemas.insert(
        "TokenError".into(),
        json!({
            "type": "object",
            "title": "TokenError",
            "description": "Simple JWT's answer for a refused token (`code` is `token_not_valid`), or for refused credentials (no `code`, as Simple JWT).",
            "required": ["detail"],
            "properties": {
                "detail": {"type": "string"},
                "code": {"type": "string"}
            }
        }),
    );
}

fn polish_schemas(doc: &mut Value) {
    let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (name, schema) in schemas.iter_mut() {
        let required: Vec<String> = schema["required"]
            .as_array()
            .map(|r| {
                r.iter()
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        // `get_mut`, not `[]`: indexing a missing key would insert a null.
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            for (field, property) in props.iter_mut() {
                if let Some(p) = property.as_object_mut() {
                    constrain(name, field, p, required.contains(field));
                }
            }
        }
        if let Some(e) = example(name)
            && let Some(s) = schema.as_object_mut()
        {
            s.insert("example".into(), e);
        }
    }
}

/// The schema named by a `$ref`, if it is a component.
fn component<'a>(doc: &'a Value, reference: &Value) -> Option<&'a Value> {
    let name = reference.as_str()?.strip_prefix("#/components/schemas/")?;
    doc["components"]["schemas"].get(name)
}

fn polish_paths(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object().cloned() else {
        return;
    };
    let mut shown = Map::new();
    for (path, mut item) in paths {
        if path == "/api/v1/auth/forward" {
            // One entry, not six: every method is served alike.
            if let Some(ops) = item.as_object_mut() {
                ops.retain(|method, _| method == "get");
                if let Some(get) = ops.get_mut("get") {
                    get["security"] = json!([{"Bearer": []}, {"Token": []}]);
                    get["operationId"] = json!("forward_auth");
                }
            }
        }
        if let Some(ops) = item.as_object_mut() {
            for (method, op) in ops.iter_mut() {
                if op["operationId"].is_null() {
                    let id = format!(
                        "{}_{method}",
                        path.trim_matches('/')
                            .replace(['/', '-', '.', '{', '}'], "_")
                    );
                    op["operationId"] = json!(id);
                }
                let body_schema =
                    op["requestBody"]["content"]["application/json"]["schema"]["$ref"].clone();
                if let Some(schema) = component(doc, &body_schema) {
                    let all_optional = schema["required"].as_array().is_none_or(|r| r.is_empty());
                    if all_optional {
                        op["requestBody"]["required"] = json!(false);
                    }
                }
                let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
                if let Some(responses) = op["responses"].as_object_mut() {
                    for (status, response) in responses.iter_mut() {
                        let target = match status.as_str() {
                            // Protected routes answer with Simple JWT's
                            // `messages` too: the `Error` schema.
                            "401" if secured => continue,
                            "401" => "TokenError",
                            "404" | "405" | "413" | "415" | "429" | "503" => "Detail",
                            "400" => {
                                let any = response
                                    .pointer_mut("/content/application~1json/schema/anyOf")
                                    .and_then(Value::as_array_mut);
                                if let Some(any) = any {
                                    for branch in any {
                                        if branch["$ref"] == "#/components/schemas/Error" {
                                            *branch =
                                                json!({"$ref": "#/components/schemas/Detail"});
                                        }
                                    }
                                }
                                continue;
                            }
                            _ => continue,
                        };
                        if let Some(content) =
                            response.get_mut("content").and_then(Value::as_object_mut)
                        {
                            for media in content.values_mut() {
                                if media["schema"]["$ref"] == "#/components/schemas/Error" {
                                    media["schema"] =
                                        json!({ "$ref": format!("#/components/schemas/{target}") });
                                }
                            }
                        }
                    }
                }
            }
        }
        shown.insert(shown_path(&path), item);
    }
    doc["paths"] = Value::Object(shown);
}

/// Cookie mode's access cookie, beside Bearer wherever Bearer is taken.
fn add_cookie_scheme(doc: &mut Value) {
    if let Some(schemes) = doc
        .pointer_mut("/components/securitySchemes")
        .and_then(Value::as_object_mut)
    {
        schemes.insert(
            "Cookie".into(),
            json!({
                "type": "apiKey",
                "in": "cookie",
                "name": "access_token",
                "description": "Cookie mode (`cookie.enabled`, with `cookie` in `auth.methods`): the access token in the cookie named by `cookie.access_name`. Unsafe requests must repeat the `csrftoken` cookie in the `X-CSRFToken` header.",
            }),
        );
    }
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for item in paths.values_mut() {
        let Some(ops) = item.as_object_mut() else {
            continue;
        };
        for op in ops.values_mut() {
            // whoami-stateless reads the Authorization header alone.
            let bearer_only = op["operationId"] == "whoami_stateless";
            let Some(security) = op.get_mut("security").and_then(Value::as_array_mut) else {
                continue;
            };
            let bearer = security.iter().any(|s| s.get("Bearer").is_some());
            if bearer && !bearer_only {
                security.push(json!({"Cookie": []}));
            }
        }
    }
}

/// Djoser's paths for the same views, each an operation of its own.
fn add_aliases(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for alias in super::aliases::ALIASES {
        let Some(mut item) = paths.get(&shown_path(alias.canonical)).cloned() else {
            continue;
        };
        if let Some(ops) = item.as_object_mut() {
            for op in ops.values_mut() {
                op["operationId"] = json!(alias.operation_id);
                op["summary"] = json!(alias.summary);
                op["description"] = json!(alias.description);
            }
        }
        paths.insert(shown_path(alias.path), item);
    }
}

fn polish_tags(doc: &mut Value) {
    let rename = |old: &str| {
        TAGS.iter()
            .find(|(olds, _, _)| olds.contains(&old))
            .map(|(_, new, _)| *new)
    };
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            if let Some(ops) = item.as_object_mut() {
                for op in ops.values_mut() {
                    if let Some(tags) = op.get_mut("tags").and_then(Value::as_array_mut) {
                        for t in tags.iter_mut() {
                            if let Some(new) = t.as_str().and_then(rename) {
                                *t = json!(new);
                            }
                        }
                    }
                }
            }
        }
    }
    // Swagger UI shows the tags in this order.
    doc["tags"] = TAGS
        .iter()
        .map(|(_, name, description)| json!({"name": name, "description": description}))
        .collect();
}
