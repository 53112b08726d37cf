//! A stand-in for the Kubernetes API server, on loopback, speaking the list and watch protocol
//! as the Kubernetes API documentation describes it ("API concepts: efficient detection of
//! changes"), for the resources a test gives it:
//!
//! - `GET /apis/{group}/{version}/[namespaces/{ns}/]{plural}` lists: a JSON list whose
//!   `metadata.resourceVersion` is the store's revision; items carry their own
//!   `metadata.resourceVersion` (and, as from a real server, no `apiVersion` or `kind`);
//! - the same with `watch=true&resourceVersion=R` streams one JSON line per event newer than
//!   `R` (`ADDED`, `MODIFIED`, `DELETED`, `BOOKMARK`), then the events as they happen; a
//!   `resourceVersion` older than the last compaction gets an `ERROR` event with a `Status` of
//!   code 410 (`Expired`) and the end of the stream, as a real server answers;
//! - anything else gets 404 with a `Status`.
//!
//! The test drives it with a script of calls: `apply`, `delete`, `expire` (compacts the history
//! and ends every open watch with `410 Gone`), `stop` and `start` (the server goes away, its
//! connections cut, and comes back on the same port). `requests` is what the client asked.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Frame;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::sync::{broadcast, mpsc};
use tokio::task::JoinSet;

/// A response body sent in pieces: one JSON document, or one watch event per line.
pub(crate) struct Chunks(mpsc::UnboundedReceiver<Bytes>);

impl http_body::Body for Chunks {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// What a watch stream is told.
#[derive(Clone, Debug)]
enum Note {
    /// An event: plural, type, object.
    Event(String, &'static str, Value),
    Bookmark(u64),
    Expire,
}

/// What the server holds.
struct Store {
    revision: u64,
    /// By (plural, namespace, name).
    objects: BTreeMap<(String, String, String), Value>,
    history: Vec<(u64, String, &'static str, Value)>,
    /// Watches from an older revision get `410 Gone`.
    compacted: u64,
    requests: Vec<String>,
}

/// The kinds the server serves: plural → (group, version, kind).
fn kind_of(plural: &str) -> Option<(&'static str, &'static str)> {
    Some(match plural {
        "virtualservices" => ("networking.istio.io", "VirtualService"),
        "destinationrules" => ("networking.istio.io", "DestinationRule"),
        "httproutes" => ("gateway.networking.k8s.io", "HTTPRoute"),
        "grpcroutes" => ("gateway.networking.k8s.io", "GRPCRoute"),
        _ => return None,
    })
}

/// The stand-in API server.
pub(crate) struct ApiServer {
    addr: SocketAddr,
    store: Arc<Mutex<Store>>,
    notes: broadcast::Sender<Note>,
    tasks: Option<JoinSet<()>>,
}

impl ApiServer {
    /// A server on a free loopback port, with no objects.
    pub(crate) async fn start() -> ApiServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut server = ApiServer {
            addr: listener.local_addr().unwrap(),
            store: Arc::new(Mutex::new(Store {
                revision: 100,
                objects: BTreeMap::new(),
                history: Vec::new(),
                compacted: 0,
                requests: Vec::new(),
            })),
            notes: broadcast::channel(1024).0,
            tasks: None,
        };
        server.serve(listener);
        server
    }

    /// A `kube` client for this server.
    pub(crate) fn client(&self) -> kube::Client {
        let url = format!("http://{}", self.addr).parse().unwrap();
        kube::Client::try_from(kube::Config::new(url)).unwrap()
    }

    /// Creates or replaces an object (`apiVersion`, `kind`, `metadata` with `name` and
    /// `namespace`, `spec`); returns its new `resourceVersion`.
    pub(crate) fn apply(&self, plural: &str, mut object: Value) -> u64 {
        let mut store = self.store.lock().unwrap();
        store.revision += 1;
        let revision = store.revision;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        let key = key_of(plural, &object);
        let kind = if store.objects.contains_key(&key) {
            "MODIFIED"
        } else {
            "ADDED"
        };
        store.objects.insert(key, object.clone());
        store
            .history
            .push((revision, plural.to_string(), kind, object.clone()));
        let _ = self
            .notes
            .send(Note::Event(plural.to_string(), kind, object));
        revision
    }

    /// Deletes an object.
    pub(crate) fn delete(&self, plural: &str, namespace: &str, name: &str) {
        let mut store = self.store.lock().unwrap();
        let key = (plural.to_string(), namespace.to_string(), name.to_string());
        let Some(mut object) = store.objects.remove(&key) else {
            panic!("no {plural} {namespace}/{name} to delete");
        };
        store.revision += 1;
        let revision = store.revision;
        object["metadata"]["resourceVersion"] = json!(revision.to_string());
        store
            .history
            .push((revision, plural.to_string(), "DELETED", object.clone()));
        let _ = self
            .notes
            .send(Note::Event(plural.to_string(), "DELETED", object));
    }

    /// Sends every open watch a `BOOKMARK` at the current revision.
    pub(crate) fn bookmark(&self) {
        let revision = self.store.lock().unwrap().revision;
        let _ = self.notes.send(Note::Bookmark(revision));
    }

    /// Compacts the history: every open watch gets `410 Gone` and ends, and a watch from a
    /// revision before now gets `410 Gone` too, so the client must list again.
    pub(crate) fn expire(&self) {
        let mut store = self.store.lock().unwrap();
        store.compacted = store.revision + 1;
        store.history.clear();
        let _ = self.notes.send(Note::Expire);
    }

    /// The server goes away: the listener closes and every connection is cut.
    pub(crate) fn stop(&mut self) {
        if let Some(mut tasks) = self.tasks.take() {
            tasks.abort_all();
        }
    }

