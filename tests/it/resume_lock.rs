//! Runs of `custos submit` over the same files at once (a double click, a
//! script filing many complaints): the resume journal is held by one live
//! run at a time, with an OS lock, so the others stop with one clear line
//! instead of racing on its files and on opening one case.

use std::process::Output;

use crate::cli::{served_vault_with_lawyer, Env};

/// The line a run prints when a live run holds the journal it needs.
const BUSY: &str = "another `custos submit` of these files is running (pid ";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The case ids the lawyer can open.
fn cases(env: &Env) -> Vec<String> {
    let listed = env.json(&["--identity", "lawyer", "cases"]);
    listed
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case_id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn sixteen_runs_of_one_submission_at_once_each_file_a_case_or_say_one_is_running() {
    const RUNS: usize = 16;
    let mut env = Env::new();
    let (_server, _) = served_vault_with_lawyer(&mut env);
    std::fs::write(env.path("s.txt"), "They beat me on the 3rd of May.").unwrap();
    let evidence: Vec<u8> = (0..300_000u32).map(|i| (i * 7 + 3) as u8).collect();
    std::fs::write(env.path("photo.jpg"), &evidence).unwrap();
    let runs: Vec<_> = (0..RUNS)
        .map(|_| {
            env.cmd()
                .args(["--json", "submit", "--statement", "s.txt", "--evidence", "photo.jpg"])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<Output> = runs.into_iter().map(|r| r.wait_with_output().unwrap()).collect();

    let mut created = Vec::new();
    let mut busy = 0;
    for out in &outs {
        if out.status.success() {
            let sub: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            created.push(sub["case_id"].as_str().unwrap().to_owned());
            continue;
        }
        let err = stderr(out);
        let lines: Vec<_> = err.lines().collect();
        assert!(
            lines.len() == 1 && lines[0].contains(BUSY) && lines[0].ends_with(')'),
            "a run failed otherwise than by saying another is running: {err}"
        );
        busy += 1;
    }
    assert_eq!(created.len() + busy, RUNS);
    assert!(!created.is_empty(), "no run filed the case");
    created.sort();
    created.dedup();
    assert_eq!(created.len(), RUNS - busy, "two runs reported the same case");
    let mut listed = cases(&env);
    listed.sort();
    assert_eq!(listed, created, "the vault holds exactly the cases the runs reported");
    for (i, case) in created.iter().enumerate() {
        let out = format!("got-{i}");
        env.ok(&["--identity", "lawyer", "get", case, "--out", &out]);
        assert_eq!(std::fs::read(env.path(&format!("{out}/photo.jpg"))).unwrap(), evidence);
    }
    assert!(
        std::fs::read_dir(env.path("config/resume")).unwrap().next().is_none(),
        "every run that ended removed its journal or left none"
    );
    eprintln!(
        "{} of {RUNS} runs filed a case, {busy} said another was running",
        created.len()
    );
}

/// A journal held by a live process stops a second run at once, naming the
/// holder; `--new` files the same files as a separate case meanwhile; once
/// the holder is gone (killed, so the kernel dropped its lock), the same
/// command takes the journal up again.
#[test]
fn a_held_journal_stops_a_second_run_and_new_files_a_separate_case() {
    let mut env = Env::new();
    let (_server, _) = served_vault_with_lawyer(&mut env);
    std::fs::write(env.path("s.txt"), "statement").unwrap();
    let args = ["--json", "submit", "--statement", "s.txt"];
    // Hold the journal these arguments use, as a live run would: a plain
    // run made and finished one, so make it again by the same rule the
    // client uses, from inside this test's process.
    let fingerprint = custos::client::resume::fingerprint(
        "submit",
        &env.server,
        &[custos::client::flows::SubmitFile {
            path: env.path("s.txt"),
            kind: custos::envelope::ObjectKind::Statement,
        }],
    )
    .unwrap();
    let held = custos::client::resume::Journal::open(&env.path("config"), &fingerprint, "submit").unwrap();

    let out = env.run(&args);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert_eq!(
        err.trim_end(),
        format!("error: {BUSY}{})", std::process::id()),
        "one line naming the holder"
    );
    assert!(cases(&env).is_empty(), "the refused run opened no case");

    // A `--new` run killed earlier left its journal (codenames, case key),
    // which nothing resumes: the next `--new` run removes it.
    let dead_name = format!("{fingerprint}-00112233aabbccdd");
    custos::client::resume::Journal::open(&env.path("config"), &dead_name, "submit")
        .unwrap()
        .save(&serde_json::json!({"codename": "left behind"}))
        .unwrap();
    let dead = env.path("config/resume").join(&dead_name);
    assert!(dead.join("state.json").exists());

    let separate: serde_json::Value = serde_json::from_slice(
        &env.ok(&["--json", "submit", "--new", "--statement", "s.txt"])
            .into_bytes(),
    )
    .unwrap();
    assert_eq!(cases(&env), vec![separate["case_id"].as_str().unwrap().to_owned()]);
    assert!(!dead.exists(), "a dead --new run's journal stays");

    drop(held);
    let again: serde_json::Value = serde_json::from_slice(&env.ok(&args).into_bytes()).unwrap();
    assert_ne!(again["case_id"], separate["case_id"]);
    assert_eq!(cases(&env).len(), 2);
}
