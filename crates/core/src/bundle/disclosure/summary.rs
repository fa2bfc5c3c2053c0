//! `summary.html`: a printable summary of a disclosure for the people who
//! receive it, in the lawyer's language (Russian, Kazakh or English): the
//! submitter's account under the Istanbul Protocol's headings, when the
//! form or the statement is disclosed, then each exhibit with its hash,
//! the time the vault received it and its place in the log, then the
//! disclosure's own receipt. One self-contained page (no scripts, no
//! external resources; its Content-Security-Policy forbids them),
//! rendered only from verified data and deterministically, so `verify`
//! can demand that it is exactly what the bundle implies.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde::Serialize;

use super::VerifiedDisclosure;
use crate::bundle::report::esc;
use crate::envelope::ObjectKind;

/// Largest statement or form read into the summary: an account of events
/// is a few pages; a larger file under those kinds is listed, not quoted.
pub(super) const MAX_ACCOUNT_BYTES: u64 = 1024 * 1024;

/// The summary's language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Language {
    /// English.
    #[default]
    En,
    /// Russian.
    Ru,
    /// Kazakh.
    Kk,
}

impl Language {
    /// The language's code, as `--lang` and `<html lang>` spell it.
    pub fn code(self) -> &'static str {
        match self {
            Language::En => "en",
            Language::Ru => "ru",
            Language::Kk => "kk",
        }
    }

    fn strings(self) -> &'static Strings {
        match self {
            Language::En => &EN,
            Language::Ru => &RU,
            Language::Kk => &KK,
        }
    }
}

impl std::str::FromStr for Language {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "en" => Ok(Language::En),
            "ru" => Ok(Language::Ru),
            "kk" => Ok(Language::Kk),
            other => Err(format!("no summary in language {other:?}: choose ru, kk or en")),
        }
    }
}

/// The form's fields in the page's order (the Istanbul Protocol's), as
/// `custos-form-v1` names them: the summary's headings and the desk's
/// questions follow it.
pub const FORM_FIELDS: [&str; 8] = [
    "what_happened",
    "when",
    "where",
    "who",
    "methods",
    "injuries",
    "medical_care",
    "witnesses",
];

/// The submitter's account, as the disclosed files give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Account {
    /// The page's form (`custos-form-v1`): each field's answer, and the
    /// consent to share.
    Form {
        /// Answers by field name (`what_happened`, `when`, ...).
        fields: BTreeMap<String, String>,
        /// Whether the submitter consented to sharing with courts and
        /// oversight bodies, when the form says.
        consent: Option<bool>,
    },
    /// A statement's text (`custos submit --statement`).
    Statement(String),
}

impl Account {
    /// The account a disclosed form's bytes give, if they are a form.
    pub fn from_form(bytes: &[u8]) -> Option<Account> {
        let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
        if v["format"] != "custos-form-v1" {
            return None;
        }
        let fields = v["fields"]
            .as_object()?
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
            .collect();
        Some(Account::Form {
            fields,
            consent: v["consent_to_share"].as_bool(),
        })
    }

    /// The account a disclosed statement's bytes give, if they are text.
    pub fn from_statement(bytes: &[u8]) -> Option<Account> {
        String::from_utf8(bytes.to_vec()).ok().map(Account::Statement)
    }
}

