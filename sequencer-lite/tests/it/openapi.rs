//! `GET /v1/openapi.json` agrees with the server: the document is valid OpenAPI 3.1 (by the
//! specification's own schema, `scripts/check-openapi.mjs`) and well formed (every reference
//! resolves, every operation has responses), every route it describes is served and exercised
//! here, and every answer the server gives (each status, each body) is what the document says,
//! field by field.

use std::collections::BTreeSet;

use keel_sequencer::{api, Level, Sequencer};
use keel_state::{test_utils::key, AccountIndex, Encode, L1Address, SignedOp, Withdraw};
use serde_json::{json, Value};

use crate::common::{config, fund, serve, settle, transfer};

/// Resolves `{"$ref": "#/components/schemas/X"}` against the document.
fn resolve<'a>(doc: &'a Value, schema: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r
                .strip_prefix("#/components/schemas/")
                .unwrap_or_else(|| panic!("a reference outside the schemas: {r}"));
            let target = &doc["components"]["schemas"][name];
            assert!(!target.is_null(), "{r} does not resolve");
            resolve(doc, target)
        }
        None => schema,
    }
}

/// Checks `value` against `schema` (the subset of JSON Schema the generator emits: types,
/// properties, required, enums, oneOf, items, minimum); an object may carry no property the
/// schema does not name.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    let schema = resolve(doc, schema);
    if let Some(alts) = schema.get("oneOf").and_then(Value::as_array) {
        let fits = alts
            .iter()
            .filter(|s| std::panic::catch_unwind(|| check(doc, s, value, at)).is_ok())
            .count();
        assert_eq!(fits, 1, "{at}: {value} fits {fits} of oneOf {schema}");
        return;
    }
    if let Some(e) = schema.get("enum").and_then(Value::as_array) {
        assert!(e.contains(value), "{at}: {value} not in {e:?}");
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if !types.is_empty() {
        let kind = match value {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(n) if n.is_u64() || n.is_i64() => "integer",
            Value::Number(_) => "number",
            Value::String(_) => "string",
            Value::Array(_) => "array",
            Value::Object(_) => "object",
        };
        let ok = types.contains(&kind) || (kind == "integer" && types.contains(&"number"));
        assert!(ok, "{at}: {value} is {kind}, the document says {types:?}");
    }
    if let (Some(min), Some(n)) = (
        schema.get("minimum").and_then(Value::as_f64),
        value.as_f64(),
    ) {
        assert!(n >= min, "{at}: {n} below the minimum {min}");
    }
    if let Value::Object(map) = value {
        let props = schema["properties"].as_object();
        for req in schema["required"].as_array().into_iter().flatten() {
            let req = req.as_str().unwrap();
            assert!(
                map.contains_key(req),
                "{at}: required {req} missing from {value}"
            );
        }
        for (k, v) in map {
            let p = props
                .and_then(|p| p.get(k))
                .unwrap_or_else(|| panic!("{at}: {k} is not in the document's schema {schema}"));
            check(doc, p, v, &format!("{at}.{k}"));
        }
    }
    if let (Value::Array(items), Some(s)) = (value, schema.get("items")) {
        for (i, v) in items.iter().enumerate() {
            check(doc, s, v, &format!("{at}[{i}]"));
        }
    }
}

/// Walks the document: every `$ref` resolves.
fn refs_resolve(doc: &Value, v: &Value) {
    match v {
        Value::Object(m) => {
            if m.contains_key("$ref") {
                resolve(doc, v);
            }
            m.values().for_each(|x| refs_resolve(doc, x));
        }
        Value::Array(a) => a.iter().for_each(|x| refs_resolve(doc, x)),
        _ => {}
    }
}

struct Api {
    doc: Value,
    base: String,
    http: reqwest::Client,
    /// (method, path template) of every call made.
    seen: BTreeSet<(String, String)>,
}

