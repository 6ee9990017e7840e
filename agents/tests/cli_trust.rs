//! The trust commands of the built `kibitz-agent` binary: keygen → sign → verify → inspect on the
//! shipped example manifests, and every bad input's exit code and one-line message.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

const BIN: &str = env!("CARGO_BIN_EXE_kibitz-agent");

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/manifests")
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(dir: &Path, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    }
}

/// Assert a failure: exit `code`, and exactly one `error: …` line on stderr containing `needle`.
fn fails(r: &Run, code: i32, needle: &str) {
    assert_eq!(r.code, code, "stdout: {}\nstderr: {}", r.stdout, r.stderr);
    let lines: Vec<&str> = r.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "stderr should be one line: {:?}", r.stderr);
    assert!(lines[0].starts_with("error: "), "{:?}", lines[0]);
    assert!(
        lines[0].contains(needle),
        "{:?} should mention {needle:?}",
        lines[0]
    );
    assert!(!r.stderr.contains("panicked"));
}

fn write(dir: &Path, name: &str, contents: &str) -> String {
    std::fs::write(dir.join(name), contents).unwrap();
    name.to_owned()
}

fn example(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(examples().join(name)).unwrap()).unwrap()
}

fn keygen(dir: &Path, out: &str) -> String {
    let r = run(dir, &["keygen", "--out", out, "--json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    v["thumbprint"].as_str().unwrap().to_owned()
}

fn b64url_decode(s: &str) -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .unwrap()
}

fn b64url(b: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

#[test]
fn keygen_sign_verify_inspect_on_the_examples() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let r = run(dir, &["keygen", "--out", "agent.jwk"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("thumbprint:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("agent.jwk"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let private: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("agent.jwk")).unwrap()).unwrap();
    let keys: Vec<&str> = private
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["key_ops", "ext", "kty", "x", "y", "crv", "d"]);
    let public: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("agent.pub.jwk")).unwrap()).unwrap();
    assert_eq!(public["key_ops"], json!(["verify"]));
    assert!(public.get("d").is_none());
    // Refuses to overwrite.
    fails(&run(dir, &["keygen", "--out", "agent.jwk"]), 4, "--force");

    let t_in = examples().join("transcriber.json");
    let s_in = examples().join("summarizer.json");
    for (input, out) in [(&t_in, "t.jws"), (&s_in, "s.jws")] {
        let r = run(
            dir,
            &[
                "manifest",
                "sign",
                "--key",
                "agent.jwk",
                "--in",
                input.to_str().unwrap(),
                "--out",
                out,
                "--expires-in",
                "30d",
            ],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        let r = run(dir, &["manifest", "verify", out, "--key", "agent.pub.jwk"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stdout.starts_with("OK: "));
        let r = run(dir, &["manifest", "verify", out, "--json"]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert_eq!(
            serde_json::from_str::<Value>(&r.stdout).unwrap()["ok"],
            true
        );
    }
    let r = run(dir, &["manifest", "inspect", "t.jws"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("Leaves this machine: NO"), "{}", r.stdout);
    assert!(r.stdout.contains("LOCAL, model whisper tiny.en"));
    assert!(r.stdout.contains("signature verified"));
    let r = run(dir, &["manifest", "inspect", "s.jws"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r
        .stdout
        .contains("Leaves this machine: YES, to https://api.example.com:443"));
    assert!(r.stdout.contains("retention:"));
    let r = run(dir, &["manifest", "inspect", "s.jws", "--json"]);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["leaves_machine"], true);
    assert_eq!(v["disclosure"]["role"], "agent");
    assert_eq!(v["disclosure"]["egress"], true);
    let r = run(dir, &["manifest", "inspect", s_in.to_str().unwrap()]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("NOT SIGNED"));

    // init writes the same templates, and they sign.
    let r = run(
        dir,
        &[
            "manifest",
            "init",
            "--kind",
            "summarizer",
            "--out",
            "init.json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("init.json")).unwrap(),
        std::fs::read_to_string(&s_in).unwrap()
    );
    let r = run(dir, &["manifest", "schema"]);
    assert_eq!(r.code, 0);
    assert!(serde_json::from_str::<Value>(&r.stdout).unwrap()["definitions"].is_object());

    // allow-entry prints a pasteable agentKeys entry.
    let r = run(
        dir,
        &[
            "allow-entry",
            "--key",
            "agent.pub.jwk",
            "--caps",
            "perceive:read-chat,act:send-chat",
            "--label",
            "bot",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let entry: Value = serde_json::from_str(r.stdout.trim()).unwrap();
    assert_eq!(entry["key"], public);
    assert_eq!(
        entry["caps"],
        json!({"perceive":["read-chat"],"act":["send-chat"]})
    );
    assert_eq!(entry["label"], "bot");
    fails(
        &run(
            dir,
            &[
                "allow-entry",
                "--key",
                "agent.pub.jwk",
                "--caps",
                "read-minds",
            ],
        ),
        16,
        "read-minds",
    );
}

#[test]
fn bad_inputs_have_distinct_codes_and_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    keygen(dir, "agent.jwk");
    keygen(dir, "other.jwk");
    let s_in = examples().join("summarizer.json");
    let s_in = s_in.to_str().unwrap();
    let r = run(
        dir,
        &[
            "manifest",
            "sign",
            "--key",
            "agent.jwk",
            "--in",
            s_in,
            "--out",
            "s.jws",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let token = std::fs::read_to_string(dir.join("s.jws"))
        .unwrap()
        .trim()
        .to_owned();
    let parts: Vec<&str> = token.split('.').collect();

    // Tampered: the endpoint is changed after signing.
    let mut payload: Value = serde_json::from_slice(&b64url_decode(parts[1])).unwrap();
    payload["lanes"][0]["destination"]["retention"] = json!("kept forever");
    let tampered = format!(
        "{}.{}.{}",
        parts[0],
        b64url(payload.to_string().as_bytes()),
        parts[2]
    );
    write(dir, "tampered.jws", &tampered);
    fails(
        &run(dir, &["manifest", "verify", "tampered.jws"]),
        10,
        "bad signature",
    );
    fails(
        &run(dir, &["manifest", "inspect", "tampered.jws"]),
        10,
        "bad signature",
    );

    // Wrong key.
    fails(
        &run(
            dir,
            &["manifest", "verify", "s.jws", "--key", "other.pub.jwk"],
        ),
        11,
        "expected",
    );

    // Expired: signed 100 s ago for 10 s.
    let past = (std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        - 100)
        .to_string();
    let r = run(
        dir,
        &[
            "manifest",
            "sign",
            "--key",
            "agent.jwk",
            "--in",
            s_in,
            "--out",
            "old.jws",
            "--expires-in",
            "10s",
            "--now",
            &past,
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    fails(&run(dir, &["manifest", "verify", "old.jws"]), 12, "expired");

    // Unknown capability.
    let mut v = example("summarizer.json");
    v["lanes"][0]["capability"] = json!("read-minds");
    let f = write(dir, "unknown.json", &v.to_string());
    fails(
        &run(dir, &["manifest", "sign", "--key", "agent.jwk", "--in", &f]),
        16,
        "unknown capability \"read-minds\"",
    );

    // Lane without destination.
    let mut v = example("summarizer.json");
    v["lanes"][2].as_object_mut().unwrap().remove("destination");
    let f = write(dir, "nodest.json", &v.to_string());
    fails(
        &run(dir, &["manifest", "sign", "--key", "agent.jwk", "--in", &f]),
        17,
        "no destination",
    );

    // Non-https remote endpoint.
    let mut v = example("summarizer.json");
    v["lanes"][0]["destination"]["endpoint"] = json!("http://api.example.com/v1/chat/completions");
    let f = write(dir, "http.json", &v.to_string());
    fails(
        &run(dir, &["manifest", "sign", "--key", "agent.jwk", "--in", &f]),
        18,
        "https",
    );

    // Loopback http only with the explicit flag, at signing and at verification.
    let mut v = example("summarizer.json");
    for lane in [0, 1] {
        v["lanes"][lane]["destination"]["endpoint"] =
            json!("http://127.0.0.1:8080/v1/chat/completions");
    }
    v["egress"] = json!(["http://127.0.0.1:8080"]);
    let f = write(dir, "local.json", &v.to_string());
    fails(
        &run(dir, &["manifest", "sign", "--key", "agent.jwk", "--in", &f]),
        18,
        "https",
    );
    let r = run(
        dir,
        &[
            "manifest",
            "sign",
            "--key",
            "agent.jwk",
            "--in",
            &f,
            "--out",
            "local.jws",
            "--allow-insecure-local",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    fails(&run(dir, &["manifest", "verify", "local.jws"]), 18, "https");
    assert_eq!(
        run(
            dir,
            &["manifest", "verify", "local.jws", "--allow-insecure-local"]
        )
        .code,
        0
    );

    // Egress that does not match the remote destinations.
    let mut v = example("summarizer.json");
    v["egress"] = json!(["https://api.example.com:443", "https://tracker.example:443"]);
    let f = write(dir, "egress.json", &v.to_string());
    fails(
        &run(dir, &["manifest", "sign", "--key", "agent.jwk", "--in", &f]),
        19,
        "tracker.example",
    );

    // Malformed JWK (key file).
    let f = write(
        dir,
        "bad.jwk",
        r#"{"kty":"EC","crv":"P-256","x":"AAAA","y":"AAAA","d":"AAAA"}"#,
    );
    fails(
        &run(dir, &["manifest", "sign", "--key", &f, "--in", s_in]),
        14,
        "malformed key",
    );
    fails(
        &run(
            dir,
            &["manifest", "sign", "--key", "agent.pub.jwk", "--in", s_in],
        ),
        14,
        "public key",
    );
    let f = write(dir, "notjson.jwk", "not json");
    fails(
        &run(dir, &["manifest", "verify", "s.jws", "--key", &f]),
        14,
        "malformed key",
    );

    // Truncated token.
    write(dir, "trunc.jws", &token[..token.len() - 20]);
    fails(
        &run(dir, &["manifest", "verify", "trunc.jws"]),
        15,
        "malformed",
    );
    write(dir, "half.jws", &token[..token.len() / 2]);
    fails(
        &run(dir, &["manifest", "verify", "half.jws"]),
        15,
        "malformed",
    );

    // Invalid manifest (schema).
    let mut v = example("summarizer.json");
    v["agent"].as_object_mut().unwrap().remove("publisher");
    let f = write(dir, "schema.json", &v.to_string());
    fails(
        &run(dir, &["manifest", "sign", "--key", "agent.jwk", "--in", &f]),
        13,
        "publisher",
    );

    // I/O and usage.
    fails(
        &run(dir, &["manifest", "verify", "missing.jws"]),
        3,
        "missing.jws",
    );
    let r = run(dir, &["manifest", "sign", "--key"]);
    assert_eq!(r.code, 2);
    assert_eq!(run(dir, &[]).code, 2);
    assert_eq!(run(dir, &["--help"]).code, 0);
}

const AGENT_PUB: &str = r#"{"key_ops":["verify"],"ext":true,"kty":"EC","x":"hPldv-QK7PvWttrUQHFZgStrWer6e-rsjWBWN3tZ7tM","y":"BMCsBjfGj3jIt84dtEM8487nLATrmudulBUPEPprpwE","crv":"P-256"}"#;
const GK: &str = "eyJrZXlfb3BzIjpbInZlcmlmeSJdLCJleHQiOnRydWUsImt0eSI6IkVDIiwieCI6IlBYcml4VTVoSzd2eEdxUkRYRERUT3dySXEzSzd3a3RVUFM4SGFnVE5Zbk0iLCJ5IjoiajAxUjJKSl83ODlkSjVvNWVyZzVWYmFTeVdWTU9PemtVMFBkSjV0aFAzTSIsImNydiI6IlAtMjU2In0";
const GM: &str = "eyJtZW1iZXJzIjpbXSwibW9kZSI6Imdvb2dsZSIsInJvb20iOiJzdGFuZHVwIiwiZXhwIjoxNzAwMDAzNjAwLCJpbnZpdGVlcyI6W10sImFnZW50S2V5cyI6W3sia2V5Ijp7ImtleV9vcHMiOlsidmVyaWZ5Il0sImV4dCI6dHJ1ZSwia3R5IjoiRUMiLCJ4IjoiaFBsZHYtUUs3UHZXdHRyVVFIRlpnU3RyV2VyNmUtcnNqV0JXTjN0Wjd0TSIsInkiOiJCTUNzQmpmR2ozakl0ODRkdEVNODQ4N25MQVRybXVkdWxCVVBFUHBycHdFIiwiY3J2IjoiUC0yNTYifSwiY2FwcyI6eyJwZXJjZWl2ZSI6WyJyZWFkLWNoYXQiLCJyZWFkLXJvc3RlciJdLCJhY3QiOlsic2VuZC1jaGF0Il19LCJsYWJlbCI6Im5vdGVzLWJvdCJ9XX0.mVqaQnWbiMXHi1Mni45odpfsHHK0zFJdjx_hFenf3XCYWoHyN2XHCycgBRiQmWF76CRukPCK7JGdUQXz3KcfJQ";

#[test]
fn room_verify_link_on_the_spec_vector() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let key = write(dir, "agent.pub.jwk", AGENT_PUB);
    let link = format!("https://kibitz.chat/#standup?g=google&gk={GK}&gm={GM}");
    let r = run(
        dir,
        &[
            "room",
            "verify-link",
            "--link",
            &link,
            "--key",
            &key,
            "--now",
            "1700000000",
            "--json",
        ],
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["room"], "standup");
    assert_eq!(v["label"], "notes-bot");
    assert_eq!(
        v["caps"],
        json!({"perceive":["read-chat","read-roster"],"act":["send-chat"]})
    );
    let r = run(
        dir,
        &[
            "room",
            "verify-link",
            "--link",
            &link,
            "--key",
            &key,
            "--now",
            "1700000000",
        ],
    );
    assert!(r.stdout.starts_with("OK: room standup"), "{}", r.stdout);

    keygen(dir, "stranger.jwk");
    fails(
        &run(
            dir,
            &[
                "room",
                "verify-link",
                "--link",
                &link,
                "--key",
                "stranger.pub.jwk",
                "--now",
                "1700000000",
            ],
        ),
        11,
        "does not allow-list",
    );
    fails(
        &run(
            dir,
            &[
                "room",
                "verify-link",
                "--link",
                &link,
                "--key",
                &key,
                "--now",
                "1700003600",
            ],
        ),
        21,
        "expired",
    );
    let lunch = link.replace("#standup", "#lunch");
    fails(
        &run(
            dir,
            &[
                "room",
                "verify-link",
                "--link",
                &lunch,
                "--key",
                &key,
                "--now",
                "1700000000",
            ],
        ),
        21,
        "wrong room",
    );
    let invite = link.replace("g=google", "g=invite");
    fails(
        &run(
            dir,
            &[
                "room",
                "verify-link",
                "--link",
                &invite,
                "--key",
                &key,
                "--now",
                "1700000000",
            ],
        ),
        21,
        "wrong mode",
    );
    fails(
        &run(
            dir,
            &[
                "room",
                "verify-link",
                "--link",
                "https://kibitz.chat/",
                "--key",
                &key,
            ],
        ),
        20,
        "no room",
    );
    fails(
        &run(
            dir,
            &["room", "verify-link", "--link", "#standup", "--key", &key],
        ),
        20,
        "open room",
    );
}
