//! Authentication in the opening handshake: a token in the query (`?token=...`) or an
//! `Authorization: Bearer ...` header. Without one the client gets 401 and never upgrades.
//!
//! Run: `cargo run --example auth`, then try
//! `cargo run --example echo_client -- ws://127.0.0.1:9002/?token=let-me-in` (accepted) and
//! `cargo run --example echo_client -- ws://127.0.0.1:9002/` (401).
//!
//! Browsers cannot set headers on a WebSocket, so pages pass a token in the query or rely on a
//! cookie ([`Request::cookie`](syncws::Request::cookie)); with cookies, restrict
//! `allowed_origins` so that other sites cannot connect on the user's behalf.

use syncws::{HttpResponse, Message, Server, Session};

/// Tokens and the users they stand for. A real server would check a database or a signature.
const USERS: [(&str, &str); 2] = [("let-me-in", "alice"), ("open-sesame", "bob")];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9002".to_owned());
    let server = Server::builder()
        // Runs on the connection's thread before the 101 is sent: refusing here costs the
        // client its upgrade, and the handler never sees an unauthenticated connection.
        .on_handshake(|request, _accept| {
            let token = request.query_param("token").or_else(|| {
                request
                    .header("authorization")
                    .and_then(|value| value.strip_prefix("Bearer "))
            });
            let Some(token) = token else {
                return Err(HttpResponse::new(401)
                    .header("WWW-Authenticate", "Bearer")
                    .body("a token is required: ?token=... or Authorization: Bearer ...\n"));
            };
            match USERS.iter().find(|(known, _)| *known == token) {
                // What the hook returns is attached to the session: the authenticated user.
                Some((_, user)) => Ok(user.to_string()),
                None => Err(HttpResponse::new(403).body("unknown token\n")),
            }
        })
        .on_end(|peer, cause| println!("{peer} ended: {cause}"))
        .bind(&addr)?;
    println!("auth server on ws://{}/", server.local_addr()?);
    server.serve(|mut session: Session<String>| {
        let user = session.data().clone();
        println!("{} authenticated as {user}", session.peer_addr());
        if session
            .send(Message::text(format!("welcome, {user}")))
            .is_err()
        {
            return;
        }
        while let Ok(message) = session.read() {
            if let Message::Text(text) = message {
                if session
                    .send(Message::text(format!("{user}: {text}")))
                    .is_err()
                {
                    break;
                }
            }
        }
    })?;
    Ok(())
}
