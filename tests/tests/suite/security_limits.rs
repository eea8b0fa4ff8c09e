//! Limits on what a request may make the api hold, tested with raw HTTP/1.1 over TCP so that
//! nothing on the client side tidies the request up. The request head is bounded by hyper's
//! defaults, which the api keeps: at most 100 header fields and about 408 KiB of head
//! (hyper's read buffer limit, 8 KiB + 100 × 4 KiB), beyond which the answer is 431 or a
//! closed connection. A body that cannot be read to its end is the client's error (400), not
//! the server's. The body, payload and batch size limits are tested with the routes they
//! guard (`api_rejections.rs`, `batch_operations.rs`).

use std::time::Duration;

use anyhow::{Context, Result};
use clockworks_tests::Stack;
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Header fields hyper accepts in one request head.
const MAX_HEADER_FIELDS: usize = 100;
/// Bytes of request head hyper buffers at most: 8 KiB and 100 times 4 KiB.
const MAX_HEAD_BYTES: usize = 8192 + 4096 * 100;
/// Generous bound for an answer that should come at once.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);

/// Sends `request` as it is and returns what came back before the connection closed: the
/// status line's code, if a response arrived at all.
async fn raw_exchange(stack: &Stack, request: Vec<u8>) -> Result<Option<u16>> {
    let address = stack
        .api()
        .base_url
        .trim_start_matches("http://")
        .to_owned();
    let stream = TcpStream::connect(&address).await?;
    let (mut reader, mut writer) = stream.into_split();

    // The server may answer and close before it has read everything; a failed write is then
    // expected, and what was answered still counts.
    let writing = tokio::spawn(async move {
        let _ = writer.write_all(&request).await;
        let _ = writer.flush().await;
        writer
    });
    let mut answer = Vec::new();
    let read = tokio::time::timeout(ANSWER_WITHIN, reader.read_to_end(&mut answer))
        .await
        .context("the api neither answered nor closed the connection")?;
    drop(writing.await?);
    if read.is_err() && answer.is_empty() {
        return Ok(None);
    }

    let text = String::from_utf8_lossy(&answer);
    let code = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok());
    Ok(code)
}

fn head_with(extra_headers: &str) -> Vec<u8> {
    format!(
        "GET /v1/timers/x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n{extra_headers}\r\n"
    )
    .into_bytes()
}

/// The api still serves an ordinary request.
async fn assert_still_serving(stack: &Stack) -> Result<()> {
    let response = stack.http.get(stack.url("/healthz")).send().await?;
    assert_eq!(response.status(), StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn a_request_with_more_header_fields_than_allowed_is_refused_with_431() -> Result<()> {
    let stack = Stack::start(0).await?;
    let within: String = (0..MAX_HEADER_FIELDS - 3)
        .map(|n| format!("x-h{n}: v\r\n"))
        .collect();
    let beyond: String = (0..=MAX_HEADER_FIELDS)
        .map(|n| format!("x-h{n}: v\r\n"))
        .collect();

    assert_eq!(raw_exchange(&stack, head_with(&within)).await?, Some(401));
    assert_eq!(raw_exchange(&stack, head_with(&beyond)).await?, Some(431));

    assert_still_serving(&stack).await?;
    stack.shutdown().await
}

#[tokio::test]
async fn a_request_head_larger_than_the_read_buffer_is_refused_without_being_read_whole()
-> Result<()> {
    let stack = Stack::start(0).await?;
    let near_limit = format!("x-big: {}\r\n", "a".repeat(MAX_HEAD_BYTES / 2));
    let beyond = format!("x-big: {}\r\n", "a".repeat(4 * MAX_HEAD_BYTES));

    assert_eq!(
        raw_exchange(&stack, head_with(&near_limit)).await?,
        Some(401)
    );
    let refused = raw_exchange(&stack, head_with(&beyond)).await?;
    assert!(
        matches!(refused, None | Some(431)),
        "an oversized head was answered {refused:?}"
    );

    assert_still_serving(&stack).await?;
    stack.shutdown().await
}

#[tokio::test]
async fn a_body_whose_chunked_encoding_breaks_is_a_client_error_not_a_server_error() -> Result<()> {
    let stack = Stack::start(0).await?;
    let key = stack.create_key("acme", &["timers:write"]).await?;
    let request = format!(
        "POST /v1/timers HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\
         Authorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Transfer-Encoding: chunked\r\n\r\n5\r\n{{\"id\"\r\nzz-not-a-chunk-size\r\n\r\n"
    );

    let answered = raw_exchange(&stack, request.into_bytes()).await?;

    assert_eq!(answered, Some(400));
    let log = stack.api().process.log()?;
    assert!(
        !log.contains("request failed"),
        "logged as a failure: {log}"
    );
    assert_still_serving(&stack).await?;
    stack.shutdown().await
}