    /// The server comes back on the same port, with the objects it had.
    pub(crate) async fn restart(&mut self) {
        let listener = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener);
    }

    /// The requests so far: `LIST virtualservices` or `WATCH virtualservices from 104`, with
    /// ` in shop` when namespaced.
    pub(crate) fn requests(&self) -> Vec<String> {
        self.store.lock().unwrap().requests.clone()
    }

    fn serve(&mut self, listener: tokio::net::TcpListener) {
        let mut tasks = JoinSet::new();
        let store = self.store.clone();
        let notes = self.notes.clone();
        tasks.spawn(async move {
            let mut connections = JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let (store, notes) = (store.clone(), notes.clone());
                let service = hyper::service::service_fn(move |req| {
                    let response = answer(&store, &notes, &req);
                    async move { Ok::<_, Infallible>(response) }
                });
                connections.spawn(
                    hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service),
                );
                // Finished connections are let go as new ones come.
                while connections.try_join_next().is_some() {}
            }
        });
        self.tasks = Some(tasks);
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn key_of(plural: &str, object: &Value) -> (String, String, String) {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    (
        plural.to_string(),
        text(&object["metadata"]["namespace"]),
        text(&object["metadata"]["name"]),
    )
}

/// A `Status` body, as the API server writes errors.
fn status(code: u16, reason: &str, message: &str) -> Value {
    json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
           "message": message, "reason": reason, "code": code})
}

fn chunks(first: Option<Bytes>) -> (mpsc::UnboundedSender<Bytes>, Chunks) {
    let (tx, rx) = mpsc::unbounded_channel();
    if let Some(first) = first {
        let _ = tx.send(first);
    }
    (tx, Chunks(rx))
}

fn json_response(code: StatusCode, body: &Value) -> Response<Chunks> {
    let (_, body) = chunks(Some(Bytes::from(body.to_string())));
    let mut res = Response::new(body);
    *res.status_mut() = code;
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// The path's parts: (plural, namespace) for a served kind.
fn route(path: &str) -> Option<(String, Option<String>)> {
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match parts.as_slice() {
        ["apis", _group, "v1", plural] => Some((plural.to_string(), None)),
        ["apis", _group, "v1", "namespaces", ns, plural] => {
            Some((plural.to_string(), Some(ns.to_string())))
        }
        _ => None,
    }
    .filter(|(plural, _)| kind_of(plural).is_some())
}

fn answer<B>(
    store: &Mutex<Store>,
    notes: &broadcast::Sender<Note>,
    req: &Request<B>,
) -> Response<Chunks> {
    let Some((plural, namespace)) = route(req.uri().path()) else {
        return json_response(
            StatusCode::NOT_FOUND,
            &status(
                404,
                "NotFound",
                "the server could not find the requested resource",
            ),
        );
    };
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let within = namespace
        .as_ref()
        .map(|ns| format!(" in {ns}"))
        .unwrap_or_default();
    let mut store = store.lock().unwrap();
    if query.get("watch").map(String::as_str) != Some("true") {
        store.requests.push(format!("LIST {plural}{within}"));
        return json_response(StatusCode::OK, &list(&store, &plural, &namespace));
    }
    let from: u64 = query
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    store
        .requests
        .push(format!("WATCH {plural}{within} from {from}"));
    let (tx, body) = chunks(None);
    let line = |kind: &str, object: &Value| {
        Bytes::from(format!("{}\n", json!({"type": kind, "object": object})))
    };
    if from < store.compacted {
        let _ = tx.send(line(
            "ERROR",
            &status(410, "Expired", "too old resource version"),
        ));
        return streaming(body);
    }
    let (api_version, kind_name) = kind_of(&plural)
        .map(|(g, k)| (format!("{g}/v1"), k))
        .unwrap();
    let visible = move |p: &str, object: &Value| {
        p == plural.as_str()
            && namespace
                .as_ref()
                .is_none_or(|ns| object["metadata"]["namespace"] == *ns)
    };
    for (revision, p, kind, object) in &store.history {
        if *revision > from && visible(p, object) {
            let _ = tx.send(line(kind, object));
        }
    }
    // Subscribed under the lock: nothing falls between the history and the notes.
    let mut rx = notes.subscribe();
    drop(store);
    tokio::spawn(async move {
        while let Ok(note) = rx.recv().await {
            let sent = match note {
                Note::Event(p, kind, object) if visible(&p, &object) => {
                    tx.send(line(kind, &object))
                }
                Note::Event(..) => Ok(()),
                Note::Bookmark(revision) => tx.send(line(
                    "BOOKMARK",
                    &json!({"apiVersion": api_version, "kind": kind_name,
                            "metadata": {"resourceVersion": revision.to_string()}}),
                )),
                Note::Expire => {
                    let _ = tx.send(line(
                        "ERROR",
                        &status(410, "Expired", "too old resource version"),
                    ));
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    streaming(body)
}

fn streaming(body: Chunks) -> Response<Chunks> {
    let mut res = Response::new(body);
    res.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    res
}

/// A list of one kind, as the API server answers it: items without `apiVersion` and `kind`.
fn list(store: &Store, plural: &str, namespace: &Option<String>) -> Value {
    let (group, kind) = kind_of(plural).unwrap();
    let items: Vec<Value> = store
        .objects
        .iter()
        .filter(|((p, ns, _), _)| p == plural && namespace.as_ref().is_none_or(|n| n == ns))
        .map(|(_, object)| {
            let mut item = object.clone();
            if let Some(fields) = item.as_object_mut() {
                fields.remove("apiVersion");
                fields.remove("kind");
            }
            item
        })
        .collect();
    json!({"apiVersion": format!("{group}/v1"), "kind": format!("{kind}List"),
           "metadata": {"resourceVersion": store.revision.to_string()}, "items": items})
}