/// The words of the page, in one language. The headings are the
/// submitter's page's (`crates/server/src/web/strings/*.json`), said of
/// the submitter rather than to them.
struct Strings {
    title: &'static str,
    intro: &'static str,
    mode_plain: &'static str,
    mode_age: &'static str,
    /// The Istanbul Protocol's headings, in the form's order: what
    /// happened, when, where, who, methods, injuries, medical care,
    /// witnesses.
    headings: [(&'static str, &'static str); 8],
    not_stated: &'static str,
    no_account: &'static str,
    consent: &'static str,
    yes: &'static str,
    no: &'static str,
    exhibits: &'static str,
    columns: [&'static str; 6],
    /// Kinds, in `ObjectKind`'s order.
    kinds: [&'static str; 6],
    receipt: &'static str,
    receipt_intro: &'static str,
    disclosed_by: &'static str,
    disclosed_to: &'static str,
    disclosed_at: &'static str,
    event: &'static str,
    log: &'static str,
    checkpoint: &'static str,
    proof: &'static str,
    /// After a cleaned copy's file name.
    cleaned_mark: &'static str,
    /// Below the exhibits, when any is a cleaned copy.
    cleaned_note: &'static str,
}

const EN: Strings = Strings {
    title: "Disclosure of evidence",
    intro: "This disclosure was prepared with custos from the vault's custody log. Each exhibit below is exactly the encrypted object the vault logged as received at the time shown. Anyone can check this offline with the log's public key: custos verify THIS_FOLDER --vkey KEY. The page is derived from the bundle, and verify fails if it was changed. The bundle proves that the vault logged these objects and this disclosure under its log key (and its witnesses' cosignatures, if they were required). Who the lawyer is, and that they held the case, rests on that key: only a full custos audit of the vault's log checks it.",
    mode_plain: "The files are in the clear, in the folder files/.",
    mode_age: "The files are in the folder files/, encrypted to the recipient's age key.",
    headings: [
        ("what_happened", "Account of events"),
        ("when", "When"),
        ("where", "Where"),
        ("who", "Who was involved"),
        ("methods", "What was done"),
        ("injuries", "Injuries and symptoms"),
        ("medical_care", "Medical care received"),
        ("witnesses", "Witnesses"),
    ],
    not_stated: "Not stated.",
    no_account: "The submitter's account is not part of this disclosure.",
    consent: "Consent to share with courts and oversight bodies",
    yes: "Yes",
    no: "No",
    exhibits: "Exhibits",
    columns: [
        "File",
        "Kind",
        "SHA-256 of the logged ciphertext",
        "Received (UTC)",
        "Log index",
        "SHA-256 of the log entry",
    ],
    kinds: [
        "account of events",
        "form answers",
        "evidence",
        "medical record",
        "message",
        "reply",
    ],
    receipt: "Receipt of this disclosure",
    receipt_intro: "The disclosure is itself an entry of the log, signed by the lawyer who made it and included in the checkpoint below.",
    disclosed_by: "Disclosed by",
    disclosed_to: "Disclosed to (age recipient)",
    disclosed_at: "Time (UTC)",
    event: "Log entry",
    log: "Log",
    checkpoint: "Checkpoint (size, root)",
    proof: "Inclusion proof (C2SP tlog-proof)",
    cleaned_mark: "(cleaned copy)",
    cleaned_note: "Files marked “cleaned copy” were disclosed as copies from which the lawyer removed identifying metadata (where, on what device or by whom the file was made). Such a copy is not byte for byte the logged object, by design: the lawyer's signed disclosure names its SHA-256, and verify checks the copy against it. The logged ciphertext is included to prove that the original exists and when the vault received it, but not the key that would open the original.",
};

const RU: Strings = Strings {
    title: "Раскрытие доказательств",
    intro: "Это раскрытие подготовлено с помощью custos по журналу хранения хранилища. Каждое доказательство ниже — ровно тот зашифрованный объект, который хранилище записало в журнал как полученный в указанное время. Любой может проверить это без сети с открытым ключом журнала: custos verify ЭТА_ПАПКА --vkey КЛЮЧ. Страница выведена из пакета, и проверка не пройдёт, если её изменили. Пакет доказывает, что хранилище записало эти объекты и это раскрытие в журнал под своим ключом журнала (и с подписями свидетелей, если их требовали). Кто этот юрист и вёл ли он дело, держится на этом ключе: это проверяет только полный аудит журнала хранилища (custos audit).",
    mode_plain: "Файлы лежат в открытом виде в папке files/.",
    mode_age: "Файлы лежат в папке files/, зашифрованные ключом age получателя.",
    headings: [
        ("what_happened", "Рассказ о событиях"),
        ("when", "Когда"),
        ("where", "Где"),
        ("who", "Кто участвовал"),
        ("methods", "Что делали с заявителем"),
        ("injuries", "Травмы и симптомы"),
        ("medical_care", "Полученная медицинская помощь"),
        ("witnesses", "Свидетели"),
    ],
    not_stated: "Не указано.",
    no_account: "Рассказ заявителя не входит в это раскрытие.",
    consent: "Согласие на передачу в суды и надзорные органы",
    yes: "Да",
    no: "Нет",
    exhibits: "Доказательства",
    columns: [
        "Файл",
        "Вид",
        "SHA-256 зашифрованного объекта в журнале",
        "Получено (UTC)",
        "Номер записи в журнале",
        "SHA-256 записи журнала",
    ],
    kinds: [
        "рассказ о событиях",
        "ответы формы",
        "доказательство",
        "медицинский документ",
        "сообщение",
        "ответ",
    ],
    receipt: "Квитанция об этом раскрытии",
    receipt_intro: "Само раскрытие — запись журнала, подписанная юристом, который его сделал, и включённая в контрольную точку ниже.",
    disclosed_by: "Кем раскрыто",
    disclosed_to: "Кому раскрыто (получатель age)",
    disclosed_at: "Время (UTC)",
    event: "Запись журнала",
    log: "Журнал",
    checkpoint: "Контрольная точка (размер, корень)",
    proof: "Доказательство включения (C2SP tlog-proof)",
    cleaned_mark: "(очищенная копия)",
    cleaned_note: "Файлы с пометкой «очищенная копия» раскрыты как копии, из которых юрист удалил идентифицирующие метаданные (где, на каком устройстве или кем создан файл). Такая копия по замыслу не совпадает побайтно с объектом в журнале: подписанное юристом раскрытие называет её SHA-256, и проверка сверяет копию с ним. Зашифрованный объект из журнала приложен, чтобы доказать, что оригинал существует и когда хранилище его получило, но ключа, который открыл бы оригинал, здесь нет.",
};

const KK: Strings = Strings {
    title: "Дәлелдерді ашу",
    intro: "Бұл ашу custos арқылы қойманың сақтау журналы бойынша дайындалды. Төмендегі әр дәлел — қойма журналға көрсетілген уақытта алынды деп жазған дәл сол шифрланған объект. Кез келген адам мұны желісіз, журналдың ашық кілтімен тексере алады: custos verify ОСЫ_ҚАЛТА --vkey КІЛТ. Бет пакеттен шығарылған, оны өзгертсе, тексеру өтпейді. Пакет қойманың осы объектілерді және осы ашуды өз журнал кілтімен (талап етілсе, куәгерлердің қолтаңбаларымен де) журналға жазғанын дәлелдейді. Заңгердің кім екені және істі жүргізгені осы кілтке сүйенеді: оны тек қойма журналының толық аудиті (custos audit) тексереді.",
    mode_plain: "Файлдар files/ қалтасында ашық түрде.",
    mode_age: "Файлдар files/ қалтасында, алушының age кілтімен шифрланған.",
    headings: [
        ("what_happened", "Оқиға туралы баяндау"),
        ("when", "Қашан"),
        ("where", "Қайда"),
        ("who", "Кім қатысты"),
        ("methods", "Арыз берушіге не істелді"),
        ("injuries", "Жарақаттар мен белгілер"),
        ("medical_care", "Алынған медициналық көмек"),
        ("witnesses", "Куәгерлер"),
    ],
    not_stated: "Көрсетілмеген.",
    no_account: "Арыз берушінің баяндауы бұл ашуға кірмейді.",
    consent: "Соттарға және қадағалау органдарына беруге келісім",
    yes: "Иә",
    no: "Жоқ",
    exhibits: "Дәлелдер",
    columns: [
        "Файл",
        "Түрі",
        "Журналдағы шифрланған объектінің SHA-256",
        "Алынды (UTC)",
        "Журналдағы жазба нөмірі",
        "Журнал жазбасының SHA-256",
    ],
    kinds: [
        "оқиға туралы баяндау",
        "нысан жауаптары",
        "дәлел",
        "медициналық құжат",
        "хабарлама",
        "жауап",
    ],
    receipt: "Осы ашу туралы түбіртек",
    receipt_intro: "Ашудың өзі — оны жасаған заңгер қол қойған және төмендегі бақылау нүктесіне енгізілген журнал жазбасы.",
    disclosed_by: "Кім ашты",
    disclosed_to: "Кімге ашылды (age алушысы)",
    disclosed_at: "Уақыты (UTC)",
    event: "Журнал жазбасы",
    log: "Журнал",
    checkpoint: "Бақылау нүктесі (өлшемі, түбірі)",
    proof: "Енгізу дәлелі (C2SP tlog-proof)",
    cleaned_mark: "(тазартылған көшірме)",
    cleaned_note: "«Тазартылған көшірме» деп белгіленген файлдар заңгер сәйкестендіретін метадеректерді (файл қайда, қай құрылғыда немесе кім жасағанын) алып тастаған көшірмелер ретінде ашылды. Мұндай көшірме әдейі журналдағы объектімен байт бойынша сәйкес келмейді: заңгер қол қойған ашу оның SHA-256 мәнін атайды, тексеру көшірмені соған салыстырады. Журналдағы шифрланған объект түпнұсқаның бар екенін және қойма оны қашан алғанын дәлелдеу үшін қоса берілген, бірақ түпнұсқаны ашатын кілт мұнда жоқ.",
};

fn kind_name(s: &Strings, kind: ObjectKind) -> &'static str {
    let i = match kind {
        ObjectKind::Statement => 0,
        ObjectKind::Form => 1,
        ObjectKind::Evidence => 2,
        ObjectKind::Medical => 3,
        ObjectKind::Message => 4,
        ObjectKind::Reply => 5,
    };
    s.kinds[i]
}

/// The account's sections, under the Istanbul Protocol's headings.
fn account_html(s: &Strings, account: Option<&Account>) -> String {
    let mut out = String::new();
    let answer = |text: &str| {
        if text.trim().is_empty() {
            format!("<p class=\"none\">{}</p>", esc(s.not_stated))
        } else {
            format!("<p class=\"answer\">{}</p>", esc_lines(text.trim_end(), "<br>\n"))
        }
    };
    match account {
        None => {
            let _ = writeln!(out, "<p class=\"none\">{}</p>", esc(s.no_account));
        }
        Some(Account::Statement(text)) => {
            let (_, heading) = s.headings[0];
            let _ = writeln!(out, "<h2>{}</h2>\n{}", esc(heading), answer(text));
        }
        Some(Account::Form { fields, consent }) => {
            for (field, heading) in s.headings {
                let text = fields.get(field).map(String::as_str).unwrap_or("");
                let _ = writeln!(out, "<h2>{}</h2>\n{}", esc(heading), answer(text));
            }
            if let Some(c) = consent {
                let _ = writeln!(
                    out,
                    "<h2>{}</h2>\n<p class=\"answer\">{}</p>",
                    esc(s.consent),
                    esc(if *c { s.yes } else { s.no })
                );
            }
        }
    }
    out
}

/// [`esc`], keeping line breaks (which `esc` turns into spaces, as it does
/// every control character) as `newline`, and tabs as spaces.
fn esc_lines(text: &str, newline: &str) -> String {
    text.split('\n')
        .map(|line| esc(&line.replace('\t', "    ")))
        .collect::<Vec<_>>()
        .join(newline)
}

/// The page, for a verified disclosure and the account its files give.
pub fn render(v: &VerifiedDisclosure, account: Option<&Account>) -> String {
    let s = v.language.strings();
    let mut rows = String::new();
    for o in &v.objects {
        let kind = o.kind().map_or("", |k| kind_name(s, k));
        // Only a cleaned copy's row changes: a summary without any is
        // rendered as it always was, and older bundles still verify.
        let mut file = super::disclosed_file(&o.name, v.disclosure.plaintext);
        if o.cleaned_sha256.is_some() {
            file = format!("{file} {}", s.cleaned_mark);
        }
        let _ = writeln!(
            rows,
            "<tr><td>{}</td><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
            esc(&file),
            esc(kind),
            esc(&o.sha256),
            esc(&o.stored.event.time),
            o.stored.index,
            esc(&crate::custody::event_hash(&o.stored.bytes)),
        );
    }
    let head: String = s.columns.iter().map(|c| format!("<th>{}</th>", esc(c))).collect();
    let cp = &v.checkpoint;
    let d = &v.disclosed;
    format!(
        r#"<!doctype html>
<html lang="{lang}">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<meta name="referrer" content="no-referrer">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}: {case}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 60em; }}
.answer {{ white-space: normal; border-left: 3px solid #999; padding-left: 0.8em; }}
.none {{ color: #555; font-style: italic; }}
table {{ border-collapse: collapse; margin-top: 1em; }}
td, th {{ border: 1px solid #ccc; padding: 0.3em 0.6em; text-align: left; vertical-align: top; font-size: 0.9em; }}
code, pre {{ word-break: break-all; white-space: pre-wrap; font-size: 0.85em; }}
dt {{ font-weight: bold; margin-top: 0.5em; }}
@media print {{ body {{ margin: 0; }} }}
</style>
</head>
<body>
<h1>{title}: <code>{case}</code></h1>
<p>{intro}</p>
<p>{mode}</p>
{account}<h2>{exhibits}</h2>
<table>
<thead><tr>{head}</tr></thead>
<tbody>
{rows}</tbody>
</table>
{cleaned}<h2>{receipt}</h2>
<p>{receipt_intro}</p>
<dl>
<dt>{by_label}</dt><dd>{by_name} (<code>{by}</code>)</dd>
<dt>{to_label}</dt><dd><code>{to}</code></dd>
<dt>{at_label}</dt><dd>{at}</dd>
<dt>{event_label}</dt><dd>{index} (SHA-256 <code>{event_sha}</code>)</dd>
<dt>{log_label}</dt><dd><code>{origin}</code></dd>
<dt>{cp_label}</dt><dd>{size}, <code>{root}</code></dd>
</dl>
<h3>{proof_label}</h3>
<pre>{proof}</pre>
</body>
</html>
"#,
        lang = v.language.code(),
        title = esc(s.title),
        case = esc(&v.case_id),
        intro = esc(s.intro),
        mode = esc(if v.disclosure.plaintext {
            s.mode_plain
        } else {
            s.mode_age
        }),
        account = account_html(s, account),
        cleaned = if v.objects.iter().any(|o| o.cleaned_sha256.is_some()) {
            format!("<p>{}</p>\n", esc(s.cleaned_note))
        } else {
            String::new()
        },
        exhibits = esc(s.exhibits),
        receipt = esc(s.receipt),
        receipt_intro = esc(s.receipt_intro),
        by_label = esc(s.disclosed_by),
        by_name = esc(&v.lawyer.name),
        by = esc(&d.event.actor),
        to_label = esc(s.disclosed_to),
        to = esc(&v.disclosure.recipient),
        at_label = esc(s.disclosed_at),
        at = esc(&d.event.time),
        event_label = esc(s.event),
        index = d.index,
        event_sha = esc(&crate::custody::event_hash(&d.bytes)),
        log_label = esc(s.log),
        origin = esc(&cp.origin),
        cp_label = esc(s.checkpoint),
        size = cp.size,
        root = crate::bundle::derived::b64(&cp.root),
        proof_label = esc(s.proof),
        proof = esc_lines(v.disclosed_proof.trim_end(), "\n"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_language_names_every_heading_in_the_forms_order() {
        for lang in [Language::En, Language::Ru, Language::Kk] {
            let fields: Vec<&str> = lang.strings().headings.iter().map(|(f, _)| *f).collect();
            assert_eq!(fields, FORM_FIELDS);
            assert_eq!(lang.code().parse::<Language>().unwrap(), lang);
        }
        assert!("de".parse::<Language>().is_err());
    }

    #[test]
    fn a_form_is_read_and_its_answers_escaped() {
        let form = br#"{"format":"custos-form-v1","language":"ru","fields":{"what_happened":"<b>beaten</b>\nthen held","when":""},"consent_to_share":true}"#;
        let account = Account::from_form(form).unwrap();
        let html = account_html(&EN, Some(&account));
        assert!(html.contains("&lt;b&gt;beaten&lt;/b&gt;<br>\nthen held"), "{html}");
        assert!(html.contains("Not stated."), "{html}");
        assert!(html.contains("Yes"), "{html}");
        assert!(!html.contains("<b>"));
        assert!(Account::from_form(b"{\"format\":\"other\"}").is_none());
    }
}