impl Api {
    /// Calls `method path` (`template` names it in the document), checks the answer against the
    /// document's response for its status, and returns (status, JSON body if any).
    async fn call(
        &mut self,
        method: &str,
        template: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let op = self.doc["paths"][template][method].clone();
        assert!(!op.is_null(), "{method} {template} is not in the document");
        if let Some(b) = &body {
            let schema = &op["requestBody"]["content"]["application/json"]["schema"];
            check(
                &self.doc,
                schema,
                b,
                &format!("{method} {template} request"),
            );
        }
        let mut req = self.http.request(
            method.to_uppercase().parse().unwrap(),
            format!("{}{path}", self.base),
        );
        if let Some(b) = &body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let ctype = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned());
        let response = &op["responses"][status.to_string()];
        assert!(
            !response.is_null(),
            "{method} {path} answered {status}, which the document does not list"
        );
        self.seen.insert((method.to_owned(), template.to_owned()));
        let bytes = r.bytes().await.unwrap();
        let content = response["content"].as_object();
        let Some(content) = content else {
            assert!(
                bytes.is_empty(),
                "{method} {path}: a body the document does not describe"
            );
            return (status, Value::Null);
        };
        let ctype = ctype.expect("a body has a content type");
        let (media, described) = content
            .iter()
            .find(|(m, _)| ctype.starts_with(m.as_str()))
            .unwrap_or_else(|| panic!("{method} {path}: {ctype} is not in {content:?}"));
        if media == "application/json" && !described["schema"].is_null() {
            let v: Value = serde_json::from_slice(&bytes).unwrap();
            check(
                &self.doc,
                &described["schema"],
                &v,
                &format!("{method} {path} {status}"),
            );
            return (status, v);
        }
        (status, Value::Null)
    }
}

