package idm_test

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/c3-pro/idm/idm"
)

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// TestAPI checks the status and message of every endpoint's answers in
// API.md over real HTTP, on every store kind (memstore, boltstore and
// mongostore on a MongoDB-wire server), each case on a store seeded with the
// same fixture.
func TestAPI(t *testing.T) {
	long := func(n int) string { return strings.Repeat("x", n) }
	bigExtra := `{"sssid": "S-9", "name": "N", "bday": "2000-01-01", "notes": "` + long(4000) + `", "more": "` + long(4000) +
		`", "even_more": "` + long(4000) + `", "most": "` + long(4000) + `", "too_much": "` + long(1000) + `"}`
	deep := strings.Repeat("[", 40) + strings.Repeat("]", 40)
	tests := []apiCase{
		// Everywhere.
		{name: "NoToken", method: "GET", target: "/subject", want: 401, wantMessage: "Authorization Required"},
		{name: "BadToken", method: "GET", target: "/subject", header: []string{"Authorization", "JWT nope"}, want: 401, wantMessage: "Invalid token"},
		{name: "BearerScheme", method: "GET", target: "/subject", header: []string{"Authorization", "bearer " + staffToken}, want: 200},
		{name: "UnknownPath", method: "GET", target: "/nothing/here", principal: "staff", want: 404, wantMessage: "Not Found"},
		{name: "WrongMethod", method: "DELETE", target: "/subject", principal: "staff", want: 405, wantMessage: "Method Not Allowed"},
		{name: "WrongMethodEstablish", method: "GET", target: "/establish", want: 405, wantMessage: "Method Not Allowed"},

		// POST /subject.
		{name: "CreateSubject", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "Dora", "bday": "2001-02-03T04:05:06+01:00", "favourite": {"colour": "green"}}`, want: 201},
		{name: "CreateSubjectNoSSSID", method: "POST", target: "/subject", principal: "staff", body: `{"name": "Dora", "bday": "2001-02-03"}`, want: 400, wantMessage: "must at least provide `sssid`"},
		{name: "CreateSubjectEmptySSSID", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "", "name": "Dora"}`, want: 400, wantMessage: "must at least provide `sssid`"},
		{name: "CreateSubjectTakenBeforeName", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-1"}`, want: 409, wantMessage: "this SSSID is already taken"},
		{name: "CreateSubjectNoName", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "bday": "2001-02-03"}`, want: 400, wantMessage: "missing or empty `name`"},
		{name: "CreateSubjectEmptyBday", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "Dora", "bday": ""}`, want: 400, wantMessage: "missing or empty `bday`"},
		{name: "CreateSubjectBadBday", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "Dora", "bday": "2001-02-30"}`, want: 400, wantMessage: "invalid date in `bday`: \"2001-02-30\" is not an RFC 3339 date or date-time with offset"},
		{name: "CreateSubjectBdayYear", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "Dora", "bday": "1850-02-03"}`, want: 400, wantMessage: "invalid date in `bday`: \"1850-02-03\", the year must be from 1900 to 2100"},
		{name: "CreateSubjectDateNoOffset", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "Dora", "bday": "2001-02-03", "date_consented": "2024-05-01T12:00:00"}`, want: 400, wantMessage: "invalid date in `date_consented`: \"2024-05-01T12:00:00\" is not an RFC 3339 date or date-time with offset"},
		{name: "CreateSubjectSSSIDNotString", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": 12, "name": "Dora", "bday": "2001-02-03"}`, want: 400, wantMessage: `field "sssid" must be a string, not a number`},
		{name: "CreateSubjectSSSIDTooLong", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "` + long(129) + `", "name": "Dora", "bday": "2001-02-03"}`, want: 400, wantMessage: `field "sssid" is longer than 128 bytes`},
		{name: "CreateSubjectNameTooLong", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "` + long(257) + `", "bday": "2001-02-03"}`, want: 400, wantMessage: `field "name" is longer than 256 bytes`},
		{name: "CreateSubjectEmailTooLong", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "D", "bday": "2001-02-03", "email": "` + long(4097) + `"}`, want: 400, wantMessage: `field "email" is longer than 4096 bytes`},
		{name: "CreateSubjectInternalKey", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "D", "bday": "2001-02-03", "_id": "x"}`, want: 400, wantMessage: `invalid field name "_id": use 1 to 64 characters from A-Z, a-z, 0-9, _ and -, not starting with _`},
		{name: "CreateSubjectBadKey", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "name": "D", "bday": "2001-02-03", "a.b": 1}`, want: 400, wantMessage: `invalid field name "a.b": use 1 to 64 characters from A-Z, a-z, 0-9, _ and -, not starting with _`},
		{name: "CreateSubjectExtraTooBig", method: "POST", target: "/subject", principal: "staff", body: bigExtra, want: 400, wantMessage: "the additional fields take 17062 bytes, more than the limit of 16384"},
		{name: "CreateSubjectDuplicateKey", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "sssid": "S-8"}`, want: 400, wantMessage: `field "sssid" appears more than once`},
		{name: "CreateSubjectMalformed", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9",`, want: 400, wantMessage: "malformed JSON: unexpected end of input"},
		{name: "CreateSubjectArray", method: "POST", target: "/subject", principal: "staff", body: `["S-9"]`, want: 400, wantMessage: "the request body must be a JSON object"},
		{name: "CreateSubjectTrailing", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9"} {}`, want: 400, wantMessage: "malformed JSON: unexpected data after the JSON value"},
		{name: "CreateSubjectDeep", method: "POST", target: "/subject", principal: "staff", body: `{"sssid": "S-9", "x": ` + deep + `}`, want: 400, wantMessage: "JSON nested deeper than 32 levels"},
		{name: "CreateSubjectTooLarge", method: "POST", target: "/subject", principal: "staff", body: `{"x": "` + long(1<<20) + `"}`, want: 413, wantMessage: "request body too large (limit 1048576 bytes)"},
		{name: "CreateSubjectNotJSON", method: "POST", target: "/subject", principal: "staff", body: `sssid=S-9`, header: []string{"Content-Type", "application/x-www-form-urlencoded"}, want: 415, wantMessage: "the request body must be JSON (Content-Type: application/json)"},
		{name: "CreateSubjectEmptyBody", method: "POST", target: "/subject", principal: "staff", want: 400, wantMessage: "request body is empty"},

		// GET /subject.
		{name: "ListSubjects", method: "GET", target: "/subject?offset=0&perpage=10&ordercol=name&orderdir=DESC&search=&status=2&page=3", principal: "staff", want: 200},
		{name: "ListSubjectsPerPageZero", method: "GET", target: "/subject?perpage=0", principal: "staff", want: 400, wantMessage: `query parameter "perpage" must be an integer from 1 to 1000, not "0"`},
		{name: "ListSubjectsPerPageTooBig", method: "GET", target: "/subject?perpage=1001", principal: "staff", want: 400, wantMessage: `query parameter "perpage" must be an integer from 1 to 1000, not "1001"`},
		{name: "ListSubjectsOffsetNegative", method: "GET", target: "/subject?offset=-1", principal: "staff", want: 400, wantMessage: `query parameter "offset" must be an integer from 0 to 1073741824, not "-1"`},
		{name: "ListSubjectsOffsetNotNumber", method: "GET", target: "/subject?offset=ten", principal: "staff", want: 400, wantMessage: `query parameter "offset" must be an integer from 0 to 1073741824, not "ten"`},
		{name: "ListSubjectsOrderCol", method: "GET", target: "/subject?ordercol=password", principal: "staff", want: 400, wantMessage: `query parameter "ordercol" must be one of [sssid name bday email created changed date_invited date_consented date_enrolled date_withdrawn], not "password"`},
		{name: "ListSubjectsOrderDir", method: "GET", target: "/subject?orderdir=up", principal: "staff", want: 400, wantMessage: `query parameter "orderdir" must be asc or desc, not "up"`},
		{name: "ListSubjectsRepeated", method: "GET", target: "/subject?offset=1&offset=2", principal: "staff", want: 400, wantMessage: `query parameter "offset" given more than once`},
		{name: "ListSubjectsBadEscape", method: "GET", target: "/subject?search=%zz", principal: "staff", want: 400, wantMessage: "malformed query string"},

		// GET /subject/{sssid}.
		{name: "GetSubject", method: "GET", target: "/subject/S-1", principal: "staff", want: 200},
		{name: "GetSubjectUnknown", method: "GET", target: "/subject/S-404", principal: "staff", want: 404, wantMessage: "Not Found"},

		// PUT /subject/{sssid}.
		{name: "UpdateSubject", method: "PUT", target: "/subject/S-2", principal: "staff", body: `{"sssid": "S-2", "name": "Bob Renamed", "date_consented": "2024-05-01"}`, want: 204},
		{name: "UpdateSubjectNoSSSID", method: "PUT", target: "/subject/S-2", principal: "staff", body: `{"name": "Bob Renamed"}`, want: 400, wantMessage: "must provide the subject's `sssid`"},
		{name: "UpdateSubjectOtherSSSID", method: "PUT", target: "/subject/S-2", principal: "staff", body: `{"sssid": "S-1"}`, want: 409, wantMessage: "SSSID cannot be changed"},
		{name: "UpdateSubjectUnknown", method: "PUT", target: "/subject/S-404", principal: "staff", body: `{"sssid": "S-404"}`, want: 404, wantMessage: "Not Found"},
		{name: "UpdateSubjectConsentedAgain", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_consented": "2024-06-01"}`, want: 409, wantMessage: "Subject has already been consented"},
		{name: "UpdateSubjectConsentedSame", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_consented": "2024-05-01T12:00:00+02:00"}`, want: 204},
		{name: "UpdateSubjectConsentedSameInstant", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_consented": "2024-05-01T10:00:00Z"}`, want: 204},
		{name: "UpdateSubjectConsentCleared", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_consented": null}`, want: 409, wantMessage: "Subject has already been consented"},
		{name: "UpdateSubjectInvitedAgain", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_invited": "2024-04-02"}`, want: 409, wantMessage: "Subject has already been invited"},
		{name: "UpdateSubjectEnrolledAgain", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_enrolled": "2020-01-01"}`, want: 409, wantMessage: "Subject has already been enrolled"},
		{name: "UpdateSubjectWithdrawnAgain", method: "PUT", target: "/subject/S-3", principal: "staff", body: `{"sssid": "S-3", "date_withdrawn": "2024-07-01"}`, want: 409, wantMessage: "Subject has already been withdrawn"},
		{name: "UpdateSubjectEmptyName", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "name": ""}`, want: 400, wantMessage: "`name` may not be emptied"},
		{name: "UpdateSubjectNullBday", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "bday": null}`, want: 400, wantMessage: "`bday` may not be emptied"},
		{name: "UpdateSubjectBadDateBeforeConflict", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "date_consented": "2024-06-01", "bday": "17.05.1980"}`, want: 400, wantMessage: "invalid date in `bday`: \"17.05.1980\" is not an RFC 3339 date or date-time with offset"},
		{name: "UpdateSubjectServerFieldsIgnored", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": "S-1", "created": "1999-01-01T00:00:00Z", "changed": 5}`, want: 204},
		{name: "UpdateSubjectMalformed", method: "PUT", target: "/subject/S-1", principal: "staff", body: `{"sssid": }`, want: 400, wantMessage: "malformed JSON at byte 11"},

		// POST /subject/{sssid}/links.
		{name: "CreateLink", method: "POST", target: "/subject/S-1/links", principal: "staff", want: 201},
		{name: "CreateLinkUnknownSubject", method: "POST", target: "/subject/S-404/links", principal: "staff", want: 404, wantMessage: "Not Found"},
		{name: "CreateLinkNotConsented", method: "POST", target: "/subject/S-2/links", principal: "staff", want: 412, wantMessage: "Subject has not yet been consented"},

		// GET /subject/{sssid}/links.
		{name: "ListLinks", method: "GET", target: "/subject/S-1/links", principal: "staff", want: 200},
		{name: "ListLinksNone", method: "GET", target: "/subject/S-2/links", principal: "staff", want: 200},
		{name: "ListLinksUnknownSubject", method: "GET", target: "/subject/S-404/links", principal: "staff", want: 404, wantMessage: "Not Found"},

		// GET /link/{jti}.
		{name: "GetLink", method: "GET", target: "/link/{minted}", principal: "staff", want: 200},
		{name: "GetLinkUnknown", method: "GET", target: "/link/0123456789abcdef01234567", principal: "staff", want: 404, wantMessage: "Not Found"},
		{name: "GetLinkMalformedID", method: "GET", target: "/link/not-an-id", principal: "staff", want: 404, wantMessage: "Not Found"},

		// PUT /link/{jti}.
		{name: "UpdateLinkWithdraw", method: "PUT", target: "/link/{linked}", principal: "staff", body: `{"withdrawn_on": "2025-01-01T09:00:00+01:00"}`, want: 204},
		{name: "UpdateLinkSameIdentity", method: "PUT", target: "/link/{minted}", principal: "staff", body: `{"_id": "{minted}", "sub": "S-1", "iss": "` + linkIssuer + `", "aud": "` + linkIssuer + `", "algorithm": "HS256", "created": "x"}`, want: 204},
		{name: "UpdateLinkAudAfterJWT", method: "PUT", target: "/link/{minted}", principal: "staff", body: `{"aud": "idm"}`, want: 409, wantMessage: "`aud` cannot be changed"},
		{name: "UpdateLinkSub", method: "PUT", target: "/link/{fresh}", principal: "staff", body: `{"sub": "S-3"}`, want: 409, wantMessage: "`sub` cannot be changed"},
		{name: "UpdateLinkExp", method: "PUT", target: "/link/{minted}", principal: "staff", body: `{"exp": 1}`, want: 409, wantMessage: "`exp` cannot be changed"},
		{name: "UpdateLinkExpNotNumber", method: "PUT", target: "/link/{minted}", principal: "staff", body: `{"exp": "soon"}`, want: 400, wantMessage: `field "exp" must be an integer (Unix time)`},
		{name: "UpdateLinkLinkedToChange", method: "PUT", target: "/link/{linked}", principal: "staff", body: `{"linked_to": "P-1"}`, want: 409, wantMessage: "`linked_to` cannot be changed once set"},
		{name: "UpdateLinkLinkedToSame", method: "PUT", target: "/link/{linked}", principal: "staff", body: `{"linked_to": "P-0", "linked_system": "urn:example:patients"}`, want: 204},
		{name: "UpdateLinkSystemChange", method: "PUT", target: "/link/{linked}", principal: "staff", body: `{"linked_system": "urn:other"}`, want: 409, wantMessage: "`linked_system` cannot be changed once the link is established"},
		{name: "UpdateLinkSystemWithoutLinkedTo", method: "PUT", target: "/link/{fresh}", principal: "staff", body: `{"linked_system": "urn:example:patients"}`, want: 400, wantMessage: "`linked_system` needs `linked_to`"},
		{name: "UpdateLinkLinkByStaff", method: "PUT", target: "/link/{fresh}", principal: "staff", body: `{"linked_to": "P-7", "linked_system": "urn:example:patients"}`, want: 204},
		{name: "UpdateLinkLinkRevoked", method: "PUT", target: "/link/{revoked}", principal: "staff", body: `{"linked_to": "P-7"}`, want: 409, wantMessage: "this link has been revoked"},
		{name: "UpdateLinkBadDate", method: "PUT", target: "/link/{linked}", principal: "staff", body: `{"withdrawn_on": "yesterday"}`, want: 400, wantMessage: "invalid date in `withdrawn_on`: \"yesterday\" is not an RFC 3339 date or date-time with offset"},
		{name: "UpdateLinkUnknownField", method: "PUT", target: "/link/{linked}", principal: "staff", body: `{"jwt": "x"}`, want: 400, wantMessage: `unknown field "jwt"`},
		{name: "UpdateLinkUnknown", method: "PUT", target: "/link/0123456789abcdef01234567", principal: "staff", body: `{}`, want: 404, wantMessage: "Not Found"},

		// DELETE /link/{jti}.
		{name: "RevokeLink", method: "DELETE", target: "/link/{minted}", principal: "staff", want: 204},
		{name: "RevokeLinkAgain", method: "DELETE", target: "/link/{revoked}", principal: "staff", want: 204},
		{name: "RevokeLinkEstablished", method: "DELETE", target: "/link/{linked}", principal: "staff", want: 409, wantMessage: "this link has already been established"},
		{name: "RevokeLinkUnknown", method: "DELETE", target: "/link/0123456789abcdef01234567", principal: "staff", want: 404, wantMessage: "Not Found"},

		// GET /link/{jti}/jwt.
		{name: "LinkJWTMint", method: "GET", target: "/link/{fresh}/jwt", principal: "staff", header: []string{"Accept", "application/jwt"}, want: 200},
		{name: "LinkJWTAgain", method: "GET", target: "/link/{minted}/jwt", principal: "staff", want: 200},
		{name: "LinkJWTExpiredRenewed", method: "GET", target: "/link/{expired}/jwt", principal: "staff", want: 200},
		{name: "LinkJWTRevoked", method: "GET", target: "/link/{revoked}/jwt", principal: "staff", want: 409, wantMessage: "this link has been revoked"},
		{name: "LinkJWTMigrated", method: "GET", target: "/link/{migrated}/jwt", principal: "staff", want: 409, wantMessage: "this link's token was issued before the migration and cannot be shown again; create a new link"},
		{name: "LinkJWTUnknown", method: "GET", target: "/link/0123456789abcdef01234567/jwt", principal: "staff", want: 404, wantMessage: "Not Found"},
		{name: "LinkJWTNoToken", method: "GET", target: "/link/{fresh}/jwt", want: 401, wantMessage: "Authorization Required"},
		{name: "LinkQRMint", method: "GET", target: "/link/{fresh}/qr.png", principal: "staff", header: []string{"Accept", "image/png"}, want: 200},
		{name: "LinkQRAgain", method: "GET", target: "/link/{minted}/qr.png", principal: "staff", want: 200},
		{name: "LinkQRRevoked", method: "GET", target: "/link/{revoked}/qr.png", principal: "staff", want: 409, wantMessage: "this link has been revoked"},
		{name: "LinkQRUnknown", method: "GET", target: "/link/0123456789abcdef01234567/qr.png", principal: "staff", want: 404, wantMessage: "Not Found"},
		{name: "LinkQRNoToken", method: "GET", target: "/link/{fresh}/qr.png", want: 401, wantMessage: "Authorization Required"},

		// POST /establish.
		{name: "Establish", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, body: patientJSON("P-123"), want: 204},
		{name: "EstablishJWTScheme", method: "POST", target: "/establish", header: []string{"Authorization", "JWT {jwt:minted}"}, body: patientJSON("P-123"), want: 204},
		{name: "EstablishFHIRMediaType", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}", "Content-Type", "application/fhir+json"}, body: patientJSON("P-123"), want: 204},
		{name: "EstablishOldFHIRMediaType", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}", "Content-Type", "application/json+fhir"}, body: patientJSON("P-123"), want: 204},
		{name: "EstablishMigrated", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:migrated}"}, body: patientJSON("P-123"), want: 204},
		{name: "EstablishNoHeader", method: "POST", target: "/establish", body: patientJSON("P-123"), want: 401, wantMessage: "Unauthorized"},
		{name: "EstablishBasic", method: "POST", target: "/establish", header: []string{"Authorization", "Basic dXNlcjpwYXNz"}, body: patientJSON("P-123"), want: 406, wantMessage: "only `Bearer` and `JWT` type authorization is acceptable"},
		{name: "EstablishNoTokenAfterScheme", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer"}, body: patientJSON("P-123"), want: 403, wantMessage: "Forbidden"},
		{name: "EstablishForged", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}x"}, body: patientJSON("P-123"), want: 403, wantMessage: "Forbidden"},
		{name: "EstablishStaffToken", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer " + staffToken}, body: patientJSON("P-123"), want: 403, wantMessage: "Forbidden"},
		{name: "EstablishRevoked", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:revoked}"}, body: patientJSON("P-123"), want: 403, wantMessage: "Forbidden"},
		{name: "EstablishAlreadyLinked", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:linked}"}, body: `not even JSON`, want: 409, wantMessage: "this link has already been established"},
		{name: "EstablishExpired", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:expired}"}, body: `not even JSON`, want: 403, wantMessage: "this link has expired"},
		{name: "EstablishNotPatient", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, body: `{"resourceType": "Observation"}`, want: 406, wantMessage: "you must provide a FHIR `Patient` resource"},
		{name: "EstablishNotJSON", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, body: `<Patient/>`, want: 406, wantMessage: "you must provide a FHIR `Patient` resource"},
		{name: "EstablishNoBody", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, want: 406, wantMessage: "you must provide a FHIR `Patient` resource"},
		{name: "EstablishNoIdentifier", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, body: `{"resourceType": "Patient", "identifier": []}`, want: 406, wantMessage: "you must provide a value in the Patient resource's first `identifier` element"},
		{name: "EstablishEmptyIdentifierValue", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, body: `{"resourceType": "Patient", "identifier": [{"system": "s", "value": ""}]}`, want: 406, wantMessage: "you must provide a value in the Patient resource's first `identifier` element"},
		{name: "EstablishTooLarge", method: "POST", target: "/establish", header: []string{"Authorization", "Bearer {jwt:minted}"}, body: `{"resourceType": "Patient", "x": "` + long(1<<20) + `"}`, want: 413, wantMessage: "request body too large (limit 1048576 bytes)"},

		// GET /subject/{sssid}/audits.
		{name: "SubjectAudits", method: "GET", target: "/subject/S-1/audits", principal: "staff", want: 200},
		{name: "SubjectAuditsUnknown", method: "GET", target: "/subject/S-404/audits", principal: "staff", want: 404, wantMessage: "Not Found"},

		// GET /audit.
		{name: "Audits", method: "GET", target: "/audit?actor=" + staffName + "&since=2026-01-01&until=2027-01-01T00:00:00Z&offset=0&perpage=5", principal: "admin", want: 200},
		{name: "AuditsNotAdmin", method: "GET", target: "/audit?since=garbage", principal: "staff", want: 403, wantMessage: "Forbidden"},
		{name: "AuditsBadSince", method: "GET", target: "/audit?since=yesterday", principal: "admin", want: 400, wantMessage: `query parameter "since" must be an RFC 3339 date or date-time, not "yesterday"`},
		{name: "AuditsBadPerPage", method: "GET", target: "/audit?perpage=5000", principal: "admin", want: 400, wantMessage: `query parameter "perpage" must be an integer from 1 to 1000, not "5000"`},
	}
	run := func(t *testing.T, env *testEnv, fx fixture, tt apiCase) {
		t.Helper()
		headers := append([]string(nil), tt.header...)
		switch tt.principal {
		case "staff":
			headers = append(headers, "Authorization", "JWT "+staffToken)
		case "admin":
			headers = append(headers, "Authorization", "JWT "+adminToken)
		}
		for i := range headers {
			headers[i] = fx.expand(headers[i])
		}
		r := env.do(t, tt.method, fx.expand(tt.target), fx.expand(tt.body), headers...)
		if r.status != tt.want {
			t.Fatalf("status %d, want %d; body %.300s", r.status, tt.want, r.body)
		}
		if tt.wantMessage != "" || r.status >= 400 {
			if got := r.message(); got != tt.wantMessage {
				t.Errorf("message %q, want %q", got, tt.wantMessage)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
		}
		switch {
		case r.status == http.StatusUnauthorized && r.header.Get("WWW-Authenticate") == "":
			t.Error("401 without WWW-Authenticate")
		case r.status == http.StatusMethodNotAllowed && r.header.Get("Allow") == "":
			t.Error("405 without Allow")
		case r.status == http.StatusNoContent && len(r.body) != 0:
			t.Errorf("204 with a body: %s", r.body)
		}
	}
	onEachStore(t, func(t *testing.T, newStore newStoreFunc) {
		// Cases that must change nothing (every error answer, and reads)
		// share one seeded store, which is checked after each of them: a
		// case that changed it fails, and the next ones get a freshly
		// seeded store. Every other case gets a fresh store of its own.
		// Seeding a store on a MongoDB-wire server takes a while.
		seeded := func() (*testEnv, fixture, string) {
			env := newTestEnvOn(t, newStore(t))
			fx := env.seed(t)
			return env, fx, env.state(t)
		}
		shared, sharedFx, state := seeded()
		for _, tt := range tests {
			if !tt.changesNothing() {
				t.Run(tt.name, func(t *testing.T) {
					env := newTestEnvOn(t, newStore(t))
					run(t, env, env.seed(t), tt)
				})
				continue
			}
			changed := false
			t.Run(tt.name, func(t *testing.T) {
				defer func() {
					if after := shared.state(t); after != state {
						changed = true
						t.Errorf("the request changed the stored data, which a %d answer must not:\nbefore %s\nafter  %s", tt.want, state, after)
					}
				}()
				run(t, shared, sharedFx, tt)
			})
			if changed {
				shared, sharedFx, state = seeded()
			}
		}
	})
}

// apiCase is a case of [TestAPI]: a request and the answer it must get.
type apiCase struct {
	name           string
	method, target string
	body           string
	principal      string   // "staff", "admin" or "" for none
	header         []string // name/value pairs
	want           int
	wantMessage    string
}

// changesNothing reports whether the case must leave the stored data as it
// is: error answers, and reads (GETs other than the JWT mint).
func (c apiCase) changesNothing() bool {
	return c.want >= 400 || (c.method == "GET" && !strings.HasSuffix(c.target, "/jwt") && !strings.HasSuffix(c.target, "/qr.png"))
}

// TestNewHandlerValidates checks that NewHandler refuses incomplete
// configurations.
func TestNewHandlerValidates(t *testing.T) {
	env := newTestEnv(t)
	full := func() idm.Config {
		return idm.Config{Store: env.store, LinkTokens: env.tokens, Authenticate: testAuth().Require, QRCode: qrCode}
	}
	tests := []struct {
		name   string
		change func(*idm.Config)
	}{
		{"NoStore", func(c *idm.Config) { c.Store = nil }},
		{"NoLinkTokens", func(c *idm.Config) { c.LinkTokens = nil }},
		{"NoAuthenticate", func(c *idm.Config) { c.Authenticate = nil }},
		{"NoQRCode", func(c *idm.Config) { c.QRCode = nil }},
		{"NegativeBodyLimit", func(c *idm.Config) { c.MaxBodyBytes = -1 }},
		{"NegativeLinkTTL", func(c *idm.Config) { c.LinkTTL = -1 }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := full()
			tt.change(&c)
			if h, err := idm.NewHandler(c); err == nil || h != nil {
				t.Fatalf("NewHandler = %v, %v; want an error", h, err)
			}
		})
	}
	if _, err := idm.NewHandler(full()); err != nil {
		t.Fatalf("NewHandler with a full config: %v", err)
	}
}

// TestStaffRoutesFailClosed checks that the staff routes answer 401 when the
// authentication middleware lets a request through without a principal, and
// that /establish is not behind the middleware.
func TestStaffRoutesFailClosed(t *testing.T) {
	passthrough := func(next http.Handler) http.Handler { return next }
	env := newTestEnv(t, func(c *envConfig) { c.Authenticate = passthrough })
	for _, rt := range []struct{ method, target string }{
		{"POST", "/subject"}, {"GET", "/subject"}, {"GET", "/subject/S-1"}, {"PUT", "/subject/S-1"},
		{"POST", "/subject/S-1/links"}, {"GET", "/subject/S-1/links"}, {"GET", "/subject/S-1/audits"},
		{"GET", "/link/0123456789abcdef01234567"}, {"PUT", "/link/0123456789abcdef01234567"},
		{"DELETE", "/link/0123456789abcdef01234567"}, {"GET", "/link/0123456789abcdef01234567/jwt"}, {"GET", "/link/0123456789abcdef01234567/qr.png"},
		{"GET", "/audit"},
	} {
		t.Run(rt.method+rt.target, func(t *testing.T) {
			r := env.do(t, rt.method, rt.target, `{}`, "Authorization", "JWT "+staffToken)
			if r.status != http.StatusUnauthorized || r.message() != "Authorization Required" {
				t.Fatalf("got %d %s, want 401 Authorization Required", r.status, r.body)
			}
		})
	}
	var guarded []string
	guard := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			guarded = append(guarded, r.URL.Path)
			http.Error(w, "guarded", http.StatusTeapot)
		})
	}
	env = newTestEnv(t, func(c *envConfig) { c.Authenticate = guard })
	if r := env.do(t, "POST", "/establish", patientJSON("P-1")); r.status != http.StatusUnauthorized {
		t.Errorf("POST /establish without a token: %d %s, want the handler's own 401", r.status, r.body)
	}
	if r := env.do(t, "GET", "/subject", ""); r.status != http.StatusTeapot {
		t.Errorf("GET /subject: %d, want the middleware's answer", r.status)
	}
	if len(guarded) != 1 || guarded[0] != "/subject" {
		t.Errorf("middleware saw %v, want only /subject", guarded)
	}
}

// TestInstall checks that Install registers the routes on a host's mux, with
// the same behaviour, under a path prefix.
func TestInstall(t *testing.T) {
	env := newTestEnv(t)
	h, err := idm.NewHandler(idm.Config{Store: env.store, LinkTokens: env.tokens, Authenticate: testAuth().Require, QRCode: qrCode})
	if err != nil {
		t.Fatal(err)
	}
	inner := idm.NewMux()
	h.Install(inner.Handle)
	host := http.NewServeMux()
	host.Handle("/idm/", http.StripPrefix("/idm", inner))
	hosted := *env
	hosted.srv = httptest.NewServer(host)
	t.Cleanup(hosted.srv.Close)
	env = &hosted

	if r := env.do(t, "POST", "/idm/subject", `{"sssid": "S-1", "name": "A", "bday": "1980-01-01"}`, "Authorization", "JWT "+staffToken); r.status != http.StatusCreated {
		t.Fatalf("POST /idm/subject: %d %s", r.status, r.body)
	}
	if r := env.do(t, "GET", "/idm/subject/S-1", "", "Authorization", "JWT "+staffToken); r.status != http.StatusOK {
		t.Fatalf("GET /idm/subject/S-1: %d %s", r.status, r.body)
	}
	if r := env.do(t, "GET", "/idm/subject/S-1", ""); r.status != http.StatusUnauthorized {
		t.Fatalf("GET /idm/subject/S-1 without a token: %d %s", r.status, r.body)
	}
	if r := env.do(t, "PATCH", "/idm/subject/S-1", "", "Authorization", "JWT "+staffToken); r.status != http.StatusMethodNotAllowed || r.message() != "Method Not Allowed" {
		t.Fatalf("PATCH: %d %s", r.status, r.body)
	}
}
