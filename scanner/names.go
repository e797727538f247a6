package scanner

import (
	"strings"
	"unicode"
)

// PII kinds a finding can have.
const (
	KindEmail      = "email"
	KindPhone      = "phone"
	KindFirstName  = "first_name"
	KindLastName   = "last_name"
	KindFullName   = "full_name"
	KindUsername   = "username"
	KindSSN        = "ssn"
	KindNationalID = "national_id"
	KindCard       = "card"
	KindIBAN       = "iban"
	KindBirthDate  = "birth_date"
	KindAddress    = "address"
	KindPostcode   = "postcode"
	KindCity       = "city"
	KindIP         = "ip"
	KindPassword   = "password"
	KindFreeText   = "free_text" // prose with emails, phone, card or IBAN numbers inside
	KindJSON       = "json"      // a json/jsonb column with PII at some paths
)

// words maps a word, or words run together (e_mail → email, date_of_birth
// → dateofbirth), with accents folded, to the kind it names.
var words = wordKinds()

// stems name a kind when a word starts with them: telefonnummer,
// geburtsort, strassenname.
var stems = []struct{ stem, kind string }{
	{"email", KindEmail}, {"telefon", KindPhone}, {"telephon", KindPhone}, {"phone", KindPhone},
	{"geburts", KindBirthDate}, {"birth", KindBirthDate}, {"strasse", KindAddress}, {"street", KindAddress},
	{"postleitzahl", KindPostcode}, {"addr", KindAddress}, {"passw", KindPassword}, {"kreditkart", KindCard}, {"handynummer", KindPhone},
}

// wordKinds builds words: the names of each kind in the languages the
// scanner knows, run together and accent-folded as tokens leaves them.
func wordKinds() map[string]string {
	words := map[string]string{}
	add := func(kind string, ws ...string) {
		for _, w := range ws {
			words[w] = kind
		}
	}
	add(KindEmail, "email", "mail", "emailaddress", "mailaddress", "emailadresse", "mailadresse", "emailadres",
		"correo", "correoelectronico", "courriel", "adresseemail", "adressemail", "postaelettronica", "eposta", "epost")
	add(KindPhone, "phone", "phonenumber", "phoneno", "telephone", "tel", "telno", "telefon", "telefono", "telefone",
		"telefoon", "telephonenumber", "mobile", "mobil", "mobilnummer", "mobilephone", "movil", "cell", "cellphone",
		"cellular", "handy", "fax", "portable", "cellulare", "celular", "gsm", "msisdn", "tlf", "telefonnummer",
		"numerotelephone", "numerodetelephone", "numerotelefono", "telefoonnummer", "contactnumber", "telemovel", "telemovil")
	add(KindFirstName, "firstname", "givenname", "forename", "fname", "vorname", "prenom", "nombre", "nome",
		"voornaam", "primeironome", "christianname", "middlename")
	add(KindLastName, "lastname", "surname", "familyname", "lname", "nachname", "familienname", "nom", "apellido",
		"apellidos", "cognome", "achternaam", "sobrenome", "apelido", "maidenname")
	add(KindFullName, "fullname", "displayname", "nomcomplet", "nombrecompleto", "volledigenaam", "nomecompleto",
		"vollername", "cardholder", "cardholdername", "accountholder", "contactperson", "ansprechpartner")
	add(KindUsername, "username", "login", "userlogin", "loginname", "screenname", "benutzername",
		"nomeutente", "nombredeusuario")
	add(KindSSN, "ssn", "socialsecurity", "socialsecuritynumber", "socialsecurityno", "sozialversicherungsnummer",
		"svnr", "nss", "numerosecuritesociale", "securitesociale", "nir", "bsn", "burgerservicenummer")
	add(KindNationalID, "nationalid", "nationalidentity", "nationalidnumber", "idnumber", "passport", "passportnumber",
		"passportno", "reisepass", "reisepassnummer", "personalausweis", "ausweisnummer", "taxid", "tin", "steuerid",
		"steueridentifikationsnummer", "steuernummer", "dni", "nie", "nif", "personnummer", "idcard", "driverslicense",
		"driverlicense", "driverslicence", "drivinglicence", "licensenumber", "fuhrerschein", "cartaidentita",
		"codicefiscale", "cni", "cpf", "nino", "nin", "vatid")
	add(KindCard, "creditcard", "creditcardnumber", "cardnumber", "cardno", "ccnumber", "ccnum", "cc", "pan",
		"card", "kreditkarte", "kartennummer", "tarjeta", "numerotarjeta", "tarjetadecredito", "cartecredit",
		"cartebancaire", "numerocarte", "cartadicredito", "cartao", "cartaodecredito", "debitcard")
	add(KindIBAN, "iban", "bankaccount", "accountnumber", "bankaccountnumber", "kontonummer", "rib", "numerocuenta",
		"cuentabancaria", "rekeningnummer", "contocorrente", "contabancaria")
	add(KindBirthDate, "dob", "birthdate", "dateofbirth", "birthday", "born", "bornon", "geburtsdatum", "geburtstag",
		"gebdat", "gebdatum", "fechanacimiento", "fechadenacimiento", "nacimiento", "datenaissance",
		"datedenaissance", "naissance", "datadinascita", "datanascita", "nascita", "datadenascimento",
		"nascimento", "geboortedatum", "verjaardag")
	add(KindAddress, "address", "streetaddress", "addr", "addressline", "addressline1", "addressline2", "adresse",
		"strasse", "anschrift", "calle", "direccion", "domicilio", "rue", "indirizzo", "straat", "adres", "morada",
		"endereco", "rua", "hausnummer", "housenumber", "homeaddress", "billingaddress", "shippingaddress",
		"mailingaddress", "postaladdress", "wohnadresse", "woonadres", "huisnummer")
	add(KindPostcode, "postcode", "postalcode", "zip", "zipcode", "plz", "postleitzahl", "codigopostal",
		"codepostal", "cep", "postcodegebied")
	add(KindCity, "city", "town", "ort", "wohnort", "stadt", "ciudad", "ville", "citta", "woonplaats", "cidade",
		"localidad", "localita", "plaats", "hometown", "birthplace", "geburtsort", "lieudenaissance")
	add(KindIP, "ip", "ipaddress", "ipaddr", "ipv4", "ipv6", "remoteaddr", "remoteaddress", "remoteip", "clientip",
		"sourceip", "srcip", "lastip", "loginip", "xforwardedfor", "ipadresse", "direccionip", "adresseip")
	add(KindPassword, "password", "passwd", "pwd", "passwort", "kennwort", "contrasena", "motdepasse", "wachtwoord",
		"senha", "passwordhash", "passwordsalt", "secret", "apikey", "apisecret", "accesstoken", "refreshtoken",
		"secretkey", "privatekey", "otpsecret", "totpsecret", "apitoken", "authtoken", "sessiontoken")
	return words
}

