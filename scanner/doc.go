// Package scanner judges whether a column holds personal data and suggests
// the catalog rule that redacts it.
//
// A column is judged from three things. Its name and its comment, split
// into words whatever the naming style (snake_case, camelCase, kebab-case,
// abbreviations) and looked up in word lists of several languages (en, de,
// fr, es, it, nl, pt): e_mail, emailAddress, correo, telefon, geburtsdatum,
// nachname, cognome, plz. Its type: a boolean is never PII, inet always is.
// And a bounded sample of its values, run through validators rather than
// bare patterns: Luhn and issuer prefixes for cards, mod-97 for IBANs, the
// SSA's ranges for US SSNs, check letters and digits for national IDs,
// E.164 and national phone formats, net/netip for IP addresses, plausible
// ages for dates of birth, embedded first- and family-name lists for
// people's names, street words for addresses, and, inside json and jsonb
// documents, every path is judged the same way by its key and values.
// Free text is read word by word: email addresses, E.164 numbers, national
// phone numbers next to a word such as call, Telefon, appeler or bellen,
// card numbers and IBANs inside prose make it personal data when a few
// distinct ones turn up in at least 1% of the sample (docs/scanner.md).
//
// A finding carries a kind, a confidence, the evidence (which words
// matched, what fraction of how many sampled values passed which check:
// never a value) and a suggested rule that compiles for the column's type.
// Scan samples tables with the Source's bounded Sample, several tables at
// once; Judge is the pure judgement of one column, which the agent's
// schema-drift guard uses too.
package scanner
