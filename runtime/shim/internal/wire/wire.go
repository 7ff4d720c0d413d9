// Package wire is a tiny JSON reader and writer for the few fixed messages
// that berth-shim exchanges with berthd (shimapi). It exists so that the
// shim links neither encoding/json nor reflect: both are large, and every
// page of the shim's binary is part of the resident memory of every
// container. berthd keeps using encoding/json on the same messages; the
// output here matches encoding/json's byte for byte (HTML-safe string
// escaping, field order as declared), and the input side accepts what
// json.Unmarshal accepts for these messages.
package wire

import (
	"errors"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the type of a JSON value.
type Kind byte

// Kinds of values.
const (
	Null Kind = iota
	Bool
	Number
	String
	Array
	Object
)

// Value is one JSON value as found in the input: Raw is its text.
type Value struct {
	Kind Kind
	Raw  []byte
}

var errSyntax = errors.New("invalid JSON")

// ErrType is returned by the Value accessors for a value of the wrong type.
var ErrType = errors.New("JSON value of the wrong type")

// ParseObject parses b, which must hold exactly one JSON object (surrounded
// by white space at most), calling f for each member in order. Nested
// values are validated and passed raw.
func ParseObject(b []byte, f func(key string, v Value) error) error {
	p := parser{b: b}
	p.ws()
	if err := p.object(f); err != nil {
		return err
	}
	p.ws()
	if p.i != len(p.b) {
		return errors.New("invalid JSON: data after the top-level value")
	}
	return nil
}

type parser struct {
	b []byte
	i int
}

func (p *parser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *parser) object(f func(string, Value) error) error {
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return errSyntax
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return nil
	}
	for {
		p.ws()
		start := p.i
		if err := p.str(); err != nil {
			return err
		}
		key, ok := unquote(p.b[start:p.i])
		if !ok {
			return errSyntax
		}
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return errSyntax
		}
		p.i++
		p.ws()
		v, err := p.value()
		if err != nil {
			return err
		}
		if f != nil {
			if err := f(key, v); err != nil {
				return err
			}
		}
		if done, err := p.next('}'); done || err != nil {
			return err
		}
	}
}

// next consumes what follows a member or element: a ',' (done false) or
// the closing byte (done true).
func (p *parser) next(closing byte) (done bool, err error) {
	p.ws()
	if p.i >= len(p.b) {
		return false, errSyntax
	}
	switch p.b[p.i] {
	case ',':
		p.i++
		return false, nil
	case closing:
		p.i++
		return true, nil
	}
	return false, errSyntax
}

func (p *parser) value() (Value, error) {
	if p.i >= len(p.b) {
		return Value{}, errSyntax
	}
	start := p.i
	var k Kind
	var err error
	switch c := p.b[p.i]; {
	case c == '{':
		k, err = Object, p.object(nil)
	case c == '[':
		k, err = Array, p.array()
	case c == '"':
		k, err = String, p.str()
	case c == 't':
		k, err = Bool, p.lit("true")
	case c == 'f':
		k, err = Bool, p.lit("false")
	case c == 'n':
		k, err = Null, p.lit("null")
	case c == '-' || (c >= '0' && c <= '9'):
		k, err = Number, p.num()
	default:
		err = errSyntax
	}
	return Value{Kind: k, Raw: p.b[start:p.i]}, err
}

func (p *parser) array() error {
	p.i++ // '['
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return nil
	}
	for {
		p.ws()
		if _, err := p.value(); err != nil {
			return err
		}
		if done, err := p.next(']'); done || err != nil {
			return err
		}
	}
}

func (p *parser) lit(s string) error {
	if len(p.b)-p.i < len(s) || string(p.b[p.i:p.i+len(s)]) != s {
		return errSyntax
	}
	p.i += len(s)
	return nil
}

func digits(b []byte, i int) int {
	for i < len(b) && b[i] >= '0' && b[i] <= '9' {
		i++
	}
	return i
}

func (p *parser) num() error {
	b, i := p.b, p.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		i = digits(b, i)
	default:
		return errSyntax
	}
	if i < len(b) && b[i] == '.' {
		j := digits(b, i+1)
		if j == i+1 {
			return errSyntax
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(b, i)
		if j == i {
			return errSyntax
		}
		i = j
	}
	p.i = i
	return nil
}