// negative words next to a kind's word say the column is about the thing,
// not the thing: email_verified, phone_count, address_id, card_type.
var negative = map[string]bool{
	"id": true, "ids": true, "status": true, "state": true, "count": true, "cnt": true, "verified": true,
	"confirmed": true, "type": true, "kind": true, "flag": true, "enabled": true, "optin": true, "opt": true,
	"template": true, "sent": true, "at": true, "on": true, "hash": true, "hashed": true, "sha": true,
	"sha256": true, "md5": true, "domain": true, "format": true, "pattern": true, "regex": true, "valid": true,
	"is": true, "has": true, "allowed": true, "consent": true, "preference": true, "preferences": true,
	"provider": true, "brand": true, "network": true, "country": true, "prefix": true, "app": true,
	"version": true, "os": true, "device": true, "platform": true, "model": true, "mac": true, "expiry": true,
	"expires": true, "exp": true, "changed": true, "updated": true, "created": true, "reset": true,
	"policy": true, "length": true, "strength": true, "attempts": true, "required": true,
	"range": true, "region": true, "zone": true, "fee": true, "limit": true, "balance": true,
	"currency": true, "bounce": true, "bounced": true, "campaign": true, "list": true, "lists": true,
	"subject": true, "body": true, "size": true, "color": true, "colour": true, "year": true, "month": true,
}

// personContext words before a bare "name" make it a person's name:
// customer_name, contact_name; without one, "name" is judged by its values.
var personContext = map[string]bool{
	"customer": true, "client": true, "contact": true, "person": true, "employee": true, "staff": true,
	"patient": true, "member": true, "holder": true, "owner": true, "recipient": true, "sender": true,
	"guardian": true, "parent": true, "beneficiary": true, "driver": true, "passenger": true, "guest": true,
	"kunde": true, "kunden": true, "cliente": true, "buyer": true, "seller": true, "applicant": true,
	"student": true, "teacher": true, "doctor": true, "nurse": true, "emergency": true, "spouse": true,
	"mother": true, "father": true, "child": true, "tenant": true, "user": true, "account": true,
	"billing": true, "shipping": true, "subscriber": true, "author": true, "signer": true,
}

