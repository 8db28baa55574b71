package tdsserver

import (
	"encoding/binary"
	"net"
	"slices"
	"strconv"
	"strings"
	"time"
)

// answer runs a batch: the few statements the tests and Verify send, and
// the SET options drivers send after login; false for any other batch,
// answered with an error. A statement is recognised whole, never by a
// part of it: comments and the case of keywords do not matter, anything
// else does (a WHERE clause the server cannot apply is refused, not
// ignored).
func (s *session) answer(sql string) ([]byte, bool) {
	s.srv.waitThawed()
	if onlySet(stripComments(sql)) {
		// Session options, as tedious sends after every login ("set
		// ansi_nulls on", "set textsize 2147483647", ...): SQL Server
		// applies them and ends the batch with DONE; they change nothing here.
		return doneToken(0, 0, 0), true
	}
	q := normalize(sql)
	switch {
	case q == "select 1":
		return resultSet([]column{{"", intn}}, []any{int32(1)}), true
	case q == "select @@version":
		return resultSet([]column{{"", nvarchar}}, []any{"Microsoft SQL Server 2022 (tdsserver, a test stand-in speaking TDS 7.4)"}), true
	case q == "select @@spid":
		return resultSet([]column{{"", intn}}, []any{int32(s.spid)}), true
	case strings.HasPrefix(q, "select ") && strings.Contains(q, " from sys.dm_exec_connections"):
		if resp, ok := s.connections(q); ok {
			return resp, true
		}
	case strings.HasPrefix(q, "insert into writes (id) values (") && strings.HasSuffix(q, ")"):
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(q, "insert into writes (id) values ("), ")"), 10, 64)
		if err == nil {
			s.srv.dataMu.Lock()
			s.srv.writes = append(s.srv.writes, id)
			s.srv.dataMu.Unlock()
			return doneToken(0x0010, 0xC3, 1), true // DONE_COUNT, INSERT
		}
	case strings.HasPrefix(q, "waitfor delay '") && strings.HasSuffix(q, "'"):
		// A slow query: WAITFOR DELAY 'hh:mm:ss'.
		if d, ok := parseDelay(strings.TrimSuffix(strings.TrimPrefix(q, "waitfor delay '"), "'")); ok {
			time.Sleep(d)
			return doneToken(0, 0, 0), true
		}
	case q == "select id from writes":
		s.srv.dataMu.Lock()
		rows := make([][]any, len(s.srv.writes))
		for i, id := range s.srv.writes {
			rows[i] = []any{id}
		}
		s.srv.dataMu.Unlock()
		return resultRows([]column{{"id", bigint}}, rows), true
	}
	return append(errorToken(208, 16, "tdsserver: statement not supported: "+sql), doneToken(0x0002, 0, 0)...), false
}

