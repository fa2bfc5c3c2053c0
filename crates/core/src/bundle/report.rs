//! `report.html`: the case's custody timeline as a picture, for people who
//! would rather look than read JSON. One self-contained page: inline SVG and
//! CSS, no scripts, no external resources (its own Content-Security-Policy
//! forbids them). Rendered only from verified data, and deterministically,
//! so `verify` can demand that the file is exactly what the bundle implies.

use std::collections::HashMap;
use std::fmt::Write;

use super::Verified;
use crate::custody::{Action, VAULT_CASE};

/// Horizontal space per event, in SVG units.
const STEP: usize = 120;
/// Height of one actor's lane.
const LANE: usize = 56;
/// Left margin for lane names.
const LEFT: usize = 230;
/// Top margin.
const TOP: usize = 40;

/// Minimal HTML escaping for text and attribute values (control
/// characters become spaces). Also used by the web page.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn colour(action: Action) -> &'static str {
    match action {
        Action::CaseCreated => "#1b7837",
        Action::ObjectStored => "#2166ac",
        Action::EnvelopeGranted => "#762a83",
        Action::EnvelopeRevoked => "#c51b7d",
        Action::ObjectAccessed => "#e08214",
        Action::CaseExported => "#4d4d4d",
        Action::Withdrawn => "#b2182b",
        _ => "#5e3c99",
    }
}

