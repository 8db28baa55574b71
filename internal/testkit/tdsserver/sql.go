package tdsserver

import (
	"encoding/binary"
	"net"
	"strconv"
	"strings"
)

// answer runs a batch: the few statements the tests and Verify send, and
// the SET options drivers send after login; false for any other batch,
// answered with an error.
func (s *session) answer(sql string) ([]byte, bool) {
	q := strings.ToLower(strings.Join(strings.Fields(sql), " "))
	if onlySet(sql) {
		// Session options, as tedious sends after every login ("set
		// ansi_nulls on", "set textsize 2147483647", ...): SQL Server
		// applies them and ends the batch with DONE; they change nothing here.
		return doneToken(0, 0, 0), true
	}
	switch {
	case strings.Contains(q, "sys.dm_exec_connections"):
		enc := "FALSE"
		if s.encrypted {
			enc = "TRUE"
		}
		host, port, _ := net.SplitHostPort(s.raw.RemoteAddr().String())
		p, _ := strconv.Atoi(port)
		known := map[string]struct {
			col column
			val any
		}{
			"encrypt_option":     {column{"encrypt_option", nvarchar}, enc},
			"client_net_address": {column{"client_net_address", nvarchar}, host},
			"client_tcp_port":    {column{"client_tcp_port", intn}, int32(p)},
		}
		// Answer with the columns the query names, in its order, as SQL
		// Server would; "*" (or nothing recognised) gives all three.
		names := []string{"encrypt_option", "client_net_address", "client_tcp_port"}
		if list, _, ok := strings.Cut(strings.TrimPrefix(q, "select "), " from "); ok && strings.TrimSpace(list) != "*" {
			var named []string
			for _, n := range strings.Split(list, ",") {
				if _, ok := known[strings.TrimSpace(n)]; ok {
					named = append(named, strings.TrimSpace(n))
				}
			}
			if len(named) > 0 {
				names = named
			}
		}
		cols, row := make([]column, len(names)), make([]any, len(names))
		for i, n := range names {
			cols[i], row[i] = known[n].col, known[n].val
		}
		return resultSet(cols, row), true
	case strings.Contains(q, "@@version"):
		return resultSet([]column{{"", nvarchar}}, []any{"Microsoft SQL Server 2022 (tdsserver, a test stand-in speaking TDS 7.4)"}), true
	case strings.Contains(q, "@@spid"):
		return resultSet([]column{{"", intn}}, []any{int32(s.spid)}), true
	case strings.HasPrefix(q, "select 1"):
		return resultSet([]column{{"", intn}}, []any{int32(1)}), true
	case strings.HasPrefix(q, "insert into writes (id) values ("):
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(q, "insert into writes (id) values ("), ")"), 10, 64)
		if err == nil {
			s.srv.dataMu.Lock()
			s.srv.writes = append(s.srv.writes, id)
			s.srv.dataMu.Unlock()
			return doneToken(0x0010, 0xC3, 1), true // DONE_COUNT, INSERT
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
