//! Cases as lawyers work them, through the real binary: status, tags,
//! assignee and notes, sealed to the case's lawyers; what two lawyers
//! see of each other's changes, what codename holders never see, and what
//! the auditor sees (who and when, never what).

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use super::cli::{start_server, Env};
use custos::client::Client;
use custos::custody::{Action, Event};
use custos::identity::codename::Codename;
use custos::wire::WorkflowBody;

/// The key id `keygen` printed for `who`.
fn key_id(env: &Env, who: &str) -> String {
    env.json(&["keygen", "--name", who, "--out", who, "--no-passphrase"])["key_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn two_lawyers_work_a_case_and_no_codename_holder_sees_any_of_it() {
    let mut env = Env::new();
    // Identities first, so their key ids are known; then the vault.
    let lawyer2 = key_id(&env, "lawyer2");
    env.identities_and_vault(&["admin", "lawyer", "auditor"]);
    let (_server, url, _) = start_server(&env, &env.path("vault"));
    env.server = url.clone();
    env.register("lawyer");
    env.register("auditor");
    env.ok(&[
        "--identity",
        "admin",
        "principal",
        "add",
        "lawyer2.pub",
        "--role",
        "lawyer",
    ]);
    std::fs::write(env.path("statement.txt"), "They held me for three days.\n").unwrap();
    let sub = env.json(&["submit", "--statement", "statement.txt", "--duress"]);
    let case = sub["case_id"].as_str().unwrap().to_owned();
    let as_ = |who: &str, args: &[&str]| {
        let mut all = vec!["--identity", who];
        all.extend_from_slice(args);
        env.ok(&all)
    };
    let show = |who: &str| env.json(&["--identity", who, "case", "show", &case]);
    let listed = |who: &str, filter: &[&str]| -> Vec<String> {
        let mut args = vec!["--identity", who, "cases"];
        args.extend_from_slice(filter);
        env.json(&args)
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case_id"].as_str().unwrap().to_owned())
            .collect()
    };

    // A new case is new, untagged, unassigned; the list says so.
    let fresh = show("lawyer");
    assert_eq!(
        (
            &fresh["workflow_status"],
            &fresh["assignee"],
            fresh["tags"].as_array().unwrap().len()
        ),
        (&serde_json::json!("new"), &serde_json::Value::Null, 0)
    );
    let rows = env.json(&["--identity", "lawyer", "cases"]);
    assert_eq!(rows[0]["workflow_status"], "new");
    assert!(rows[0]["last_activity"].is_string());

    as_(
        "lawyer",
        &[
            "case", "set", &case, "--status", "triage", "--tag", "+urgent", "--tag", "+medical",
        ],
    );
    // Only a lawyer holding the case can be assigned it.
    let out = env.run(&["--identity", "lawyer", "case", "set", &case, "--assign", &lawyer2]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("not a lawyer holding case"),
        "{err}"
    );
    as_("lawyer", &["grant", &case, "--to", &lawyer2]);

    // The second lawyer sees the first one's changes, and makes its own.
    let seen = show("lawyer2");
    assert_eq!(seen["workflow_status"], "triage");
    assert_eq!(seen["tags"], serde_json::json!(["medical", "urgent"]));
    as_(
        "lawyer2",
        &[
            "case", "set", &case, "--status", "active", "--tag", "-medical", "--assign", &lawyer2,
        ],
    );
    std::fs::write(
        env.path("note.txt"),
        "Medical exam booked for Friday; bruises fading.\n",
    )
    .unwrap();
    as_("lawyer2", &["case", "note", &case, "--message", "note.txt"]);

    // The first lawyer sees them all, in log order, with who made each.
    let w = show("lawyer");
    assert_eq!(w["workflow_status"], "active");
    assert_eq!(w["tags"], serde_json::json!(["urgent"]));
    assert_eq!(w["assignee"], lawyer2.as_str());
    assert_eq!(
        w["notes"][0]["text"],
        "Medical exam booked for Friday; bruises fading.\n"
    );
    assert_eq!(w["notes"][0]["by"], lawyer2.as_str());
    assert_eq!(w["history"].as_array().unwrap().len(), 3);
    assert_eq!(w["unreadable"], 0);
    let human = as_("lawyer", &["case", "show", &case]);
    assert!(
        human.contains("assigned to: lawyer2 (") && human.contains("    Medical exam booked"),
        "{human}"
    );

    // The list filters by status, tag, assignee and what is new.
    let only = vec![case.clone()];
    assert_eq!(listed("lawyer2", &["--mine"]), only);
    assert!(listed("lawyer", &["--mine"]).is_empty());
    assert_eq!(listed("lawyer", &["--status", "active"]), only);
    assert!(listed("lawyer", &["--status", "closed"]).is_empty());
    assert_eq!(listed("lawyer", &["--tag", "urgent"]), only);
    assert!(listed("lawyer", &["--tag", "medical"]).is_empty());
    assert!(listed("lawyer", &["--new"]).is_empty(), "the lawyer just looked");
    as_("lawyer2", &["case", "set", &case, "--tag", "+still-detained"]);
    assert_eq!(listed("lawyer", &["--new"]), only, "new since the lawyer looked");

    // Codename holders, the duress one included: not one workflow event in
    // what the vault shows them, and no way to write one.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let client = Client::new(&url).unwrap();
    for code in [&sub["codename"], &sub["duress_codename"]] {
        let keys = Codename::parse(code.as_str().unwrap()).unwrap().derive("cli.test/log");
        let view = rt.block_on(client.case_log(keys.signing_key(), &case)).unwrap();
        assert!(!view.entries.is_empty());
        for entry in &view.entries {
            let event: Event = serde_json::from_slice(&B64.decode(&entry.event).unwrap()).unwrap();
            assert_ne!(
                event.action,
                Action::WorkflowChanged,
                "a codename holder saw a workflow event"
            );
        }
        let body = WorkflowBody {
            entry: B64.encode(b"anything"),
        };
        let refused = rt
            .block_on(client.change_workflow(keys.signing_key(), &case, &body))
            .unwrap_err();
        assert_eq!(refused.code(), Some("forbidden"), "{refused}");
    }
    let as_submitter = env
        .cmd()
        .env("CUSTOS_CODENAME", sub["duress_codename"].as_str().unwrap())
        .args(["--json", "submitter", "status", "--case", &case])
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&as_submitter.stdout);
    assert!(as_submitter.status.success());
    for word in ["triage", "active", "urgent", "Medical exam", &lawyer2] {
        assert!(
            !said.contains(word),
            "the codename holder's view holds {word:?}: {said}"
        );
    }

    // The auditor checks every event and counts them by action: who and
    // when, never what.
    let audit = env.json(&["--identity", "auditor", "audit"]);
    assert_eq!(audit["failure"], serde_json::Value::Null, "{audit}");
    assert_eq!(audit["actions"]["workflow_changed"], 4, "{audit}");
    let auditor = custos::identity::Identity::load(&env.path("auditor"), || unreachable!()).unwrap();
    let entries = rt.block_on(client.entries(auditor.signing_key(), 0, 1000)).unwrap();
    let all: Vec<Event> = entries
        .entries
        .iter()
        .map(|e| serde_json::from_slice::<Event>(&B64.decode(e).unwrap()).unwrap())
        .collect();
    let workflow: Vec<&Event> = all.iter().filter(|e| e.action == Action::WorkflowChanged).collect();
    assert_eq!(workflow.len(), 4);
    // In the case's lawyers' chain: the case's own chain, whose sequence
    // numbers codename holders see, runs on without a gap where they went.
    assert!(workflow.iter().all(|e| e.case == format!("{case}.lawyers")));
    let seqs: Vec<u64> = all.iter().filter(|e| e.case == case).map(|e| e.seq).collect();
    assert_eq!(seqs, (0..seqs.len() as u64).collect::<Vec<_>>());
    for e in workflow {
        let body = e.signed_body::<WorkflowBody>().unwrap();
        let sealed = B64.decode(&body.entry).unwrap();
        assert!(sealed.starts_with(b"age-encryption.org/v1\n"), "sealed with age");
        for word in [&b"triage"[..], b"urgent", b"Medical"] {
            assert!(
                !sealed.windows(word.len()).any(|w| w == word),
                "the log holds plaintext"
            );
        }
    }
}
