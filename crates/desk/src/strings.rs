//! The desk's words in Russian, Kazakh and English: one JSON table per
//! language and area (`strings/LANG/AREA.json`), the approach of the
//! submitter's page, so a translator edits text and never code. The form's
//! questions are the submitter's page's own tables, so a lawyer reads each
//! answer under the question exactly as the submitter saw it.

use std::collections::HashMap;
use std::sync::OnceLock;

use custos_core::bundle::disclosure::Language;

/// The areas' tables, per language, in the order of [`LANGUAGES`].
const TABLES: [[&str; 4]; 3] = [
    [
        include_str!("strings/en/common.json"),
        include_str!("strings/en/lawyer.json"),
        include_str!("strings/en/auditor.json"),
        include_str!("strings/en/admin.json"),
    ],
    [
        include_str!("strings/ru/common.json"),
        include_str!("strings/ru/lawyer.json"),
        include_str!("strings/ru/auditor.json"),
        include_str!("strings/ru/admin.json"),
    ],
    [
        include_str!("strings/kk/common.json"),
        include_str!("strings/kk/lawyer.json"),
        include_str!("strings/kk/auditor.json"),
        include_str!("strings/kk/admin.json"),
    ],
];

/// The submitter's page's tables (served by the vault from the same
/// files), for the form's questions.
const PAGE_TABLES: [&str; 3] = [
    include_str!("../../server/src/web/strings/en.json"),
    include_str!("../../server/src/web/strings/ru.json"),
    include_str!("../../server/src/web/strings/kk.json"),
];

/// The desk's languages, in the order of the tables and of the switch.
pub(crate) const LANGUAGES: [Language; 3] = [Language::En, Language::Ru, Language::Kk];

pub(crate) use custos_core::bundle::disclosure::summary::FORM_FIELDS;

/// One language's words.
#[derive(Debug)]
pub(crate) struct Strings {
    desk: HashMap<String, String>,
    page: HashMap<String, String>,
}

fn index(language: Language) -> usize {
    LANGUAGES.iter().position(|l| *l == language).expect("a desk language")
}

fn all() -> &'static [Strings; 3] {
    static ALL: OnceLock<[Strings; 3]> = OnceLock::new();
    ALL.get_or_init(|| {
        let load = |i: usize| {
            let mut desk = HashMap::new();
            for table in TABLES[i] {
                let t: HashMap<String, String> = serde_json::from_str(table).expect("a string table is JSON");
                desk.extend(t);
            }
            let page = serde_json::from_str(PAGE_TABLES[i]).expect("the page's table is JSON");
            Strings { desk, page }
        };
        [load(0), load(1), load(2)]
    })
}

/// The words of `language`.
pub(crate) fn of(language: Language) -> &'static Strings {
    &all()[index(language)]
}

impl Strings {
    /// The text of `key`. A missing key is a bug (a test renders every
    /// page in every language): debug builds stop, release builds show
    /// the key.
    pub(crate) fn get<'a>(&'a self, key: &'a str) -> &'a str {
        match self.desk.get(key) {
            Some(s) => s,
            None => {
                debug_assert!(false, "no desk string {key:?}");
                key
            }
        }
    }

    /// The text of `key` with each `{name}` replaced.
    pub(crate) fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut s = self.get(key).to_owned();
        for (name, value) in values {
            s = s.replace(&format!("{{{name}}}"), value);
        }
        s
    }

    /// A question of the submitter's form, and its hint, as the page
    /// showed them.
    pub(crate) fn question<'a>(&'a self, field: &'a str) -> (&'a str, Option<&'a str>) {
        let q = self.page.get(field).map(String::as_str).unwrap_or(field);
        (q, self.page.get(&format!("{field}_hint")).map(String::as_str))
    }

    /// The page's consent sentence, as the submitter read it.
    pub(crate) fn consent_question(&self) -> &str {
        self.page.get("consent").map(String::as_str).unwrap_or("consent")
    }

    /// The language's own name, for the switch.
    pub(crate) fn language_name(&self) -> &str {
        self.page.get("language_name").map(String::as_str).unwrap_or("")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_language_has_every_key_and_no_empty_text() {
        let en = of(Language::En);
        for language in LANGUAGES {
            let s = of(language);
            let mut missing: Vec<_> = en.desk.keys().filter(|k| !s.desk.contains_key(*k)).collect();
            missing.extend(s.desk.keys().filter(|k| !en.desk.contains_key(*k)));
            assert!(
                missing.is_empty(),
                "{}: keys in one language only: {missing:?}",
                language.code()
            );
            let empty: Vec<_> = s.desk.iter().filter(|(_, v)| v.trim().is_empty()).collect();
            assert!(empty.is_empty(), "{}: empty strings {empty:?}", language.code());
            for field in FORM_FIELDS {
                assert_ne!(
                    s.question(field).0,
                    field,
                    "{}: the page has no question {field}",
                    language.code()
                );
            }
        }
    }

    #[test]
    fn placeholders_are_the_same_in_every_language() {
        let names = |s: &str| {
            let mut v: Vec<String> = s
                .split('{')
                .skip(1)
                .filter_map(|p| p.split_once('}').map(|(n, _)| n.to_owned()))
                .collect();
            v.sort();
            v
        };
        let en = of(Language::En);
        for language in LANGUAGES {
            for (k, v) in &of(language).desk {
                assert_eq!(names(v), names(en.get(k)), "{}: {k}", language.code());
            }
        }
    }
}
