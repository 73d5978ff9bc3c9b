package resetflow

// Values the external tests (package resetflow_test) compare against; they are
// unexported because nothing outside the package needs them.
const (
	DefaultMaxRequests   = defaultMaxRequests
	PurposeReset         = purposeReset
	ActionRequestReset   = actionRequestReset
	ActionResetThrottled = actionResetThrottled
	ActionInvite         = actionInvite
	ActionResetPassword  = actionResetPassword
	ActionSetPassword    = actionSetPassword
	ActionFailedSuffix   = actionFailedSuffix
	EventThrottled       = eventThrottled
	EventMailSent        = eventMailSent
	EventMailFailed      = eventMailFailed
	EventReset           = eventReset
	EventDropped         = eventDropped
	MsgSent              = msgSent
	MsgInvalidLink       = msgInvalidLink
	MsgMismatch          = msgMismatch
	MailOK               = mailOK
	MailError            = mailError
	MailDisabled         = mailDisabled
)
