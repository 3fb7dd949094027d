//! A scripted Kubernetes API server for unit tests: `kube::Client::new` over a tower service
//! that answers by method and path and records every request line. Unit tests never contact a
//! cluster.

/// A scripted API server: answers by method and path, records every request line.
pub fn api_server(
    answer: impl Fn(&str, &str) -> (u16, String) + Send + Sync + 'static,
) -> (kube::Client, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::sync::{Arc, Mutex};
    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = calls.clone();
    let answer = Arc::new(answer);
    let service = tower::service_fn(move |req: http::Request<kube::client::Body>| {
        let (seen, answer) = (seen.clone(), answer.clone());
        async move {
            seen.lock()
                .unwrap()
                .push(format!("{} {}", req.method(), req.uri()));
            let (status, body) = answer(req.method().as_str(), req.uri().path());
            Ok::<_, std::convert::Infallible>(
                http::Response::builder()
                    .status(status)
                    .header("content-type", "application/json")
                    .body(kube::client::Body::from(body.into_bytes()))
                    .unwrap(),
            )
        }
    });
    (kube::Client::new(service, "default"), calls)
}
