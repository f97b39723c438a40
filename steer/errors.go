package steer

import (
	"errors"
	"fmt"
	"strconv"
)

// A PolicyError reports one problem with a policy: the file and line
// (when the policy came from a file), the field, and what is wrong.
// Load and Compile return all the problems they find at once, joined
// (see [errors.Join]); each is a *PolicyError.
type PolicyError struct {
	File  string // "" for a policy built in code
	Line  int    // 1-based; 0 when unknown
	Field string // the field's path, such as "rules[1].split" or "targets.a.ipv4"
	Err   error
}

func (e *PolicyError) Error() string {
	s := ""
	if e.File != "" {
		s = e.File + ":"
		if e.Line > 0 {
			s += strconv.Itoa(e.Line) + ":"
		}
		s += " "
	}
	if e.Field != "" {
		s += e.Field + ": "
	}
	return s + e.Err.Error()
}

func (e *PolicyError) Unwrap() error { return e.Err }

// Errors a PolicyError may wrap, for errors.Is.
var (
	ErrSyntax        = errors.New("syntax error")
	ErrUnknownField  = errors.New("unknown field")
	ErrUndefined     = errors.New("not defined")
	ErrCountry       = errors.New("bad country or continent")
	ErrEmptyGroup    = errors.New("group is empty")
	ErrExpired       = errors.New("override expired")
	ErrShadowed      = errors.New("rule is shadowed by earlier rules")
	ErrFailover      = errors.New("split breaks MX failover")
	ErrFamily        = errors.New("address family mismatch")
	ErrGate          = errors.New("safety gate")
	ErrUnsupported   = errors.New("not supported by backend")
	ErrMissingData   = errors.New("country data missing")
	ErrOverlap       = errors.New("override adds and removes the same addresses")
	errNoRules       = errors.New("policy has no rules")
	errNoEntryPoints = errors.New("policy has no entry points")
)

// errorList accumulates PolicyErrors against a policy's line table.
type errorList struct {
	file  string
	lines map[string]int
	errs  []error
}

func (l *errorList) add(field string, err error) {
	l.errs = append(l.errs, &PolicyError{File: l.file, Line: l.line(field), Field: field, Err: err})
}

func (l *errorList) addf(field string, kind error, format string, args ...any) {
	l.add(field, fmt.Errorf("%w: "+format, append([]any{kind}, args...)...))
}

// line finds the line of field, or of the nearest enclosing field known.
func (l *errorList) line(field string) int {
	for f := field; f != ""; f = parentField(f) {
		if n, ok := l.lines[f]; ok {
			return n
		}
	}
	return 0
}

func parentField(f string) string {
	for i := len(f) - 1; i >= 0; i-- {
		if f[i] == '.' || f[i] == '[' {
			return f[:i]
		}
	}
	return ""
}

func (l *errorList) err() error { return errors.Join(l.errs...) }