// connections answers "SELECT cols FROM sys.dm_exec_connections", with
// "WHERE session_id = @@SPID" (this session's row), "WHERE session_id = n"
// (that session's row, if connected) or no WHERE: then, as SQL Server does
// for a login with VIEW SERVER STATE (sa, the tests' user), a row for
// every connected session, in session_id order. cols is "*" or a list of
// encrypt_option, client_net_address, client_tcp_port and session_id; an
// unknown column is SQL Server's error 207. false: not understood.
func (s *session) connections(q string) ([]byte, bool) {
	list, rest, _ := strings.Cut(strings.TrimPrefix(q, "select "), " from sys.dm_exec_connections")
	var want func(spid uint16) bool
	switch where := strings.TrimSpace(rest); {
	case where == "":
		want = func(uint16) bool { return true }
	case where == "where session_id = @@spid":
		want = func(spid uint16) bool { return spid == s.spid }
	case strings.HasPrefix(where, "where session_id = "):
		n, err := strconv.ParseUint(strings.TrimPrefix(where, "where session_id = "), 10, 16)
		if err != nil {
			return nil, false
		}
		want = func(spid uint16) bool { return uint64(spid) == n }
	default:
		return nil, false
	}
	all := []column{{"session_id", intn}, {"encrypt_option", nvarchar}, {"client_net_address", nvarchar}, {"client_tcp_port", intn}}
	var cols []column
	if list = strings.TrimSpace(list); list == "*" {
		cols = all
	} else {
		for _, name := range strings.Split(list, ",") {
			name = strings.TrimSpace(name)
			i := slices.IndexFunc(all, func(c column) bool { return c.name == name })
			if i < 0 {
				return append(errorToken(207, 16, "Invalid column name '"+name+"'."), doneToken(0x0002, 0, 0)...), true
			}
			cols = append(cols, all[i])
		}
	}
	var rows [][]any
	for _, o := range s.srv.sessionsNow() {
		if !want(o.spid) {
			continue
		}
		enc := "FALSE"
		if o.encrypted.Load() {
			enc = "TRUE"
		}
		host, port, _ := net.SplitHostPort(o.raw.RemoteAddr().String())
		p, _ := strconv.Atoi(port)
		vals := map[string]any{"session_id": int32(o.spid), "encrypt_option": enc, "client_net_address": host, "client_tcp_port": int32(p)}
		row := make([]any, len(cols))
		for i, c := range cols {
			row[i] = vals[c.name]
		}
		rows = append(rows, row)
	}
	return resultRows(cols, rows), true
}

// normalize is a batch as answer matches it: comments removed, white
// space collapsed, lower case, without a final semicolon.
func normalize(sql string) string {
	q := strings.ToLower(strings.Join(strings.Fields(stripComments(sql)), " "))
	return strings.TrimSpace(strings.TrimSuffix(q, ";"))
}

// stripComments removes -- and /* */ comments outside string literals.
func stripComments(sql string) string {
	var b strings.Builder
	inString := false
	for i := 0; i < len(sql); i++ {
		switch c := sql[i]; {
		case c == '\'':
			inString = !inString
			b.WriteByte(c)
		case !inString && strings.HasPrefix(sql[i:], "--"):
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			b.WriteByte('\n')
		case !inString && strings.HasPrefix(sql[i:], "/*"):
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				return b.String()
			}
			i += 2 + end + 1
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// onlySet reports whether a batch is nothing but SET statements, one per
// line or separated by semicolons: "SET option value" or "SET TRANSACTION
// ISOLATION LEVEL ...". A line with more in it ("SET FMTONLY ON SELECT 1
// SET FMTONLY OFF", as FreeTDS's freebcp sends) is not.
func onlySet(sql string) bool {
	n := 0
	for _, stmt := range strings.FieldsFunc(sql, func(r rune) bool { return r == '\n' || r == '\r' || r == ';' }) {
		f := strings.Fields(strings.ToLower(stmt))
		switch {
		case len(f) == 0:
			continue
		case f[0] != "set":
			return false
		case len(f) == 3,
			len(f) >= 5 && len(f) <= 6 && f[1] == "transaction" && f[2] == "isolation" && f[3] == "level":
			n++
		default:
			return false
		}
	}
	return n > 0
}

// sqlText skips ALL_HEADERS and decodes the batch text.
func sqlText(b []byte) string {
	if len(b) >= 4 {
		if n := int(binary.LittleEndian.Uint32(b)); n >= 4 && n <= len(b) {
			b = b[n:]
		}
	}
	return fromUCS2(b)
}

// parseDelay reads WAITFOR DELAY's "hh:mm:ss", at most a minute.
func parseDelay(v string) (time.Duration, bool) {
	parts := strings.Split(v, ":")
	if len(parts) != 3 {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		n, err := strconv.Atoi(parts[i])
		if err != nil || n < 0 {
			return 0, false
		}
		d += time.Duration(n) * unit
	}
	return d, d <= time.Minute
}