/// `node scripts/check-openapi.mjs` (`@seriousme/openapi-schema-validator`) on `doc`.
fn validates(doc: &Value, valid: bool) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), doc.to_string()).unwrap();
    let repo = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::process::Command::new("node")
        .arg(repo.join("scripts/check-openapi.mjs"))
        .arg(file.path())
        .output()
        .expect("node runs (./keel.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout);
    let answer: Value = serde_json::from_str(text.trim())
        .unwrap_or_else(|_| panic!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    assert_eq!(answer["valid"], valid, "{answer}");
    assert_eq!(out.status.success(), valid, "{answer}");
    assert_eq!(answer["openapi"], "3.1", "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_describes_every_route_and_every_answer() {
    let dir = tempfile::tempdir().unwrap();
    let seq = Sequencer::open(config(dir.path())).unwrap();
    let s = seq.clone();
    tokio::task::spawn_blocking(move || fund(&s, 2))
        .await
        .unwrap();
    let client = serve(seq.clone()).await;
    let base = client.base().to_owned();
    let http = reqwest::Client::new();

    // the served document is the library's, and it is well formed
    let doc: Value = http
        .get(format!("{base}/v1/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(doc, serde_json::to_value(api::openapi()).unwrap());
    // valid by the OpenAPI specification's own schema, checked by a validator that is not ours;
    // and a document missing its `info` is not
    validates(&doc, true);
    let mut broken = doc.clone();
    broken.as_object_mut().unwrap().remove("info");
    validates(&broken, false);
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    refs_resolve(&doc, &doc);
    let mut described = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            assert!(
                !op["responses"].as_object().unwrap().is_empty(),
                "{method} {path} has no responses"
            );
            described.insert((method.clone(), path.clone()));
        }
    }

    let mut api = Api {
        doc,
        base,
        http,
        seen: BTreeSet::new(),
    };
    // every form of submission, and its refusals
    let t = transfer(0, 1, 5, 0);
    let (st, body) = api
        .call(
            "post",
            "/v1/ops",
            "/v1/ops",
            Some(json!({"op": hex::encode(t.encode())})),
        )
        .await;
    assert_eq!(st, 202, "{body}");
    let seq_no = body["seq"].as_u64().unwrap();
    let SignedOp::Transfer(t2) = transfer(0, 1, 5, 1) else {
        unreachable!()
    };
    let fields = serde_json::to_value(api::TransferBody::of(&t2)).unwrap();
    let (st, _) = api
        .call(
            "post",
            "/v1/ops",
            "/v1/ops",
            Some(json!({"transfer": fields, "wait": "accepted"})),
        )
        .await;
    assert_eq!(st, 202);
    let w = Withdraw::sign(&key(1), AccountIndex(1), L1Address([7; 20]), 3, 0);
    let wb = serde_json::to_value(api::WithdrawBody::of(&w)).unwrap();
    let (st, _) = api
        .call(
            "post",
            "/v1/ops",
            "/v1/ops",
            Some(json!({"withdraw": wb, "timeout_ms": 1000})),
        )
        .await;
    assert_eq!(st, 202);
    let (st, _) = api
        .call(
            "post",
            "/v1/ops",
            "/v1/ops",
            Some(json!({"transfer": fields})),
        )
        .await;
    assert_eq!(st, 409, "the same operation again");
    let (st, _) = api
        .call(
            "post",
            "/v1/ops",
            "/v1/ops",
            Some(json!({"op": hex::encode(transfer(0, 9, 5, 2).encode())})),
        )
        .await;
    assert_eq!(st, 422, "an unknown account");
    let (st, _) = api
        .call("post", "/v1/ops", "/v1/ops", Some(json!({"op": "zz"})))
        .await;
    assert_eq!(st, 400);
    settle(&client).await;
    // following it
    let (st, body) = api
        .call("get", "/v1/ops/{seq}", &format!("/v1/ops/{seq_no}"), None)
        .await;
    assert_eq!(
        (st, body["level"].as_str()),
        (200, Some(Level::Accepted.name()))
    );
    let (st, _) = api.call("get", "/v1/ops/{seq}", "/v1/ops/999", None).await;
    assert_eq!(st, 404);
    // state
    let (st, body) = api
        .call("get", "/v1/accounts/{index}", "/v1/accounts/1", None)
        .await;
    assert_eq!((st, body["nonce"].as_u64()), (200, Some(1)));
    let (st, _) = api
        .call("get", "/v1/accounts/{index}", "/v1/accounts/9", None)
        .await;
    assert_eq!(st, 404);
    let (st, _) = api
        .call("get", "/v1/accounts/{index}", "/v1/accounts/4096", None)
        .await;
    assert_eq!(st, 422);
    let (st, body) = api.call("get", "/v1/status", "/v1/status", None).await;
    assert_eq!(st, 200, "{body}");
    let (st, _) = api.call("get", "/metrics", "/metrics", None).await;
    assert_eq!(st, 200);
    let (st, _) = api
        .call("get", "/v1/openapi.json", "/v1/openapi.json", None)
        .await;
    assert_eq!(st, 200);
    // replication
    let (st, _) = api
        .call("get", "/v1/batches/{number}", "/v1/batches/1", None)
        .await;
    assert_eq!(st, 200);
    let (st, _) = api
        .call("get", "/v1/batches/{number}", "/v1/batches/999", None)
        .await;
    assert_eq!(st, 404);
    let ack = json!({"batch": 1, "root": "0x00", "epoch": 1, "standby": "00", "signature": "00"});
    let (st, _) = api
        .call("post", "/v1/replicated", "/v1/replicated", Some(ack))
        .await;
    assert_eq!(st, 400);
    let r = api
        .http
        .get(format!("{}/v1/stream?from=1", api.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/octet-stream");
    let stream = &api.doc["paths"]["/v1/stream"]["get"];
    assert_eq!(stream["parameters"][0]["name"], "from", "{stream}");
    assert!(stream["responses"]["200"]["content"]["application/octet-stream"].is_object());
    api.seen.insert(("get".into(), "/v1/stream".into()));

    // every route the document describes was served and checked, and no other was called
    assert_eq!(
        api.seen, described,
        "the document and the routes exercised differ"
    );
    seq.shutdown();
}

#[test]
fn the_router_has_no_route_outside_the_document() {
    // routes are added with their description (`routes!`); a bare `.route(` would serve a path
    // the document does not describe
    let src = include_str!("../../src/api.rs");
    let code: String = src
        .lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect();
    assert!(
        !code.contains(".route("),
        "api.rs adds a route without its description"
    );
}