fn action_name(action: Action) -> String {
    serde_json::to_value(action)
        .ok()
        .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
        .unwrap_or_default()
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Who each key id is, from the registry events in the bundle.
fn actor_names(v: &Verified) -> HashMap<String, String> {
    let mut names = HashMap::new();
    for e in &v.events {
        if e.event.case == VAULT_CASE && e.event.action == Action::PrincipalAdded {
            let d = &e.event.details;
            if let (Some(id), Some(name), Some(role)) = (d["key_id"].as_str(), d["name"].as_str(), d["role"].as_str()) {
                names.insert(id.to_owned(), format!("{name} ({role})"));
            }
        }
    }
    names
}

/// The page.
pub fn render(v: &Verified) -> String {
    let names = actor_names(v);
    let case_events: Vec<_> = v.events.iter().filter(|e| e.event.case == v.case_id).collect();
    // Both submitter keys (the case is opened with either), from the signed
    // case creation; which one is the real codename's is nobody's business.
    let submitters: Vec<String> = case_events
        .iter()
        .find(|e| e.event.action == Action::CaseCreated)
        .and_then(|e| e.event.request.as_ref()?.body_bytes())
        .and_then(|b| serde_json::from_slice::<crate::wire::CreateCase>(&b).ok())
        .map(|c| {
            c.submitter_keys
                .iter()
                .filter_map(|k| crate::identity::parse_verifying_key(&k.verifying_key).ok())
                .map(|k| crate::identity::KeyId::of(&k).to_string())
                .collect()
        })
        .unwrap_or_default();
    // Who an actor is: the submitter, a registered principal's name and
    // role, or (for an unknown key) nothing but the key id.
    let who = |actor: &str| -> String {
        if submitters.iter().any(|s| s == actor) {
            "submitter (codename key)".to_owned()
        } else {
            names
                .get(actor)
                .cloned()
                .unwrap_or_else(|| "unregistered key".to_owned())
        }
    };
    let label = |actor: &str| format!("{}, key {actor}", who(actor));
    let mut lanes: Vec<String> = Vec::new();
    for e in &case_events {
        if !lanes.contains(&e.event.actor) {
            lanes.push(e.event.actor.clone());
        }
    }
    let width = LEFT + STEP * case_events.len().max(1) + 40;
    let height = TOP + LANE * lanes.len().max(1) + 70;

    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-labelledby="tl-title" width="{width}" height="{height}" viewBox="0 0 {width} {height}">
<title id="tl-title">Custody timeline of case {case}: {n} events</title>
"#,
        case = esc(&v.case_id),
        n = case_events.len()
    );
    for (i, actor) in lanes.iter().enumerate() {
        let y = TOP + LANE * i + LANE / 2;
        let _ = write!(
            svg,
            r##"<line x1="{LEFT}" y1="{y}" x2="{x2}" y2="{y}" stroke="#ccc" stroke-dasharray="4 4"/>
<text x="{tx}" y="{ty}" text-anchor="end" font-size="12">{name}<tspan x="{tx}" dy="14" font-size="10" fill="#555">key {actor}</tspan></text>
"##,
            x2 = width - 20,
            tx = LEFT - 10,
            ty = y - 2,
            name = esc(&who(actor)),
            actor = esc(actor)
        );
    }
    let axis_y = TOP + LANE * lanes.len().max(1) + 10;
    let _ = writeln!(
        svg,
        r##"<line x1="{LEFT}" y1="{axis_y}" x2="{x2}" y2="{axis_y}" stroke="#333"/>"##,
        x2 = width - 20
    );
    let mut prev: Option<(usize, usize)> = None;
    for (i, e) in case_events.iter().enumerate() {
        let x = LEFT + STEP * i + STEP / 2;
        let lane = lanes.iter().position(|a| *a == e.event.actor).unwrap_or(0);
        let y = TOP + LANE * lane + LANE / 2;
        if let Some((px, py)) = prev {
            let _ = writeln!(
                svg,
                r##"<line x1="{px}" y1="{py}" x2="{x}" y2="{y}" stroke="#999" stroke-width="1.5"/>"##
            );
        }
        prev = Some((x, y));
        let objects: Vec<&str> = e.event.objects.iter().map(|o| short(o)).collect();
        let _ = write!(
            svg,
            r##"<g><title>#{seq} {action} at {time} by {who}{objs}</title>
<circle cx="{x}" cy="{y}" r="9" fill="{fill}"/>
<text x="{x}" y="{ly}" text-anchor="middle" font-size="11">{action}</text>
<text x="{x}" y="{oy}" text-anchor="middle" font-size="9" fill="#555">{obj}</text>
<text x="{x}" y="{ty}" text-anchor="middle" font-size="9" fill="#333">{date}</text>
<text x="{x}" y="{ty2}" text-anchor="middle" font-size="9" fill="#333">{clock}</text>
</g>
"##,
            seq = e.event.seq,
            action = esc(&action_name(e.event.action)),
            time = esc(&e.event.time),
            who = esc(&label(&e.event.actor)),
            objs = if objects.is_empty() {
                String::new()
            } else {
                format!(" on {}", esc(&objects.join(", ")))
            },
            fill = colour(e.event.action),
            ly = y - 14,
            oy = y + 22,
            obj = esc(objects.first().copied().unwrap_or("")),
            ty = axis_y + 16,
            ty2 = axis_y + 30,
            date = esc(e.event.time.get(..10).unwrap_or("")),
            clock = esc(e.event.time.get(11..19).unwrap_or("")),
        );
    }
    svg.push_str("</svg>");

    let mut rows = String::new();
    for e in &case_events {
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            e.event.seq,
            e.index,
            esc(&e.event.time),
            esc(&label(&e.event.actor)),
            esc(&action_name(e.event.action)),
            esc(&e.event.objects.join(" "))
        );
    }
    let cp = &v.checkpoint;
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Custody report: case {case}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; }}
.verdict {{ border: 2px solid #1b7837; background: #e7f5ea; padding: 0.8em 1em; border-radius: 6px; }}
.scroll {{ overflow-x: auto; border: 1px solid #ddd; padding: 0.5em; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; font-size: 0.9em; }}
code {{ word-break: break-all; }}
</style>
</head>
<body>
<h1>Custody report: case <code>{case}</code></h1>
<p class="verdict"><strong>Verified.</strong> Every event below is included in the log
<code>{origin}</code> at the checkpoint of size {size} with root hash <code>{root}</code>,
signed by the log key. Both chains are complete and linked, every actor's signature
checks, and all {objects} encrypted objects match their SHA-256. This page was made by
<code>custos export --report</code>; <code>custos verify</code> re-derives it from the
bundle and fails if it was changed. Check the bundle yourself rather than trusting this page.</p>
<h2>Timeline</h2>
<div class="scroll">
{svg}
</div>
<h2>Events</h2>
<table>
<thead><tr><th>Seq</th><th>Log index</th><th>Time (UTC)</th><th>Who</th><th>Action</th><th>Objects (SHA-256 of ciphertext)</th></tr></thead>
<tbody>
{rows}</tbody>
</table>
</body>
</html>
"#,
        case = esc(&v.case_id),
        origin = esc(&cp.origin),
        size = cp.size,
        root = super::derived::b64(&cp.root),
        objects = v.objects.len(),
    )
}

#[cfg(test)]
mod tests {
    use super::esc;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            esc("<script>\"a\" & 'b'</script>"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;"
        );
    }
}