// str skips a string literal, validating its escapes.
func (p *parser) str() error {
	b := p.b
	if p.i >= len(b) || b[p.i] != '"' {
		return errSyntax
	}
	for i := p.i + 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			p.i = i + 1
			return nil
		case c < 0x20:
			return errSyntax
		case c == '\\':
			i++
			if i >= len(b) {
				return errSyntax
			}
			switch b[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if i+4 >= len(b) || hex4(b[i+1:i+5]) < 0 {
					return errSyntax
				}
				i += 4
			default:
				return errSyntax
			}
		}
	}
	return errSyntax
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// unquote decodes a validated string literal as encoding/json does
// (invalid UTF-8 and lone surrogates become U+FFFD).
func unquote(s []byte) (string, bool) {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return "", false
	}
	s = s[1 : len(s)-1]
	simple := true
	for _, c := range s {
		if c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		return string(s), true
	}
	out := make([]byte, 0, len(s)+8)
	for i := 0; i < len(s); {
		c := s[i]
		if c == '\\' {
			if i+1 >= len(s) {
				return "", false
			}
			switch s[i+1] {
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if i+6 > len(s) {
					return "", false
				}
				r := hex4(s[i+2 : i+6])
				if r < 0 {
					return "", false
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
						if r2 := hex4(s[i+2 : i+6]); r2 >= 0 {
							if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
								out = utf8.AppendRune(out, dec)
								i += 6
								continue
							}
						}
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default: // '"', '\\', '/'
				out = append(out, s[i+1])
			}
			i += 2
			continue
		}
		if c < utf8.RuneSelf {
			out = append(out, c)
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		if r == utf8.RuneError && size == 1 {
			out = utf8.AppendRune(out, utf8.RuneError)
		} else {
			out = append(out, s[i:i+size]...)
		}
		i += size
	}
	return string(out), true
}

// Str returns the value of a string (ok false for null: leave the target
// unchanged, as encoding/json does).
func (v Value) Str() (s string, ok bool, err error) {
	switch v.Kind {
	case Null:
		return "", false, nil
	case String:
		s, ok := unquote(v.Raw)
		if !ok {
			return "", false, errSyntax
		}
		return s, true, nil
	}
	return "", false, ErrType
}

// Bool returns the value of a boolean (ok false for null).
func (v Value) Bool() (b, ok bool, err error) {
	switch v.Kind {
	case Null:
		return false, false, nil
	case Bool:
		return v.Raw[0] == 't', true, nil
	}
	return false, false, ErrType
}

// Int returns the value of an integer that fits in bits bits (ok false for
// null). Fractions and exponents are errors, as for encoding/json.
func (v Value) Int(bits int) (n int64, ok bool, err error) {
	switch v.Kind {
	case Null:
		return 0, false, nil
	case Number:
		n, err := strconv.ParseInt(string(v.Raw), 10, bits)
		if err != nil {
			return 0, false, ErrType
		}
		return n, true, nil
	}
	return 0, false, ErrType
}

// Uint returns the value of an unsigned integer that fits in bits bits.
func (v Value) Uint(bits int) (n uint64, ok bool, err error) {
	switch v.Kind {
	case Null:
		return 0, false, nil
	case Number:
		n, err := strconv.ParseUint(string(v.Raw), 10, bits)
		if err != nil {
			return 0, false, ErrType
		}
		return n, true, nil
	}
	return 0, false, ErrType
}

// KeyIs reports whether a member key names the field name: an exact match
// or, like encoding/json, an ASCII case-insensitive one. (The field names
// of shimapi are ASCII, for which encoding/json's folding is exactly this.)
func KeyIs(key, name string) bool {
	if len(key) != len(name) {
		return false
	}
	for i := 0; i < len(key); i++ {
		a, b := key[i], name[i]
		if a == b {
			continue
		}
		if a|0x20 != b|0x20 || a|0x20 < 'a' || a|0x20 > 'z' {
			return false
		}
	}
	return true
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string exactly as encoding/json's
// Marshal writes it (HTML characters, U+2028 and U+2029 escaped, invalid
// UTF-8 replaced).
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		if b := s[i]; b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' && b != '<' && b != '>' && b != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '\\', '"':
				dst = append(dst, '\\', b)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		c, size := utf8.DecodeRuneInString(s[i:])
		if c == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if c == '\u2028' || c == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[c&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendBool appends true or false.
func AppendBool(dst []byte, b bool) []byte {
	if b {
		return append(dst, "true"...)
	}
	return append(dst, "false"...)
}