// nameHit is what a column's name or comment says.
type nameHit struct {
	kind string
	word string // the word that matched, for the evidence
}

// fold lowers a rune and strips the accents of Latin letters, so that
// Straße, téléphone and Größe match their word lists.
func fold(b *strings.Builder, r rune) {
	r = unicode.ToLower(r)
	switch r {
	case 'ß':
		b.WriteString("ss")
		return
	case 'à', 'á', 'â', 'ã', 'ä', 'å':
		r = 'a'
	case 'ç':
		r = 'c'
	case 'è', 'é', 'ê', 'ë':
		r = 'e'
	case 'ì', 'í', 'î', 'ï':
		r = 'i'
	case 'ñ':
		r = 'n'
	case 'ò', 'ó', 'ô', 'õ', 'ö', 'ø':
		r = 'o'
	case 'ù', 'ú', 'û', 'ü':
		r = 'u'
	case 'ý', 'ÿ':
		r = 'y'
	}
	b.WriteRune(r)
}

// tokens splits an identifier or a sentence into lower-case words with
// accents folded: emailAddress → email address, E-Mail → e mail,
// customer_DOB → customer dob, HTTPServerIP → http server ip, addressLine1
// → address line1.
func tokens(s string) []string {
	var out []string
	var b strings.Builder
	flush := func() {
		if b.Len() > 0 {
			out = append(out, b.String())
			b.Reset()
		}
	}
	rs := []rune(s)
	for i, r := range rs {
		switch {
		case unicode.IsUpper(r):
			// A capital starts a word after a lower-case letter or digit, and
			// ends an acronym before a capital followed by lower case.
			if i > 0 && (unicode.IsLower(rs[i-1]) || unicode.IsDigit(rs[i-1]) ||
				(unicode.IsUpper(rs[i-1]) && i+1 < len(rs) && unicode.IsLower(rs[i+1]))) {
				flush()
			}
			fold(&b, r)
		case unicode.IsLetter(r) || unicode.IsDigit(r):
			fold(&b, r)
		case r == '\'':
		default:
			flush()
		}
	}
	flush()
	return out
}

// judgeName looks a column name up in the word lists: the longest run of
// up to four words that names a kind wins (ip_address is ip, not address;
// email_address is email). A negative word outside the run (email_verified,
// address_id) cancels the hit; a bare "name" counts only after a person
// word (customer_name).
func judgeName(name string) (nameHit, bool) {
	ts := tokens(name)
	best, bi, bj := nameHit{}, -1, -1
	for i := range ts {
		for j := min(len(ts), i+4); j > i; j-- {
			w := strings.Join(ts[i:j], "")
			kind, ok := words[w]
			if !ok && j == i+1 {
				kind, ok = stem(w)
			}
			if ok && (bi < 0 || j-i >= bj-bi) { // ties: the later word, the head noun (last_login_ip)
				best, bi, bj = nameHit{kind, strings.Join(ts[i:j], "_")}, i, j
			}
		}
	}
	if bi < 0 {
		for i, t := range ts {
			if (t == "name" || t == "names") && i > 0 && personContext[ts[i-1]] {
				best, bi, bj = nameHit{KindFullName, ts[i-1] + "_" + t}, i-1, i+1
				break
			}
		}
	}
	if bi < 0 {
		return nameHit{}, false
	}
	for i, t := range ts {
		if (i < bi || i >= bj) && negative[t] {
			return nameHit{}, false
		}
	}
	return best, true
}

func stem(w string) (string, bool) {
	for _, s := range stems {
		if strings.HasPrefix(w, s.stem) {
			return s.kind, true
		}
	}
	return "", false
}

// judgeComment looks the words of a column comment up: runs of up to four
// words, longest first, skipping words of two letters or fewer on their
// own (a comment is prose: "id", "of" and "cc" say nothing there).
func judgeComment(comment string) (nameHit, bool) {
	ts := tokens(comment)
	best, n := nameHit{}, 0
	for i := range ts {
		for j := min(len(ts), i+4); j > i; j-- {
			w := strings.Join(ts[i:j], "")
			if len(w) <= 3 && j == i+1 {
				continue
			}
			if kind, ok := words[w]; ok && j-i > n {
				best, n = nameHit{kind, strings.Join(ts[i:j], " ")}, j-i
			}
		}
	}
	return best, n > 0
}
